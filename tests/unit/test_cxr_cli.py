"""`python -m helpers cxr`: chapter 5's pipeline on a user's folders; one JSON line, maps as PNG, and one-line
errors (exit status 2) on bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from helpers import cli


def _folder(root, n_per_class=10, size=40):
    """Two classes that differ in brightness, one image per 'patient' (the names carry no patient id)."""
    rng = np.random.default_rng(0)
    for k, cls in enumerate(("healthy", "sick")):
        (root / cls).mkdir(parents=True)
        for i in range(n_per_class):
            img = np.clip(rng.normal(80 + 90 * k, 20, (size, size)), 0, 255).astype(np.uint8)
            Image.fromarray(img).save(root / cls / f"{cls}{i:02d}.png")


def _main(args, capsys):
    code = cli.main(args)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_folder_layout_end_to_end_with_maps(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("TQDM_DISABLE", "1")
    _folder(tmp_path / "data", n_per_class=25)
    code, out, err = _main(["cxr", "--train", str(tmp_path / "data"), "--layout", "folder", "--weights",
                            "random", "--size", "32", "--out", str(tmp_path / "maps")], capsys)
    assert code == 0, err
    lines = out.strip().splitlines()
    assert len(lines) == 1
    res = json.loads(lines[0])
    for key in ("n_train", "n_train_patients", "n_test", "n_test_patients", "auc", "accuracy", "sensitivity",
                "specificity", "ece", "ece_temperature_scaled", "nll", "brier", "auc_after_referring_10pct",
                "weights", "seconds"):
        assert key in res, key
    assert res["weights"] == "random" and res["classes"] == ["healthy", "sick"]
    assert res["n_train"] + res["n_val"] + res["n_test"] == 50
    assert 0 <= res["auc"] <= 1 and res["auc"] > 0.8          # brightness separates the classes
    pngs = sorted((tmp_path / "maps").glob("*.png"))
    assert len(pngs) == 3 * res["n_test"] == res["maps_written"]
    assert Image.open(pngs[0]).size == (32, 32)
    # second run: features come from the cache
    code, out2, _ = _main(["cxr", "--train", str(tmp_path / "data"), "--layout", "folder", "--weights",
                           "random", "--size", "32"], capsys)
    assert code == 0 and json.loads(out2)["auc"] == res["auc"]


@pytest.mark.parametrize("setup, message", [
    ("missing", "no such folder"), ("one_class", "class folder"), ("empty_class", "has no images"),
    ("bad_weights", "no such weights file"), ("nih_no_csv", "no Data_Entry_2017.csv")])
def test_bad_input_is_one_line_and_exit_2(tmp_path, monkeypatch, capsys, setup, message):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    root = tmp_path / "data"
    extra = []
    if setup == "one_class":
        (root / "healthy").mkdir(parents=True)
    elif setup == "empty_class":
        _folder(root, 3)
        for p in (root / "sick").iterdir():
            p.unlink()
    elif setup == "bad_weights":
        _folder(root, 25)
        extra = ["--weights", str(tmp_path / "nope.pt")]
    elif setup == "nih_no_csv":
        root.mkdir()
        extra = ["--layout", "nih"]
    code, out, err = _main(["cxr", "--train", str(root), "--size", "32", *extra], capsys)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("error: ") and message in err
