"""Benchmark of chapter 2: execute the chapter in a profile and print all its numbers as one JSON line.

Run on demand (never in the tests):

    .venv/bin/python benchmarks/aleatoric_full.py --profile full [--save /tmp/02_full.ipynb]

The full profile trains longer everywhere, runs the UCI comparison on yacht and energy with 20 splits and
4,000 epochs, and trains the CHASE_DB1 observer-disagreement head for 1,500 steps; it took 1,297 s on 2 CPU cores
shared with other jobs (before the CHASE_DB1 section: 276 s alone). Measured: yacht test log-likelihood
-0.465 +- 0.059 (heteroscedastic) vs -1.364 +- 0.013 (homoscedastic) at RMSE 0.651 vs 0.649; energy -1.371 +- 0.022
vs -1.675 +- 0.007 at RMSE 1.803 vs 0.981; CHASE_DB1 AUC for the observers' disagreement 0.912 (aleatoric) vs
0.807 (edge nearness). Progress, the UCI rows beside the published homoscedastic numbers and the CHASE_DB1 AUCs go
to stderr; the chapter's ``results`` (plus ``wall_s``) go to stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
CHAPTER = ROOT / "chapters" / "02_aleatoric.ipynb"
#: Gal & Ghahramani (2016), homoscedastic MC dropout, 20 splits (shared/notes/references.md).
PUBLISHED_2016 = {"yacht": {"rmse": 1.11, "ll": -1.55}, "energy": {"rmse": 1.66, "ll": -1.99}}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", choices=("quick", "full"), default="full")
    ap.add_argument("--timeout", type=int, default=3600, help="seconds allowed per cell")
    ap.add_argument("--save", type=Path, default=None, help="also write the executed notebook here")
    args = ap.parse_args()
    os.environ["BOOK_PROFILE"] = args.profile          # the kernel inherits it
    nb = nbformat.read(CHAPTER, as_version=4)
    print(f"executing {CHAPTER.name} in the {args.profile} profile ...", file=sys.stderr)
    start = time.time()
    NotebookClient(nb, timeout=args.timeout, kernel_name="python3",
                   resources={"metadata": {"path": str(CHAPTER.parent)}}).execute()
    wall = time.time() - start
    if args.save:
        nbformat.write(nb, args.save)
    text = "".join(o.get("text", "") for o in nb.cells[-1].get("outputs", []) if o.get("name") == "stdout")
    results = json.loads(text.strip().splitlines()[-1])
    results["wall_s"] = round(wall, 1)
    results["profile"] = args.profile
    for key, row in results.get("uci", {}).items():
        name = key.split()[0]
        ref = PUBLISHED_2016.get(name, {})
        print(f"{key:<42} RMSE {row['rmse']:.3f} ± {row['rmse_se']:.3f}  LL {row['ll']:.3f} ± {row['ll_se']:.3f}  "
              f"PICP {row['picp']:.3f}   (published 2016 homoscedastic: RMSE {ref.get('rmse')}, LL {ref.get('ll')})",
              file=sys.stderr)
    chase = results.get("chase", {})
    if chase:
        print(f"CHASE_DB1, AUC of each map for the observers' disagreement (8 test images): "
              + ", ".join(f"{k} {v:.3f}" for k, v in chase.items() if k != "caught")
              + f"; flagged pixels catch {chase['caught']:.1%} of the disagreement", file=sys.stderr)
    print(f"chapter executed in {wall:.0f} s", file=sys.stderr)
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
