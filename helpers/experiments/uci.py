"""``python -m helpers uci``: MC dropout on a UCI regression dataset with the protocol of Gal & Ghahramani.

Reads the original layout (``DIR/NAME/data/data.txt``, ``index_*.txt``; see :mod:`helpers.data.uci`) or the
book's shipped copy, and prints one JSON line: dataset, n_splits, rmse and its standard error, test
log-likelihood and its standard error, seconds. Progress goes to stderr. Taught in chapter 1.

Examples::

    python -m helpers uci --dataset yacht                                  # the book's copy, 2016 protocol
    python -m helpers uci --data-dir UCI_Datasets --dataset kin8nm --protocol 2018 --profile full
"""

from __future__ import annotations

import argparse
import sys
import time

from helpers import config
from helpers.data.uci import load_uci
from helpers.errors import BookError
from helpers.models.mlp import protocol_2016, protocol_2018

HELP = "MC dropout on UCI regression (Gal & Ghahramani 2016/2018 protocols): RMSE and test log-likelihood"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", default=None,
                        help="folder with one sub-folder per dataset (default: the book's shipped copy)")
    parser.add_argument("--dataset", required=True, help="dataset folder name, e.g. yacht, concrete, kin8nm")
    parser.add_argument("--protocol", choices=("2016", "2018"), default=None,
                        help="2016: published τ, one training per split; 2018: per-split validation grid over "
                             "p and τ, then retraining (default: 2016 in the quick profile, 2018 in full)")
    parser.add_argument("--splits", type=int, default=None, help="use the first N splits (default: all)")
    parser.add_argument("--epochs", type=int, default=None,
                        help="training epochs (default: 10×n_epochs for 2016; 2018: 100×n_epochs in the full "
                             "profile, 10×n_epochs in quick)")
    parser.add_argument("--T", type=int, default=10_000, help="MC samples at test time (default 10000)")
    parser.add_argument("--tau", type=float, default=None, help="2016 protocol: model precision τ "
                                                                "(default: the published value)")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: $BOOK_DEVICE or the best found)")
    parser.add_argument("--seed", type=int, default=0)


def run(args: argparse.Namespace) -> dict:
    start = time.perf_counter()
    profile = config.get_profile(args.profile)
    protocol = args.protocol or config.pick("2016", "2018", profile)
    ds = load_uci(args.dataset, args.data_dir)
    n = len(ds.splits) if args.splits is None else args.splits
    if not 1 <= n <= len(ds.splits):
        raise BookError(f"--splits {n}: {ds.name} has {len(ds.splits)} splits")
    if args.T < 1:
        raise BookError(f"--T {args.T}: need at least one MC sample")
    device = config.get_device(args.device)
    config.seed_everything(args.seed)
    print(f"{ds!r}; protocol {protocol}, profile {profile}, device {device}", file=sys.stderr)
    common = dict(splits=range(n), T=args.T, device=device, seed=args.seed, progress=sys.stderr.isatty())
    if protocol == "2016":
        res = protocol_2016(ds, tau=args.tau, epochs=args.epochs, **common)
    else:
        epochs = args.epochs or config.pick(10, 100, profile) * int(ds.settings.get("n_epochs", 40))
        res = protocol_2018(ds, epochs=epochs, T_validation=min(args.T, 1000) if profile == "quick" else None,
                            **common)
    def num(v: float) -> float | None:  # JSON has no NaN: a standard error over one split is null
        return None if v != v else round(v, 4)

    rmse, rmse_se = res["rmse_mean_se"]
    ll, ll_se = res["ll_mean_se"]
    out = {"dataset": ds.name, "protocol": protocol, "profile": profile, "n_splits": n,
           "rmse": num(rmse), "rmse_se": num(rmse_se), "test_ll": num(ll),
           "test_ll_se": num(ll_se), "epochs": res["epochs"], "T": args.T, "splits_from": ds.split_source}
    if protocol == "2018":
        out["chosen_p"], out["chosen_tau"] = res["p"], res["tau"]
    else:
        out["p"], out["tau"], out["batch_size"] = res["p"], res["tau"], res["batch_size"]
        out["length_scale"] = res["length_scale"]
    out["seconds"] = round(time.perf_counter() - start, 2)
    return out
