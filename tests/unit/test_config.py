"""helpers.config: the profile switch, seeding, device and data directory."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from helpers import config
from helpers.errors import BookError


def test_profile_defaults_to_quick(monkeypatch):
    monkeypatch.delenv(config.PROFILE_ENV, raising=False)
    assert config.get_profile() == "quick"
    assert config.pick(1, 2) == 1


def test_profile_switch_is_read_from_the_environment(monkeypatch):
    monkeypatch.setenv(config.PROFILE_ENV, "FULL")
    assert config.get_profile() == "full"
    assert config.pick("few", "many") == "many"
    assert config.get_profile("quick") == "quick"  # an explicit argument wins


def test_unknown_profile_is_a_clear_error(monkeypatch):
    monkeypatch.setenv(config.PROFILE_ENV, "fast")
    with pytest.raises(BookError, match="BOOK_PROFILE='fast'.*quick, full"):
        config.get_profile()


def test_seed_everything_makes_torch_and_numpy_repeatable():
    config.seed_everything(7)
    a = torch.rand(3), np.random.rand(3)
    config.seed_everything(7)
    b = torch.rand(3), np.random.rand(3)
    assert torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    config.seed_everything(8)
    assert not torch.equal(a[0], torch.rand(3))


def test_device_can_be_forced(monkeypatch):
    monkeypatch.setenv(config.DEVICE_ENV, "cpu")
    assert config.get_device() == torch.device("cpu")


def test_data_dir_is_the_repository_data_folder_unless_overridden(monkeypatch, tmp_path, repo_root):
    monkeypatch.delenv(config.DATA_DIR_ENV, raising=False)
    assert config.data_dir() == repo_root / "data"
    monkeypatch.setenv(config.DATA_DIR_ENV, str(tmp_path))
    assert config.data_dir() == tmp_path


def test_progress_bars_honour_tqdm_disable(monkeypatch):
    """The book's build sets TQDM_DISABLE so no bar reaches the website; an explicit disable=False must not win."""
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    assert config.no_progress(True) is False and config.no_progress(False) is True
    monkeypatch.setenv("TQDM_DISABLE", "1")
    assert config.no_progress(True) is True


def test_setup_switches_off_notebook_bars_when_the_build_asks(monkeypatch):
    """tqdm.notebook does not read TQDM_DISABLE; setup() makes every bar honour it (none reaches the website)."""
    import tqdm.notebook
    import tqdm.std

    from helpers.notebook import setup

    monkeypatch.setenv("TQDM_DISABLE", "1")
    monkeypatch.setattr(tqdm.std.tqdm, "__init__", tqdm.std.tqdm.__init__)
    monkeypatch.setattr(tqdm.notebook.tqdm_notebook, "__init__", tqdm.notebook.tqdm_notebook.__init__)
    monkeypatch.setattr(tqdm.std.tqdm, "_book_quiet", False, raising=False)
    monkeypatch.setattr(tqdm.notebook.tqdm_notebook, "_book_quiet", False, raising=False)
    setup(seed=0)
    assert tqdm.std.tqdm(range(3), disable=False).disable is True
    assert tqdm.notebook.tqdm_notebook(range(3), disable=False).disable is True
