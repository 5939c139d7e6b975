"""Chapter 1 quality targets: the 2018 protocol against the published 2018 grid-search table. Run on demand:

    BOOK_PROFILE=full .venv/bin/python benchmarks/uci_full.py --data-dir ../shared/data/uci \\
        --datasets yacht concrete energy kin8nm [--splits 20] [--epochs 4000] [--device cuda]

Per dataset: per-split validation grid over p and τ (all grid networks of all splits trained as one batched
computation), retraining on the full training split, T = 10,000 test samples. Prints one JSON line per dataset
with our RMSE / log-likelihood ± standard error, the published ones, and whether ours is within one standard
error of, or better than, the published value. Targets, not tests: nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import math
import time

from helpers.config import get_device, seed_everything
from helpers.data.uci import PUBLISHED, load_uci
from helpers.models.mlp import protocol_2016, protocol_2018


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--datasets", nargs="+", default=["yacht", "concrete", "energy", "kin8nm"])
    parser.add_argument("--protocol", choices=("2016", "2018"), default="2018")
    parser.add_argument("--splits", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=None, help="default: 4000 (2018) / 400 (2016)")
    parser.add_argument("--T", type=int, default=10_000)
    parser.add_argument("--T-validation", type=int, default=10_000)
    parser.add_argument("--device", default=None)
    args = parser.parse_args()
    device = get_device(args.device)
    for name in args.datasets:
        seed_everything(0)
        ds = load_uci(name, args.data_dir)
        start = time.perf_counter()
        if args.protocol == "2018":
            r = protocol_2018(ds, splits=range(args.splits), epochs=args.epochs, T=args.T,
                              T_validation=args.T_validation, device=device)
        else:
            r = protocol_2016(ds, splits=range(args.splits), epochs=args.epochs, T=args.T, device=device)
        secs = time.perf_counter() - start
        (rm, rs), (lm, ls) = r["rmse_mean_se"], r["ll_mean_se"]
        pub = PUBLISHED[args.protocol].get(name)
        row = {"dataset": name, "protocol": args.protocol, "splits": args.splits, "epochs": r["epochs"],
               "device": str(device), "seconds": round(secs, 1), "rmse": [round(rm, 4), round(rs, 4)],
               "test_ll": [round(lm, 4), round(ls, 4)]}
        if args.protocol == "2018":
            row["chosen_p"], row["chosen_tau"] = r["p"], r["tau"]
        if pub:
            row["published"] = {"rmse": pub[:2], "test_ll": pub[2:]}
            row["rmse_ok"] = rm <= pub[0] + max(rs, pub[1])
            row["ll_ok"] = lm >= pub[2] - max(ls, pub[3])
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
