"""``python -m helpers cells``: chapter 6's nucleus segmentation and counting with calibrated intervals, on your data.

Trains on ``--train`` (or loads ``--checkpoint``), calibrates 90 % count intervals by split conformal prediction on
a fifth of the training images (held out from training; ``--calibrate DIR`` uses other images instead), predicts
the ``--test`` images with MC dropout and prints one JSON line. Example::

    python -m helpers cells --train my_plate/train --test my_plate/test --layout labels --out counts/
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

import numpy as np

from helpers import config
from helpers.errors import DataError
from helpers.experiments import log as _log

HELP = "nucleus segmentation and counting with calibrated count intervals (chapter 6)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--train", type=Path, help="training images (not needed with an existing --checkpoint)")
    parser.add_argument("--test", type=Path, required=True, help="test images with labels, dots or counts")
    parser.add_argument("--layout", choices=("auto", "dsb", "labels", "dots", "vgg", "counts"), default="auto",
                        help="file layout of the folders (default: detected)")
    parser.add_argument("--calibrate", type=Path,
                        help="images to calibrate the intervals on (default: a fifth of --train, held out)")
    parser.add_argument("--checkpoint", type=Path,
                        help="load this checkpoint if it exists, else train and save it here")
    parser.add_argument("--out", type=Path, help="write counts with intervals (CSV) and overlay PNGs here")
    parser.add_argument("--steps", type=int, help="training steps (default: from the profile)")
    parser.add_argument("--level", type=float, default=0.9, help="interval level (default 0.9)")
    parser.add_argument("--seed", type=int, default=0)


def _vgg_numbers(root: Path, role: str):
    """The usual VGG protocol when train and test are the same folder: 1–100 training pool, 101–200 test."""
    return range(1, 101) if role == "train" else range(101, 201)


def _load(root: Path, layout: str, role: str):
    from helpers.data.cells import detect_layout, load_cells, load_vgg

    layout = detect_layout(root) if layout == "auto" else layout
    if layout == "vgg":
        return load_vgg(root, _vgg_numbers(root, role))
    return load_cells(root, layout)


def run(args: argparse.Namespace) -> dict:
    import torch

    from helpers.conformal import conformal_interval, coverage
    from helpers.data.cells import split_names
    from helpers.metrics.counting import count_errors, dsb_average_precision, instance_f1
    from helpers.models.counting import (CountingUNet, load_counter, normalise, predict_counts, prepare, recipe,
                                         save_counter, train_counter)

    start = time.perf_counter()
    if not 0 < args.level < 1:
        raise DataError(f"--level {args.level}: give a level between 0 and 1, e.g. 0.9")
    rec = {**recipe(args.profile), "seed": args.seed}
    if args.steps:
        rec["steps"] = args.steps
    config.seed_everything(rec["seed"])
    test = _load(args.test, args.layout, "test")
    progress = sys.stderr.isatty()
    cal = _load(args.calibrate, args.layout, "train") if args.calibrate is not None else None
    n_train = 0
    if args.checkpoint is not None and args.checkpoint.is_file():
        model, meta = load_counter(args.checkpoint)
        n_train = int(meta.get("n_train", 0))
        rec["T"] = meta.get("recipe", rec).get("T", rec["T"])
        _log(f"loaded {args.checkpoint.name} (trained on {n_train} images)")
        if cal is None:
            raise DataError("--calibrate DIR is required with an existing --checkpoint (images to calibrate on)")
    else:
        if args.train is None:
            raise DataError("--train is required unless --checkpoint names an existing checkpoint")
        images = _load(args.train, args.layout, "train")
        if any(c.labels is None and c.dots is None for c in images):
            raise DataError(f"{args.train}: counts-only images cannot train the network; give label images or "
                            f"dot annotations (counts-only folders can be --test or --calibrate)")
        if cal is None:
            if len(images) < 10:
                raise DataError(f"{args.train}: {len(images)} images; need at least 10 (a fifth calibrates the "
                                f"intervals) or give --calibrate DIR")
            fit, held = split_names([c.name for c in images], (0.8, 0.2))
            by = {c.name: c for c in images}
            images, cal = [by[n] for n in sorted(fit)], [by[n] for n in sorted(held)]
        n_train = len(images)
        _log(f"training on {n_train} images for {rec['steps']} steps, profile {config.get_profile(args.profile)}")
        torch.manual_seed(rec["seed"])
        model = CountingUNet(base=rec["base"], levels=rec["levels"], p=rec["p"], dropout=rec["dropout"])
        train_counter(model, prepare(images, rec["sigma"]), steps=rec["steps"], crop=rec["crop"],
                      batch=rec["batch"], lr=rec["lr"], seed=rec["seed"], progress=progress)
        if args.checkpoint is not None:
            save_counter(model, args.checkpoint, recipe=rec, n_train=n_train)
            _log(f"saved {args.checkpoint.name}")
    model.to(config.get_device())
    torch.manual_seed(rec["seed"])
    _log(f"calibrating on {len(cal)} images, testing on {len(test)} (T = {rec['T']})")
    pc = predict_counts(model, [normalise(c.image) for c in cal], T=rec["T"], progress=progress)
    pt = predict_counts(model, [normalise(c.image) for c in test], T=rec["T"], progress=progress)
    y_cal = np.array([c.count for c in cal], float)
    y = np.array([c.count for c in test], float)
    mean, std = np.array([p.count for p in pt]), np.array([p.std for p in pt])
    lo, hi = conformal_interval(mean, std, y_cal, np.array([p.count for p in pc]), np.array([p.std for p in pc]),
                                level=args.level)
    if not np.isfinite(hi).all():
        raise DataError(f"{len(cal)} calibration images are too few for a {args.level:.0%} interval; give at least "
                        f"{int(np.ceil(1 / (1 - args.level))) - 1}")
    errors = count_errors(y, mean)
    result = {"n_train": n_train, "n_calibration": len(cal), "n_test": len(test),
              "count_mae": round(errors["mae"], 3), "count_relative_error": round(errors["relative_error"], 4),
              f"coverage_{round(args.level * 100)}": round(coverage(y, lo, hi), 4),
              "mean_interval_width": round(float(np.mean(hi - lo)), 3)}
    labelled = [(c, p) for c, p in zip(test, pt) if c.labels is not None]
    if labelled:
        result["seg_count_mae"] = round(count_errors([c.count for c, _ in labelled],
                                                     [p.seg_count for _, p in labelled])["mae"], 3)
        result["f1_iou50"] = round(float(np.mean([instance_f1(c.labels, p.instances) for c, p in labelled])), 4)
        result["mean_ap"] = round(float(np.mean([dsb_average_precision(c.labels, p.instances)
                                                 for c, p in labelled])), 4)
    if args.out is not None:
        write_outputs(args.out, test, pt, lo, hi)
        _log(f"wrote counts.csv and {len(test)} overlays to {args.out}")
    result["seconds"] = round(time.perf_counter() - start, 1)
    return result


def write_outputs(out: Path, test, preds, lo, hi) -> None:
    """``counts.csv`` (name, true count, count, interval, nuclei found) and an overlay PNG per image: the image
    in grey with the predicted nuclei's outlines in orange."""
    from PIL import Image
    from skimage.segmentation import find_boundaries

    out.mkdir(parents=True, exist_ok=True)
    with open(out / "counts.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["image", "true_count", "count", "low", "high", "nuclei_segmented"])
        for c, p, a, b in zip(test, preds, lo, hi):
            w.writerow([c.name, c.count, f"{p.count:.2f}", f"{a:.2f}", f"{b:.2f}", p.seg_count])
    for c, p in zip(test, preds):
        grey = np.round(255 * np.clip(normalise_for_view(c.image), 0, 1)).astype(np.uint8)
        rgb = np.stack([grey] * 3, -1)
        rgb[find_boundaries(p.instances, mode="inner")] = (230, 159, 0)
        Image.fromarray(rgb).save(out / f"{c.name}_overlay.png")


def normalise_for_view(image: np.ndarray) -> np.ndarray:
    from helpers.models.counting import normalise

    return np.clip(normalise(image), 0, 1)
