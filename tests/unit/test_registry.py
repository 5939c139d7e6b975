"""The sample-data registry: every shipped file is registered with its sha256, archives are reproducible,
and a missing dataset is downloaded, verified, or reported clearly."""

from __future__ import annotations

import functools
import re
import http.server
import shutil
import threading
from pathlib import Path

import pytest

from helpers import config
from helpers.data import registry
from helpers.errors import DataError


def test_every_shipped_file_is_registered_with_its_sha256(repo_root):
    data = repo_root / "data"
    on_disk = {p.relative_to(data).as_posix() for p in data.rglob("*") if p.is_file() and p.parent != data}
    assert on_disk == set(registry.registry()), "run `python -m helpers.data --update`"
    for ds in registry.datasets():
        assert registry.verify(ds, data) == []


def test_sample_data_stays_small(repo_root):
    total = sum(p.stat().st_size for p in (repo_root / "data").rglob("*") if p.is_file())
    assert total < 15e6, f"the book's sample data is {total / 1e6:.1f} MB"


def test_verify_detects_a_changed_file(tmp_path, repo_root):
    shutil.copytree(repo_root / "data" / "chase_db1", tmp_path / "chase_db1")
    victim = tmp_path / "chase_db1" / "Image_01L_1stHO.png"
    victim.write_bytes(victim.read_bytes() + b"\0")
    (tmp_path / "chase_db1" / "Image_02L.jpg").unlink()
    problems = registry.verify("chase_db1", tmp_path)
    assert any("Image_01L_1stHO.png: sha256 differs" in p for p in problems)
    assert any("Image_02L.jpg: missing" in p for p in problems)


def test_archives_are_reproducible_and_match_the_registry(tmp_path, repo_root):
    archives = registry._read()[1]
    assert set(archives) == {f"{ds}.zip" for ds in registry.datasets()}
    for ds in registry.datasets():
        first = registry.build_archive(ds, repo_root / "data", tmp_path / "a")
        second = registry.build_archive(ds, repo_root / "data", tmp_path / "b")
        assert first.read_bytes() == second.read_bytes()
        assert registry.sha256(first) == archives[f"{ds}.zip"], "archive differs: rerun --update"


def test_local_copy_is_used_first(monkeypatch, repo_root):
    monkeypatch.delenv(config.DATA_DIR_ENV, raising=False)
    assert registry.fetch("chase_db1") == repo_root / "data" / "chase_db1"


def test_unknown_dataset_is_a_clear_error():
    with pytest.raises(DataError, match="unknown dataset 'mnist'"):
        registry.fetch("mnist")


def test_missing_local_copy_names_the_folder(monkeypatch, tmp_path):
    monkeypatch.setenv(config.DATA_DIR_ENV, str(tmp_path))
    with pytest.raises(DataError, match=rf"{tmp_path}/chase_db1: 84 of 84 files missing"):
        registry.fetch("chase_db1")


@pytest.fixture()
def package_only_install(monkeypatch, tmp_path):
    """Simulate a Colab install: no repository checkout, an empty cache."""
    monkeypatch.delenv(config.DATA_DIR_ENV, raising=False)
    monkeypatch.setattr(config, "repo_root", lambda: None)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path


def test_offline_download_fails_with_a_clear_error(package_only_install, monkeypatch):
    monkeypatch.setattr(registry, "archive_url", lambda ds: f"http://127.0.0.1:9/{ds}.zip")  # nothing listens
    with pytest.raises(DataError, match=r"downloading http://127\.0\.0\.1:9/chase_db1\.zip failed.*no internet"):
        registry.fetch("chase_db1")


def test_download_from_a_release_is_verified_and_unpacked(package_only_install, monkeypatch, repo_root):
    release = package_only_install / "release"
    registry.build_archive("chase_db1", repo_root / "data", release)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(release))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        port = server.server_address[1]
        monkeypatch.setattr(registry, "archive_url", lambda ds: f"http://127.0.0.1:{port}/{ds}.zip")
        path = registry.fetch("chase_db1")
        assert path == package_only_install / "cache" / "trustworthy-medimg" / "data" / "chase_db1"
        assert registry.verify("chase_db1", path.parent) == []
        # A corrupted release archive is refused by its sha256.
        shutil.rmtree(path)
        for f in (package_only_install / "cache").rglob("*.zip"):
            f.unlink()
        (release / "chase_db1.zip").write_bytes(b"not the archive")
        with pytest.raises(DataError, match="failed"):
            registry.fetch("chase_db1")
    finally:
        server.shutdown()


def test_publishing_workflow_creates_the_release_that_colab_downloads_from(repo_root):
    """Colab readers need the archives at archive_url: the workflow, not a person, must put them there."""
    import yaml

    workflow = yaml.safe_load((repo_root / ".github" / "workflows" / "book.yml").read_text())
    assert workflow["permissions"]["contents"] == "write", "creating a release needs contents: write"
    steps = [s.get("run", "") for s in workflow["jobs"]["build"]["steps"]]
    publish = next((s for s in steps if "gh release create" in s), None)
    assert publish is not None, "no step creates the data release"
    assert "make data-release" in publish and "_build/release/*.zip" in publish
    assert "python -m helpers.data --release-tag" in publish
    # make data-release writes the archives where the workflow uploads them from
    assert "--archives _build/release" in (repo_root / "Makefile").read_text()
    # and the URL the helpers download from is that release of the repository named in _config.yml
    url = yaml.safe_load((repo_root / "_config.yml").read_text())["repository"]["url"]
    tag = registry.release_tag()
    assert re.fullmatch(r"data-[0-9a-f]{12}", tag)
    for ds in registry.datasets():
        assert registry.archive_url(ds) == f"{url}/releases/download/{tag}/{ds}.zip"


def test_release_tag_changes_with_the_data(monkeypatch):
    before = registry.release_tag()
    files, archives = registry._read()
    changed = dict(archives, **{"uci.zip": "0" * 64})
    monkeypatch.setattr(registry, "_read", lambda: (files, changed))
    assert registry.release_tag() != before
