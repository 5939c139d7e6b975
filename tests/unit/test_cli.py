"""`python -m helpers`: lists the experiments, reports the installation, and fails in one line on bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

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


def test_an_experiment_from_a_shell_restarts_once_with_passive_openmp_threads(monkeypatch):
    """OMP_WAIT_POLICY must be set before torch loads: main() re-executes the same command with it, once."""
    calls = []

    def fake_execve(path, args, env):
        calls.append((path, args, env))
        raise SystemExit(0)

    monkeypatch.setattr(cli.os, "execve", fake_execve)
    monkeypatch.setattr(cli.sys, "argv", ["helpers", "retina", "--test", "somewhere"])
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    monkeypatch.setenv("KEEP_ME", "1")
    with pytest.raises(SystemExit):
        cli.main()
    (path, args, env), = calls
    assert path == sys.executable and args == [sys.executable, "-m", "helpers", "retina", "--test", "somewhere"]
    assert env["OMP_WAIT_POLICY"] == "PASSIVE" and env["KEEP_ME"] == "1"
    assert env["TQDM_MININTERVAL"] == "30"  # stderr is captured here, not a terminal
    calls.clear()
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")  # the user's choice (and the restarted process) is kept
    cli._restart_with_run_environment()
    assert calls == []
    monkeypatch.delenv("OMP_WAIT_POLICY")
    assert cli.main(["info"]) == 0 and calls == []  # info and calls from Python never restart
