"""The app's benchmark (issue 15): from upload to result, per task, with the models cached, against the targets.

Run on demand (never in tests), after the chapters have cached their models:

    .venv/bin/python benchmarks/app.py             # every task, 3 repeats each, plus the Voila start-up
    .venv/bin/python benchmarks/app.py --no-voila  # only helpers.app.analyze

"Upload to result" is :func:`helpers.app.analyze` on the bytes of a shipped file (decoding, input checks, MC
dropout, uncertainty, saliency) plus rendering the figure (PNG) and the PDF report, i.e. everything the page does
after the browser has sent the file. The first call per task also loads the model into memory (reported apart as
``load``); the repeats are what a user meets from the second upload on. With ``--voila`` (default) it also
starts ``python -m helpers.app`` as ``make app`` does (Voila serving the app cells of ``chapters/07_app.ipynb``)
and measures the seconds until the page is served with its cells executed. Targets (issue 15, 2 CPU cores): chest X-ray and a 256×256 nuclei image
<= 5 s, a fundus photograph <= 20 s, the app ready <= 15 s after ``make app``. Prints one JSON line and a table.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGETS = {"retina": 20.0, "cxr": 5.0, "cells": 5.0}


def samples() -> dict[str, Path]:
    data = ROOT / "data"
    return {"retina": data / "chase_db1" / "Image_11L.jpg",
            "cxr": sorted((data / "chest_xray" / "PNEUMONIA").iterdir())[0],
            "cells": next(p for p in sorted((data / "cells" / "images").iterdir())
                          if p.suffix == ".png" and _side(p) == (256, 256))}


def _side(path: Path) -> tuple[int, int]:
    from PIL import Image

    with Image.open(path) as im:
        return im.size


def time_analyze(repeats: int) -> dict:
    import torch

    from helpers import app

    out = {"threads": torch.get_num_threads()}
    for task, path in samples().items():
        data = path.read_bytes()
        start = time.perf_counter()
        app.load_bundle(task, train_if_missing=False, progress=False)
        load = time.perf_counter() - start
        runs = []
        for _ in range(repeats):
            start = time.perf_counter()
            result = app.analyze(data, task, name=path.name)
            result.png()
            result.report_pdf()
            runs.append(time.perf_counter() - start)
        out[task] = {"load_s": round(load, 2), "upload_to_result_s": [round(r, 2) for r in runs],
                     "median_s": round(sorted(runs)[len(runs) // 2], 2), "target_s": TARGETS[task],
                     "image": f"{path.name} {_side(path)[0]}x{_side(path)[1]}"}
    return out


def time_voila(timeout: float = 300.0) -> dict:
    """Seconds from starting Voila as ``make app`` does to the page fully served (worked examples included)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "helpers.app", f"--port={port}"]     # what `make app` runs
    env = {**os.environ, "TQDM_DISABLE": "1"}
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}/"
        while True:
            try:
                with urllib.request.urlopen(url, timeout=timeout) as r:   # Voila answers after executing
                    body = r.read().decode(errors="replace")
                break
            except (urllib.error.URLError, ConnectionError):
                if time.perf_counter() - start > timeout or proc.poll() is not None:
                    return {"error": "Voila did not serve the page"}
                time.sleep(0.3)
        served = time.perf_counter() - start
        done = "Upload image" in body or "widget-view" in body
        return {"page_served_s": round(served, 1), "widget_in_page": done, "target_s": 15.0}
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-voila", action="store_true", help="skip the Voila start-up measurement")
    args = parser.parse_args()
    os.environ.setdefault("TQDM_DISABLE", "1")
    result = {"analyze": time_analyze(args.repeats)}
    if not args.no_voila:
        result["voila"] = time_voila()
    result["load_average_1min"] = round(os.getloadavg()[0], 2)
    result["cpu_count"] = os.cpu_count()
    print(json.dumps(result))
    print(f"\n{'task':8s} {'image':34s} {'load':>6s} {'median':>7s} {'target':>7s}")
    for task in TARGETS:
        r = result["analyze"][task]
        ok = "ok" if r["median_s"] <= r["target_s"] else "MISSED"
        print(f"{task:8s} {r['image']:34s} {r['load_s']:5.1f}s {r['median_s']:6.1f}s {r['target_s']:6.0f}s {ok}")
    if "voila" in result and "page_served_s" in result["voila"]:
        v = result["voila"]
        print(f"app page served after {v['page_served_s']:.1f} s (target 15 s; widget in the page: "
              f"{v['widget_in_page']})")


if __name__ == "__main__":
    main()
