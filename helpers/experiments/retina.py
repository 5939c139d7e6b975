"""``python -m helpers retina``: chapter 4's vessel U-Net with MC dropout and an aleatoric head, on your data.

Trains on ``--train`` (or loads ``--checkpoint``), predicts the ``--test`` images with MC dropout, evaluates inside
the field of view and prints one JSON line. Example (the book's CHASE_DB1 copy, split into two folders)::

    python -m helpers retina --train my_train/ --test my_test/ --layout folder --out maps/

Progress bars on stderr cover loading, preprocessing, training, prediction and writing; the JSON line adds
``stage_seconds``. Cost of the full profile (3,000 steps, T = 32) on 2 idle cores of the book's reference machine
(December 2026), DRIVE's 20 training and 20 test images: 22.5 minutes in all, of which training 20.0 (0.40 s per
step of 8 crops of 128 px; channels-last memory makes a step about 15 % faster) and MC prediction 2.3. The full
profile had 6,000 steps until December 2026: they took about 39 minutes here, and 3,000 steps still met the
DRIVE targets (F1 0.818 and AUC 0.980 on images 35-40 after training on 21-32, against 0.821 and 0.982 with
6,000 steps; ``benchmarks/retina.py drive``).
"""

from __future__ import annotations

import argparse
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np

from helpers import config
from helpers.errors import DataError
from helpers.experiments import log as _log

HELP = "vessel segmentation with MC-dropout and aleatoric uncertainty (chapter 4)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--train", type=Path, help="training images (not needed with an existing --checkpoint)")
    parser.add_argument("--test", type=Path, required=True, help="test images with vessel masks")
    parser.add_argument("--layout", choices=("auto", "drive", "chase", "folder"), default="auto",
                        help="file layout of both folders (default: detected)")
    parser.add_argument("--checkpoint", type=Path,
                        help="load this checkpoint if it exists, else train and save it here")
    parser.add_argument("--out", type=Path, help="write probability, uncertainty and error maps as PNG here")
    parser.add_argument("--steps", type=int, help="training steps (default: from the profile)")
    parser.add_argument("--seed", type=int, default=0)


class _Stages:
    """Wall-clock seconds of each stage of the run, logged to stderr as each one ends."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str, done: str = "") -> Iterator[None]:
        start = time.perf_counter()
        yield
        self.seconds[name] = round(self.seconds.get(name, 0.0) + time.perf_counter() - start, 1)
        if done:
            _log(f"{done} ({time.perf_counter() - start:.0f} s)")


def run(args: argparse.Namespace) -> dict:
    import torch

    from helpers.data.retina import load_retina, to_tensors
    from helpers.metrics.calibration import expected_calibration_error
    from helpers.metrics.segmentation import referral_curve, segmentation_scores, uncertainty_error_overlap
    from helpers.models.unet import UNet, load_checkpoint, predict_images, recipe, save_checkpoint, train_unet

    start = time.perf_counter()
    stage = _Stages()
    rec = {**recipe(args.profile), "seed": args.seed}
    gen = config.seed_everything(rec["seed"])
    with stage("loading"):
        test = load_retina(args.test, args.layout, progress=True)
    n_train = 0
    if args.checkpoint is not None and args.checkpoint.is_file():
        model, meta = load_checkpoint(args.checkpoint)
        rec["scale"] = meta.get("scale", rec["scale"])
        n_train = int(meta.get("n_train", 0))
        _log(f"loaded {args.checkpoint} (trained on {n_train} images at scale {rec['scale']})")
    else:
        if args.train is None:
            raise DataError("--train is required unless --checkpoint names an existing checkpoint")
        with stage("loading"):
            train = load_retina(args.train, args.layout, progress=True)
            n_train = len(train)
            x, y, fov = to_tensors(train, rec["scale"], progress=True)
        steps = args.steps or rec["steps"]
        _log(f"training on {n_train} images ({tuple(x.shape[-2:])} px) for {steps} steps, profile "
             f"{config.get_profile(args.profile)}, {torch.get_num_threads()} threads")
        with stage("training"):
            model = UNet(base=rec["base"], p=rec["p"], dropout=rec["dropout"])
            train_unet(model, x, y, fov, steps=steps, patch=rec["patch"], batch=rec["batch"], lr=rec["lr"],
                       bce_weight=rec["bce_weight"], generator=gen, progress=True)
        if args.checkpoint is not None:
            save_checkpoint(model, args.checkpoint, scale=rec["scale"], n_train=n_train,
                            recipe={**rec, "steps": steps})
            _log(f"saved {args.checkpoint}")
    # One MC sample per pass: at full resolution a batch of copies is slower per sample (memory traffic), and
    # the way down is computed once per image (predict), so T samples cost about T passes of the way up.
    with stage("prediction"):
        maps = predict_images(model, test, scale=rec["scale"], T=rec["T"], chunk_size=1, progress=True)
    with stage("scoring", f"scored {len(test)} test images"):
        cat = {k: np.concatenate([m[k][s.fov] for m, s in zip(maps, test)]) for k in maps[0]}
        target = np.concatenate([s.vessels[s.fov] for s in test])
        scores = segmentation_scores(cat["probs"], target)
        error = (cat["probs"] > 0.5) != target
        ueo, _ = uncertainty_error_overlap(cat["entropy"], error)
        _, referred = referral_curve(cat["probs"], target, cat["entropy"], fractions=[0.1])
        ece = expected_calibration_error(cat["probs"], target.astype(int))
    if args.out is not None:
        with stage("writing", f"wrote {len(test)} × 4 maps to {args.out}"):
            write_maps(args.out, test, maps, progress=True)
    return {"n_train": n_train, "n_test": len(test), **{k: round(v, 4) for k, v in scores.items()},
            "uncertainty_error_overlap": round(ueo, 4), "ece": round(ece, 4),
            "dice_referred_10pct": round(float(referred[0]), 4),
            "seconds": round(time.perf_counter() - start, 1), "stage_seconds": stage.seconds}


def write_maps(out: Path, samples, maps, progress: bool = False) -> None:
    """PNG files per test image: vessel probability, MC predictive entropy, aleatoric variance, errors."""
    from PIL import Image
    from tqdm.auto import tqdm

    out.mkdir(parents=True, exist_ok=True)
    for s, m in tqdm(list(zip(samples, maps)), desc="writing maps", unit="image", disable=config.no_progress(progress),
                     leave=False):
        def save(name: str, arr: np.ndarray, hi: float | None = None) -> None:
            hi = hi or float(arr.max()) or 1.0  # uncertainty maps: scaled to their maximum
            png = np.round(255 * np.clip(arr / hi, 0, 1)).astype(np.uint8)
            Image.fromarray(png).save(out / f"{s.name}_{name}.png")

        save("probability", np.where(s.fov, m["probs"], 0), hi=1.0)
        save("entropy", np.where(s.fov, m["entropy"], 0))
        if "aleatoric" in m:
            save("aleatoric", np.where(s.fov, m["aleatoric"], 0))
        save("error", (((m["probs"] > 0.5) != s.vessels) & s.fov).astype(float))
