"""Benchmark of chapter 2: execute the chapter in a profile and print all its numbers as one JSON line.

Run on demand (never in the tests):

    .venv/bin/python benchmarks/aleatoric_full.py --profile full [--save /tmp/02_full.ipynb]

The full profile trains longer everywhere and runs the UCI comparison on yacht and energy with 20 splits and
4,000 epochs; it took 276 s on 2 CPU cores (2026-11). Progress and a comparison with the published
homoscedastic numbers go to stderr; the chapter's ``results`` (plus ``wall_s``) go to stdout.
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
