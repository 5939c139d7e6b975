"""`python -m helpers`: lists the experiments, reports the installation, and fails in one line on bad input."""

from __future__ import annotations

import json
import subprocess
import sys

from helpers import cli


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "helpers", *args], capture_output=True, text=True, timeout=120)


def test_help_lists_every_experiment_module():
    out = _run("--help")
    assert out.returncode == 0
    for name in cli.experiments():
        assert name in out.stdout
    assert "info" in out.stdout


def test_info_reports_versions_profile_device_and_data():
    out = _run("info")
    assert out.returncode == 0
    info = json.loads(out.stdout)
    assert info["profile"] in ("quick", "full")
    assert info["versions"]["torch"] and info["device"]
    assert set(info["datasets"]) >= {"chase_db1", "chest_xray"}


def test_experiments_follow_the_command_contract():
    for name, mod in cli.experiments().items():
        assert isinstance(mod.HELP, str) and mod.HELP, name
        assert callable(mod.add_arguments) and callable(mod.run), name


def test_a_user_error_is_one_line_and_exit_status_2(monkeypatch, capsys):
    monkeypatch.setenv("BOOK_PROFILE", "turbo")
    assert cli.main(["info"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: BOOK_PROFILE='turbo'") and err.count("\n") == 1


def test_a_decompression_bomb_in_a_drive_folder_is_one_line_and_no_traceback(tmp_path, capsys):
    """A 20000×20000 TIFF (0.4 MB on disk, 400 megapixels declared) among DRIVE images: the retina command
    names the file in one line and exits with status 2 before training; the file is left as it was."""
    from tests.unit.test_retina import bomb_tiff, write_drive

    root = write_drive(tmp_path / "DRIVE" / "training", n=2)
    bomb = bomb_tiff(root / "images" / "22_training.tif")
    before = bomb.read_bytes()
    code = cli.main(["retina", "--train", str(root), "--test", str(root), "--layout", "drive", "--profile",
                     "full"])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith(f"error: {bomb}: the image declares 400,000,000 pixels")
    assert "Traceback" not in err and "DecompressionBomb" not in err
    assert bomb.read_bytes() == before
