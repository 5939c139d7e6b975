"""Benchmark of chapter 3: localisation, faithfulness and speed of every saliency method on the nodule task.

Run on demand (not a test): ``BOOK_PROFILE=full python benchmarks/saliency.py [--seeds 3]``. Trains the chapter's
SmallCNN on the synthetic nodule task for each seed, then prints, per method, the mean over seeds of the mass in
the lesion, the pointing game (2-pixel tolerance), deletion (blurred fill) and insertion AUC with the chapter's
settings (2 pixels per step over the first 3 % of the pixels, small against a nodule), and the seconds per image;
integrated gradients follow the book's completeness rule (``ig_with_completeness``: every image within
``COMPLETENESS_TOLERANCE``), and the largest number of steps it needed is reported. Progress goes to stderr, one
JSON line of results to stdout. Targets: every IG map meets the rule; the best method puts most mass in the
lesion and wins the pointing game on >= 90 % of positive test images.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
import torch

from helpers import config
from helpers.data.lesions import make_lesion_images
from helpers.metrics.attribution import deletion_insertion, mass_in_mask, pointing_game
from helpers.models.cnn import SmallCNN
from helpers.saliency import COMPLETENESS_TOLERANCE, METHODS, attribute, evidence, ig_with_completeness


def fit(x, y, epochs, width, seed, lr=6e-3, batch=32):
    torch.manual_seed(seed)
    model = SmallCNN(width=width)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, lr, total_steps=epochs * ((len(x) + batch - 1) // batch))
    model.train()
    for _ in range(epochs):
        for idx in torch.randperm(len(x)).split(batch):
            loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    return model.eval()


def run(seed: int) -> dict:
    n_train, epochs, width = config.pick(1500, 6000), config.pick(5, 12), config.pick(8, 16)
    n_eval, n_curves = config.pick(40, 300), config.pick(16, 150)
    train = make_lesion_images(n_train, seed=100 * seed, marker_rate=(0.5, 0.5))
    test = make_lesion_images(1000, seed=100 * seed + 1, marker_rate=(0.5, 0.5))
    model = fit(train.x, train.y, epochs, width, seed)
    with torch.no_grad():
        pred = model(test.x).argmax(1)
    ev = test[((pred == 1) & (test.y == 1)).nonzero()[:n_eval, 0]]
    out = {"accuracy": (pred == test.y).float().mean().item()}
    opts = {"occlusion": dict(baseline="blur"), "gradcam": dict(layer=model.cam_layer)}
    for method in METHODS:
        t = time.perf_counter()
        if method == "integrated_gradients":
            ig = ig_with_completeness(model, ev.x, 1, "blur", internal_batch_size=512)
            out["ig_max_steps"], out["ig_max_error"] = int(ig.n_steps.max()), ig.error
            a = ig.attributions
        else:
            a = attribute(model, ev.x, 1, method, **opts.get(method, {}))
        m = evidence(a, method)
        secs = (time.perf_counter() - t) / len(ev.x)
        curves = deletion_insertion(model, ev.x[:n_curves], 1, m[:n_curves], deletion_fill="blur",
                                    pixels_per_step=2, max_fraction=0.03)
        out[method] = {"mass_in_lesion": float(np.nanmean(mass_in_mask(m, ev.lesion))),
                       "pointing_game": float(pointing_game(m, ev.lesion, tolerance=2).mean()),
                       "deletion_auc": float(curves["deletion_auc"].mean()),
                       "insertion_auc": float(curves["insertion_auc"].mean()), "seconds_per_image": secs}
        print(f"seed {seed} {method}: {out[method]}", file=sys.stderr, flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=config.pick(1, 3))
    args = parser.parse_args()
    runs = [run(s) for s in range(args.seeds)]
    summary = {"profile": config.get_profile(), "seeds": args.seeds,
               "accuracy": float(np.mean([r["accuracy"] for r in runs])),
               "ig_max_steps": max(r["ig_max_steps"] for r in runs),
               "ig_max_error": max(r["ig_max_error"] for r in runs)}
    for method in METHODS:
        summary[method] = {k: float(np.mean([r[method][k] for r in runs])) for k in runs[0][method]}
    best = max(METHODS, key=lambda m: summary[m]["mass_in_lesion"])
    summary["targets_met"] = bool(summary["ig_max_error"] < COMPLETENESS_TOLERANCE
                                  and summary[best]["mass_in_lesion"] > 0.5 and summary[best]["pointing_game"] >= 0.9)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
