"""``python -m helpers cxr``: chapter 5's frozen VGG16 with a trained top layer, on your chest X-rays.

Reads ``--train`` (and ``--test``) in one of the layouts of :mod:`helpers.data.chestxray14`, computes the frozen
VGG16 features once (cached; a progress bar on stderr), holds out 20 % of the training *patients* for every choice
(dropout rate and weight decay, threshold, temperature), trains the top layer, evaluates on the test images and
prints one JSON line. Example (NIH ChestX-ray14, pneumonia against no finding)::

    python -m helpers cxr --train nih/ --layout nih --finding Pneumonia --out maps/

Without ``--test``, 20 % of the ``--train`` patients are held out as the test set (split by patient). The JSON
line holds the test AUC, and accuracy, sensitivity and specificity at the threshold fitted on validation (Youden);
``ece`` before and ``ece_temperature_scaled`` after temperature scaling; ``nll`` and ``brier`` of the
temperature-scaled probabilities; the AUC of the images kept after referring the 10 % with the highest MC-dropout
predictive entropy (T = 50); which weights and preprocessing were used; and the seconds it took.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from helpers import config
from helpers.errors import DataError
from helpers.experiments import log as _log

HELP = "chest X-rays with a frozen ImageNet VGG16 and a trained top layer (chapter 5)"
T_MC = 50
REFER = 0.10


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--train", type=Path, required=True, help="training images (any layout below)")
    parser.add_argument("--test", type=Path, help="test images (default: 20 %% of the --train patients)")
    parser.add_argument("--layout", choices=("auto", "folder", "kermany", "nih"), default="auto",
                        help="folder: one sub-folder per class; kermany: (train|test|val/)NORMAL|PNEUMONIA; "
                             "nih: ChestX-ray14 with Data_Entry_2017.csv (default: detected)")
    parser.add_argument("--finding", default="Pneumonia",
                        help="ChestX-ray14 finding to detect against 'No Finding' (default: Pneumonia)")
    parser.add_argument("--skip-missing", action="store_true",
                        help="ChestX-ray14: skip images listed in the CSV but not on disk (partial download)")
    parser.add_argument("--weights", default="imagenet",
                        help="imagenet, random, or the path of a VGG16 state dict (default: imagenet)")
    parser.add_argument("--size", type=int, help="input size in pixels (default: 96 quick, 224 full)")
    parser.add_argument("--out", type=Path, help="write each test image's saliency maps as PNG here")
    parser.add_argument("--seed", type=int, default=0)


def _save_maps(out: Path, records, x, model, classes) -> int:
    """Gradient, guided-backprop and Grad-CAM maps of the positive-class logit, one PNG per image and method."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import colormaps
    from PIL import Image

    from helpers.plots.style import SEQUENTIAL
    from helpers.saliency import attribute, evidence

    out.mkdir(parents=True, exist_ok=True)
    cmap = colormaps[SEQUENTIAL]
    written = 0
    for i in range(0, len(x), 8):
        xb = x[i:i + 8]
        for method in ("gradient", "guided_backprop", "gradcam"):
            kw = {"layer": model.cam_layer} if method == "gradcam" else {}
            maps = evidence(attribute(model, xb, 1, method, **kw), method).clamp_min(0).numpy()
            for rec, m in zip(records[i:i + 8], maps):
                m = m / (np.percentile(m, 99) or 1.0)
                rgb = (cmap(np.clip(m, 0, 1))[..., :3] * 255).astype(np.uint8)
                Image.fromarray(rgb).save(out / f"{rec.path.stem}_{method}.png")
                written += 1
    return written


