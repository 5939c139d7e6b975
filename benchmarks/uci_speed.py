"""Chapter 1 speed targets, printed (never asserted). Run on demand:

    .venv/bin/python benchmarks/uci_speed.py [--data-dir ../shared/data/uci] [--device cpu]

1. The 20 splits of yacht in the 2016 protocol (published τ, 400 epochs, T = 10,000), all splits trained as one
   batched computation: with the paper's stated settings (p = 0.05, batch 128; target < 10 s on 2 cores; the
   original code took about 3 s per split) and with the authors' script settings (p = 0.01, batch 32,
   prior length scale 0.1).
2. The vectorised MC predictor against a loop of T passes, T = 1,000, on the yacht network (target ≥ 5×).
Prints one JSON line per measurement.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from helpers.config import get_device, seed_everything
from helpers.data.uci import load_uci
from helpers.models.mlp import DropoutMLP, protocol_2016
from helpers.uncertainty import mc_samples, mc_samples_loop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=None, help="original layout (default: the book's copy)")
    parser.add_argument("--device", default=None)
    parser.add_argument("--T", type=int, default=10_000)
    args = parser.parse_args()
    device = get_device(args.device)
    ds = load_uci("yacht", args.data_dir)
    for label, kw in [("paper settings p=0.05 batch 128 l=0.01",
                       dict(p=0.05, batch_size=128, length_scale=0.01)),
                      ("author script p=0.01 batch 32 l=0.1", dict())]:
        seed_everything(0)
        start = time.perf_counter()
        r = protocol_2016(ds, T=args.T, device=device, **kw)
        secs = time.perf_counter() - start
        print(json.dumps({"benchmark": "yacht 2016, 20 splits", "settings": label, "device": str(device),
                          "seconds": round(secs, 2), "target_seconds": 10, "rmse": r["rmse_mean_se"],
                          "test_ll": r["ll_mean_se"], "epochs": r["epochs"], "T": args.T}), flush=True)
    X_tr, _, X_te, _ = ds.split(0)
    net = DropoutMLP(X_tr.shape[1], 50, 0.05)
    x = torch.tensor((X_te - X_tr.mean(0)) / X_tr.std(0), dtype=torch.float32)
    times = {}
    for name, fn in [("loop", mc_samples_loop), ("vectorised", mc_samples)]:
        fn(net, x, T=50)  # warm-up
        start = time.perf_counter()
        for _ in range(3):
            fn(net, x, T=1000)
        times[name] = (time.perf_counter() - start) / 3
    print(json.dumps({"benchmark": "MC predictor T=1000, yacht test set (31 rows)",
                      "loop_ms": round(1000 * times["loop"], 1), "vectorised_ms": round(1000 * times["vectorised"], 1),
                      "speedup": round(times["loop"] / times["vectorised"], 1), "target_speedup": 5}))


if __name__ == "__main__":
    main()
