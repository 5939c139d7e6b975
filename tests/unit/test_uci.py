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


def test_published_2016_standard_errors_are_the_papers_standard_deviations_over_root_20():
    """The paper prints ± one standard deviation over 20 splits; PUBLISHED holds standard errors (sd / √20)."""
    from helpers.data.uci import PAPER_SD_2016, PUBLISHED

    for name, (sd_rmse, sd_ll) in PAPER_SD_2016.items():
        if name == "protein":  # 5 splits; its published error does not follow from them (see the docstring)
            continue
        _, se_rmse, _, se_ll = PUBLISHED["2016"][name]
        assert abs(sd_rmse / np.sqrt(20) - se_rmse) <= 0.0051, name
        assert abs(sd_ll / np.sqrt(20) - se_ll) <= 0.0051, name


def _log_line(path, key):
    """``(mean, sd)`` from a line of the authors' log files: ``MC errors 1.109 +- 0.380, median ...``."""
    line = next(x for x in path.read_text().splitlines() if x.startswith(key + " "))
    parts = line.split()
    return float(parts[len(key.split())]), float(parts[len(key.split()) + 2].rstrip(","))


@pytest.mark.parametrize("name", ["yacht", "concrete", "energy", "kin8nm"])
def test_published_rows_are_the_authors_logs(name):
    """2016: the mean and np.std of the authors' per-split logs give the paper's row and PAPER_SD_2016; 2018: the
    README's grid-search row is the 100x-epochs log (its ± the standard error, sd / √20)."""
    from helpers.data.uci import PAPER_SD_2016, PUBLISHED

    folder = shared_dataset("uci", name)
    log16 = folder / "reference_results_2016" / "net" / "results" / "log.txt"
    (rmse, sd_rmse), (ll, sd_ll) = _log_line(log16, "MC errors"), _log_line(log16, "lls")
    pub = PUBLISHED["2016"][name]
    assert (round(rmse, 2), round(ll, 2)) == pytest.approx((pub[0], pub[2]), abs=0.0051)
    assert (round(sd_rmse, 2), round(sd_ll, 2)) == pytest.approx(PAPER_SD_2016[name], abs=0.0051)
    log18 = folder / "reference_results_2018" / "log_100_xepochs_1_hidden_layers.txt"
    (rmse, sd_rmse), (ll, sd_ll) = _log_line(log18, "MC errors"), _log_line(log18, "lls")
    pub = PUBLISHED["2018"][name]
    assert (rmse, ll) == pytest.approx((pub[0], pub[2]), abs=0.0071)  # the README truncates some (concrete)
    se_rmse, se_ll = sd_rmse / np.sqrt(20), sd_ll / np.sqrt(20)
    if name == "energy":  # the README's RMSE ± 0.06 is the log's standard deviation (0.060), not its error (0.014)
        assert sd_rmse == pytest.approx(pub[1], abs=0.0051) and se_rmse < pub[1] / 4
    else:  # yacht's LL error reads 0.01 where the log gives 0.0153
        assert se_rmse == pytest.approx(pub[1], abs=0.006)
    assert se_ll == pytest.approx(pub[3], abs=0.006)


def test_protocol_2016_uses_the_authors_script_settings():
    from helpers.models.mlp import SETTINGS_2016, protocol_2016

    assert {k: v["p"] for k, v in SETTINGS_2016.items()} == {"yacht": 0.01, "concrete": 0.01, "energy": 0.05}
    r = protocol_2016(load_uci("yacht", SHIPPED_DIR), splits=[0], epochs=1, T=2)
    assert (r["p"], r["batch_size"], r["length_scale"]) == (0.01, 32, 0.1)
