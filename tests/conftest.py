"""Shared fixtures: the read-only real datasets in ../shared/data (tests using them skip when absent)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Iterator

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("BOOK_SHARED_DATA", ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The repository checkout."""
    return ROOT


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` (the real public datasets in their original layouts), or skip saying why."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"{SHARED_DATA} is absent: the real-format datasets are not available on this machine")
    return SHARED_DATA


def shared_dataset(*parts: str) -> Path:
    """A folder under ``../shared/data`` or skip saying which one is missing (for use inside tests)."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is absent: this test needs the real dataset in its original layout")
    return path


#: Headless Chromium without the background services that would contact other hosts.
CHROME_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium_browser(missing: Callable[[str], None]) -> Iterator:
    """Launch headless Chromium through Playwright (``$CHROMIUM`` or the system's ``chromium``) and yield it;
    without one, call ``missing`` (``pytest.skip`` or ``pytest.fail``) with the message."""
    import shutil

    exe = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not exe:
        missing("Chromium not found: install it (Debian package 'chromium') or set CHROMIUM")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=exe, args=CHROME_ARGS, headless=True)
        yield b
        b.close()