def run(args: argparse.Namespace) -> dict:
    import torch
    from sklearn.metrics import roc_auc_score, roc_curve

    from helpers.data.chestxray14 import load_dataset, load_grey
    from helpers.data.xray import split_by_patient
    from helpers.features import extract_features
    from helpers.metrics.calibration import (brier_score, expected_calibration_error, fit_temperature,
                                             negative_log_likelihood, temperature_scale)
    from helpers.models.vgg import VGG16Classifier, load_weights, select_top_layer
    from helpers.uncertainty import mc_predict

    start = time.perf_counter()
    config.seed_everything(args.seed)
    size = args.size or config.pick(96, 224, args.profile)
    records, classes = load_dataset(args.train, args.layout, finding=args.finding,
                                    allow_missing=args.skip_missing)
    if args.test is None:
        parts = split_by_patient(records, (0.64, 0.16, 0.2), names=("train", "val", "test"), seed=args.seed)
    else:
        test, test_classes = load_dataset(args.test, args.layout, finding=args.finding,
                                          allow_missing=args.skip_missing)
        if test_classes != classes:
            raise DataError(f"{args.test}: classes {test_classes} differ from the training classes {classes}")
        parts = {**split_by_patient(records, (0.8, 0.2), names=("train", "val"), seed=args.seed), "test": test}
        shared = {r.patient for r in parts["train"]} & {r.patient for r in test}
        if shared:
            _log(f"warning: {len(shared)} patient(s) are in both --train and --test (e.g. {sorted(shared)[0]})")
    for name, part in parts.items():
        labels = {r.label for r in part}
        if len(labels) < 2:
            raise DataError(f"the {name} split has one class only ({len(part)} images of "
                            f"{classes[next(iter(labels))] if labels else 'no class'}): give more patients")
    weights = load_weights(args.weights, seed=args.seed)
    _log(f"weights: {weights.source}; input {size} px; {', '.join(f'{k} {len(v)}' for k, v in parts.items())}")
    model = VGG16Classifier(weights)
    feats = {k: extract_features(model, [r.path for r in v], lambda p: load_grey(p, size), size=size,
                                 desc=f"{k} features") for k, v in parts.items()}
    y = {k: torch.tensor([r.label for r in v]) for k, v in parts.items()}
    head, choice = select_top_layer(feats["train"], y["train"], feats["val"], y["val"],
                                    epochs=config.pick(60, 150, args.profile), seed=args.seed)

    def logit(k):
        with torch.no_grad():
            z = head(feats[k])
        return (z[:, 1] - z[:, 0]).numpy()

    t = y["test"].numpy()
    z_val, z_test = logit("val"), logit("test")
    p_val, p_test = 1 / (1 + np.exp(-z_val)), 1 / (1 + np.exp(-z_test))
    fpr, tpr, thr_all = roc_curve(y["val"].numpy(), p_val)
    thr = float(thr_all[np.argmax(tpr - fpr)])
    tau = fit_temperature(z_val, y["val"])
    p_ts = temperature_scale(z_test, tau)
    torch.manual_seed(args.seed)
    mc = mc_predict(head, feats["test"], T=T_MC)
    entropy = mc["predictive_entropy"].numpy()
    keep = np.sort(np.argsort(-entropy, kind="stable")[int(round(REFER * len(t))):])
    auc_kept = roc_auc_score(t[keep], mc["mean"][keep, 1].numpy()) if len(set(t[keep])) == 2 else float("nan")
    pred = p_test >= thr
    result = {
        "classes": list(classes), "positive": classes[1],
        "n_train": len(parts["train"]), "n_train_patients": len({r.patient for r in parts["train"]}),
        "n_val": len(parts["val"]), "n_test": len(t), "n_test_patients": len({r.patient for r in parts["test"]}),
        "auc": round(float(roc_auc_score(t, p_test)), 4), "accuracy": round(float(np.mean(pred == t)), 4),
        "sensitivity": round(float(np.mean(pred[t == 1])), 4),
        "specificity": round(float(np.mean(~pred[t == 0])), 4), "threshold": round(thr, 4),
        "ece": round(expected_calibration_error(p_test, t), 4),
        "ece_temperature_scaled": round(expected_calibration_error(p_ts, t), 4), "temperature": round(tau, 3),
        "nll": round(negative_log_likelihood(p_ts, t), 4), "brier": round(brier_score(p_ts, t), 4),
        f"auc_after_referring_{int(REFER * 100)}pct": round(float(auc_kept), 4),
        "dropout": choice["p"], "weight_decay": choice["weight_decay"],
        "weights": weights.name, "weights_source": weights.source, "preprocessing": weights.preprocessing,
        "size": size, "profile": config.get_profile(args.profile),
    }
    if args.out is not None:
        model.head = head
        x = load_grey([r.path for r in parts["test"]], size)
        result["maps_written"] = _save_maps(args.out, parts["test"], x, model.eval(), classes)
        _log(f"saliency maps written to {args.out}")
    result["seconds"] = round(time.perf_counter() - start, 1)
    return result
