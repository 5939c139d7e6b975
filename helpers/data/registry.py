"""The registry of the book's sample data: every file with its sha256, local copy first, download for Colab.

The repository ships the data under ``data/``. A reader who installed only the package (Colab) gets each dataset
as one zip archive from the repository's GitHub release :func:`release_tag` (``data-`` and the first 12 hex digits
of the archives' sha256 sums, so every version of the data has its own release and an older install keeps
working); archives and files are checked against the sha256 sums in ``registry.txt`` (shipped inside the
package). ``python -m helpers.data --update`` rewrites the registry from ``data/``; ``--archives DIR`` writes the
release archives. Nobody uploads them by hand: the publishing workflow (``.github/workflows/book.yml``) creates
the release when it does not exist yet (``python -m helpers.data --release-tag`` prints its name).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import zipfile
from functools import lru_cache
from pathlib import Path

from helpers import config
from helpers.errors import DataError

REGISTRY_FILE = Path(__file__).with_name("registry.txt")
_ZIP_DATE = (2024, 1, 1, 0, 0, 0)  # fixed timestamps make the archives byte-for-byte reproducible


def sha256(path: Path) -> str:
    """Hex sha256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@lru_cache(maxsize=1)
def _read() -> tuple[dict[str, str], dict[str, str]]:
    files: dict[str, str] = {}
    archives: dict[str, str] = {}
    for line in REGISTRY_FILE.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        name, digest = line.rsplit(maxsplit=1)
        (archives if name.startswith("@") else files)[name.lstrip("@")] = digest
    return files, archives


def registry() -> dict[str, str]:
    """All registered files: ``"dataset/relative/path" -> sha256``."""
    return dict(_read()[0])


def datasets() -> list[str]:
    """Names of the registered datasets (the first folder of each registered path)."""
    return sorted({name.split("/", 1)[0] for name in _read()[0]})


def files_of(dataset: str) -> dict[str, str]:
    """The registered files of one dataset: ``relative path -> sha256``."""
    if dataset not in datasets():
        raise DataError(f"unknown dataset {dataset!r}; the book ships: {', '.join(datasets())}")
    prefix = dataset + "/"
    return {k[len(prefix):]: v for k, v in _read()[0].items() if k.startswith(prefix)}


def missing_files(dataset: str, root: Path) -> list[str]:
    """Registered files of ``dataset`` that are absent under ``root/dataset``."""
    base = root / dataset
    return [rel for rel in files_of(dataset) if not (base / rel).is_file()]


def verify(dataset: str, root: Path | None = None) -> list[str]:
    """Check every file of ``dataset`` under ``root`` (default: the data directory); return the problems found."""
    base = (root or config.data_dir()) / dataset
    problems = []
    for rel, digest in files_of(dataset).items():
        path = base / rel
        if not path.is_file():
            problems.append(f"{path}: missing")
        elif sha256(path) != digest:
            problems.append(f"{path}: sha256 differs from the registry (file changed or corrupted)")
    return problems


def release_tag() -> str:
    """The GitHub release holding this version's archives: ``data-`` + 12 hex digits of their sha256 sums."""
    archives = _read()[1]
    text = "\n".join(f"{name} {digest}" for name, digest in sorted(archives.items()))
    return "data-" + hashlib.sha256(text.encode()).hexdigest()[:12]


def archive_url(dataset: str) -> str:
    """Where the release archive of ``dataset`` is downloaded from."""
    return f"{config.REPOSITORY_URL}/releases/download/{release_tag()}/{dataset}.zip"


def fetch(dataset: str, *, download: bool = True) -> Path:
    """Return the local folder of a registered dataset: the data directory first, else a verified download.

    Raises :class:`DataError` naming the folder and the missing files when the data is not there and cannot be
    downloaded (for example with no network).
    """
    root = config.data_dir()
    missing = missing_files(dataset, root)
    if not missing:
        return root / dataset
    local_problem = f"{root / dataset}: {len(missing)} of {len(files_of(dataset))} files missing (e.g. {missing[0]})"
    if os.environ.get(config.DATA_DIR_ENV) or config.repo_root() is not None or not download:
        raise DataError(f"{local_problem}. Restore the folder (git checkout data/) or unset {config.DATA_DIR_ENV}.")
    return _download(dataset, root, local_problem)


