"""Chapter 1 quality targets: the 2018 protocol against the published 2018 grid-search table. Run on demand:

    BOOK_PROFILE=full .venv/bin/python benchmarks/uci_full.py --data-dir ../shared/data/uci \\
        --datasets yacht concrete energy kin8nm [--splits 20] [--epochs 4000] [--device cuda]

Per dataset: per-split validation grid over p and τ (all grid networks of all splits trained as one batched
computation), retraining on the full training split, T = 10,000 test samples. Prints one JSON line per dataset
with our RMSE / log-likelihood ± standard error, the published ones, and whether ours is within one standard
error of, or better than, the published value. Where the dataset folder holds the authors' per-split logs
(``reference_results_2018/validation_ll_*.txt``), it also prints the validation log-likelihood of every grid
point, averaged over splits, beside theirs: a check of the training itself, far less noisy than the test
numbers (each split tests on a few dozen rows for yacht). Targets, not tests: nothing is asserted.

``--T-validation`` defaults to 1,000 on a CPU (10,000 on a GPU): the validation pass only ranks the 12 grid
points, and 10,000 samples of 240 networks would take longer than their training on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

from helpers.config import get_device, seed_everything
from helpers.data.uci import PUBLISHED, load_uci
from helpers.models.mlp import protocol_2016, protocol_2018


def reference_validation_ll(ds, n_grid: int, n_splits: int):
    """The authors' validation log-likelihoods ``[split, grid point]`` from their 2018 logs, or None."""
    import numpy as np

    folder = Path(ds.folder)
    files = sorted(folder.glob("reference_results_2018/validation_ll_*.txt")) or \
        sorted(folder.parent.glob("reference_results_2018/validation_ll_*.txt"))
    if not files:
        return None
    values = [float(line.split("::")[1]) for line in files[0].read_text().splitlines() if "::" in line]
    if len(values) < n_grid * n_splits:
        return None
    return np.array(values[: n_grid * n_splits]).reshape(n_splits, n_grid)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--datasets", nargs="+", default=["yacht", "concrete", "energy", "kin8nm"])
    parser.add_argument("--protocol", choices=("2016", "2018"), default="2018")
    parser.add_argument("--splits", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=None, help="default: 4000 (2018) / 400 (2016)")
    parser.add_argument("--T", type=int, default=10_000)
    parser.add_argument("--T-validation", type=int, default=None, help="default: 1000 on a CPU, 10000 on a GPU")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default=None)
    args = parser.parse_args()
    device = get_device(args.device)
    for name in args.datasets:
        seed_everything(args.seed)
        t_val = args.T_validation or (1000 if device.type == "cpu" else 10_000)
        ds = load_uci(name, args.data_dir)
        start = time.perf_counter()
        if args.protocol == "2018":
            r = protocol_2018(ds, splits=range(args.splits), epochs=args.epochs, T=args.T,
                              T_validation=t_val, device=device, seed=args.seed)
        else:
            r = protocol_2016(ds, splits=range(args.splits), epochs=args.epochs, T=args.T, device=device,
                              seed=args.seed)
        secs = time.perf_counter() - start
        (rm, rs), (lm, ls) = r["rmse_mean_se"], r["ll_mean_se"]
        pub = PUBLISHED[args.protocol].get(name)
        row = {"dataset": name, "protocol": args.protocol, "splits": args.splits, "epochs": r["epochs"],
               "device": str(device), "seconds": round(secs, 1), "rmse": [round(rm, 4), round(rs, 4)],
               "test_ll": [round(lm, 4), round(ls, 4)]}
        if args.protocol == "2018":
            row["T_validation"], row["chosen_p"], row["chosen_tau"] = t_val, r["p"], r["tau"]
            ref = reference_validation_ll(ds, len(r["grid"]), args.splits)
            if ref is not None:
                row["validation_ll_by_grid_point"] = {
                    f"p={p:g},tau={t:g}": [round(float(o), 3), round(float(f), 3)]
                    for (p, t), o, f in zip(r["grid"], r["validation_ll"].mean(0), ref.mean(0))}
                row["validation_ll_note"] = "[ours, authors' log], mean over splits"
        if pub:
            row["published"] = {"rmse": pub[:2], "test_ll": pub[2:]}
            row["rmse_ok"] = rm <= pub[0] + max(rs, pub[1])
            row["ll_ok"] = lm >= pub[2] - max(ls, pub[3])
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
