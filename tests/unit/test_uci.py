"""UCI loading and the standard splits (helpers.data.uci), a small end-to-end training run."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from helpers.data.uci import SHIPPED, load_uci, make_splits, standardise
from helpers.errors import DataError

from conftest import ROOT, shared_dataset

SHIPPED_DIR = ROOT / "data" / "uci"


@pytest.mark.parametrize("name", ["yacht", "concrete", "energy", "kin8nm"])
def test_generated_splits_are_identical_to_the_original_index_files(name):
    folder = shared_dataset("uci", name, "data")
    original = load_uci(name, folder.parents[1])
    assert original.split_source.startswith("index files") and len(original.splits) == 20
    generated = make_splits(original.X.shape[0], 20)
    for k, ((tr, te), (gtr, gte)) in enumerate(zip(original.splits, generated)):
        assert np.array_equal(tr, gtr) and np.array_equal(te, gte), f"{name} split {k} differs"


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_copy_equals_the_original_data(name):
    folder = shared_dataset("uci", name)
    ours, original = load_uci(name, SHIPPED_DIR), load_uci(name, folder.parent)
    assert np.array_equal(ours.X, original.X) and np.array_equal(ours.y, original.y)


def test_shipped_yacht_has_the_published_shape_and_disjoint_splits():
    ds = load_uci("yacht", SHIPPED_DIR)
    assert ds.X.shape == (308, 6) and ds.y.shape == (308,) and len(ds.splits) == 20
    for tr, te in ds.splits:
        assert len(tr) == 277 and len(te) == 31
        assert np.array_equal(np.sort(np.concatenate([tr, te])), np.arange(308))
    assert not np.array_equal(ds.splits[0][1], ds.splits[1][1])


def _copy(tmp_path, name="yacht"):
    dst = tmp_path / name / "data"
    shutil.copytree(SHIPPED_DIR / name, dst)
    return dst


def test_missing_data_file_names_the_place(tmp_path):
    with pytest.raises(DataError, match="no data.txt"):
        load_uci("yacht", tmp_path)


@pytest.mark.parametrize("files, message", [
    ({"data.txt": "1 2 3\n4 five 6\n"}, "data.txt"),                                   # malformed table
    ({"index_train_0.txt": "\n".join(map(str, range(10)))}, "index_test_0.txt"),       # test split missing
    ({"index_train_0.txt": "0\n1\n999\n", "index_test_0.txt": "2\n"}, "outside"),    # index out of range
    ({"index_features.txt": "0\n1\n42\n"}, "index_features.txt"),                     # no such column
], ids=["malformed-table", "missing-test-index", "index-out-of-range", "feature-column-out-of-range"])
def test_bad_files_are_data_errors_naming_the_file(tmp_path, files, message):
    dst = _copy(tmp_path)
    for name, text in files.items():
        (dst / name).write_text(text)
    with pytest.raises(DataError, match=message):
        load_uci("yacht", tmp_path)


def test_standardise_uses_training_statistics_and_keeps_constant_columns():
    train = np.array([[1.0, 5.0], [3.0, 5.0]])
    (tr, te), mean, std = standardise(train, np.array([[5.0, 6.0]]))
    assert np.allclose(tr.mean(0), 0) and std[1] == 1.0 and np.allclose(te, [[3.0, 1.0]])


def test_a_short_training_beats_the_mean_predictor():
    from helpers.models.mlp import train_members

    ds = load_uci("yacht", SHIPPED_DIR)
    out = train_members([ds.split(0), ds.split(1)], p=[0.05, 0.05], tau=[0.54, 0.54], epochs=200, T=50)
    baseline = [np.sqrt(np.mean((ds.split(k)[3] - ds.split(k)[1].mean()) ** 2)) for k in range(2)]
    assert np.all(out["rmse"].numpy() < 0.45 * np.array(baseline))  # reached: 0.34
    assert np.all(np.isfinite(out["ll"].numpy()))


def test_command_line_prints_one_json_line(capsys):
    import json

    from helpers.cli import main

    assert main(["uci", "--dataset", "yacht", "--splits", "2", "--epochs", "2", "--T", "5"]) == 0
    out = json.loads(capsys.readouterr().out.strip())
    assert out["dataset"] == "yacht" and out["n_splits"] == 2 and out["protocol"] == "2016"
    assert {"rmse", "rmse_se", "test_ll", "test_ll_se", "seconds"} <= out.keys()


def test_command_line_reports_a_missing_dataset_in_one_line(capsys, tmp_path):
    from helpers.cli import main

    assert main(["uci", "--data-dir", str(tmp_path), "--dataset", "nothing"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "nothing" in err and "Traceback" not in err