def _download(dataset: str, root: Path, local_problem: str) -> Path:
    import pooch  # imported here: only Colab-style installs need it

    digest = _read()[1].get(f"{dataset}.zip")
    if digest is None:
        raise DataError(f"{local_problem}, and the registry has no release archive for it")
    url = archive_url(dataset)
    print(f"Downloading the book's {dataset!r} sample data from {url} ...", flush=True)
    try:
        zip_path = pooch.retrieve(url, known_hash=f"sha256:{digest}", path=config.cache_dir() / "downloads",
                                  fname=f"{dataset}.zip", progressbar=False)
    except Exception as exc:  # network errors come from requests, hash errors from pooch
        raise DataError(f"{local_problem}, and downloading {url} failed ({type(exc).__name__}: {exc}). "
                        f"With no internet, clone the repository (its data/ folder) or set "
                        f"{config.DATA_DIR_ENV} to a folder holding {dataset}/.") from exc
    with zipfile.ZipFile(zip_path) as zf:
        zf.extractall(root)
    problems = verify(dataset, root)
    if problems:
        raise DataError(f"{url}: the unpacked archive does not match the registry: {problems[0]}")
    return root / dataset


def build_registry(root: Path) -> str:
    """Registry text for every file under ``root``'s dataset folders (README and licence files included)."""
    lines = ["# path sha256 -- written by `python -m helpers.data --update`; do not edit by hand"]
    for ds in sorted(p for p in root.iterdir() if p.is_dir()):
        for path in sorted(p for p in ds.rglob("*") if p.is_file()):
            lines.append(f"{path.relative_to(root).as_posix()} {sha256(path)}")
    return "\n".join(lines) + "\n"


def build_archive(dataset: str, root: Path, out_dir: Path) -> Path:
    """Write ``out_dir/dataset.zip`` with the registered files, reproducibly (fixed order and timestamps)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / f"{dataset}.zip"
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as zf:
        for rel in sorted(files_of(dataset)):
            info = zipfile.ZipInfo(f"{dataset}/{rel}", date_time=_ZIP_DATE)
            info.external_attr = 0o644 << 16
            zf.writestr(info, (root / dataset / rel).read_bytes())
    return out


def _main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m helpers.data", description=__doc__.split("\n")[0])
    parser.add_argument("--update", action="store_true", help="rewrite registry.txt from the data directory")
    parser.add_argument("--archives", type=Path, help="write the release archives into this folder")
    parser.add_argument("--verify", action="store_true", help="check every file's sha256")
    parser.add_argument("--release-tag", action="store_true", help="print the release the archives belong to")
    args = parser.parse_args(argv)
    if args.release_tag:
        print(release_tag())
        return
    root = config.data_dir()
    if args.update:
        REGISTRY_FILE.write_text(build_registry(root))  # files first: the archives are built from this list
        _read.cache_clear()
        out = args.archives or config.cache_dir() / "release"
        lines = [REGISTRY_FILE.read_text().rstrip("\n")]
        lines += [f"@{ds}.zip {sha256(build_archive(ds, root, out))}" for ds in datasets()]
        REGISTRY_FILE.write_text("\n".join(lines) + "\n")
        _read.cache_clear()
        print(f"wrote {REGISTRY_FILE} ({len(registry())} files, {len(datasets())} archives in {out})")
    elif args.archives is not None:
        for ds in datasets():
            print(build_archive(ds, root, args.archives))
    if args.verify:
        bad = [p for ds in datasets() for p in verify(ds, root)]
        print("\n".join(bad) if bad else f"all {len(registry())} files match the registry")
        raise SystemExit(1 if bad else 0)


if __name__ == "__main__":
    _main()
