"""pytest plugin: keep what nbval executed, so the site build does not execute every chapter a second time.

`make chapters` (the first half of both `make book` and `make test`) runs the chapters under nbval with
``-p tests.nbval_to_cache``. For each notebook whose cells all passed, the executed notebook (outputs, plus the
ipywidgets state captured from the kernel's comm messages the way nbclient does it) is stored in the Jupyter Book
execution cache (``_build/.jupyter_cache``). The build that follows (``execute_notebooks: cache``) finds every
chapter there, keyed by the hash of its code, and renders those outputs. Both commands empty the cache first, so
each always executes every chapter itself.

Works with pytest-xdist (``-n 2 --dist loadfile``: two chapters at a time, each in its own kernel): each chapter's
time travels with its last cell's report and is printed by the main process as the chapter ends.
"""

from __future__ import annotations

import time
from pathlib import Path

import nbformat
import pytest
from jupyter_cache import get_cache
from jupyter_cache.base import CacheBundleIn
from nbclient import NotebookClient
from nbval.plugin import IPyNbCell, IPyNbFile

CACHE = Path(__file__).resolve().parents[1] / "_build" / ".jupyter_cache"

_original_get_message = IPyNbFile.get_kernel_message


def _recording_get_message(self, *args, **kwargs):
    """nbval ignores comm messages; record widget state from them as nbclient would."""
    msg = _original_get_message(self, *args, **kwargs)
    if msg["msg_type"] in ("comm_open", "comm_msg"):
        client = self.__dict__.setdefault("_widget_client", NotebookClient(nbformat.v4.new_notebook()))
        client.handle_comm_msg([], msg, 0)
    return msg


IPyNbFile.get_kernel_message = _recording_get_message


_config = None


def pytest_configure(config):
    global _config
    _config = config


def pytest_runtest_logreport(report):
    """Print "<chapter>: executed in N s" in the main process (with or without xdist)."""
    terminal = _config.pluginmanager.get_plugin("terminalreporter") if _config is not None else None
    for key, value in getattr(report, "user_properties", []):
        if key == "chapter_executed" and terminal is not None:
            terminal.write_line(f"\n{value[0]}: executed in {value[1]:.0f} s{value[2]}")


def pytest_runtest_setup(item):
    if isinstance(item, IPyNbCell):
        item.parent.__dict__.setdefault("_started", time.perf_counter())


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    if not isinstance(item, IPyNbCell) or call.when != "call":
        return
    report = outcome.get_result()
    nb_file = item.parent
    last = item.cell_num == max(c.cell_num for c in nb_file.session.items if c.parent is nb_file)
    if report.failed or item.test_outputs is None:
        nb_file.__dict__["_cache_failed"] = True
    else:
        item.cell.outputs = without_suppressed_result(item.cell.source, item.test_outputs)
        item.cell.execution_count = item.cell_num + 1
    if last:
        seconds = time.perf_counter() - nb_file.__dict__.get("_started", time.perf_counter())
        stored = _store(nb_file)
        note = "" if stored else " (a cell failed: not cached)"
        report.user_properties.append(("chapter_executed", (nb_file.path.name, seconds, note)))


def without_suppressed_result(source: str, outputs: list) -> list:
    """IPython's rule, which nbval does not apply: a cell whose last line ends with ``;`` displays no result
    (``model.eval();`` must not print the whole network on the website)."""
    lines = [line for line in source.rstrip().splitlines() if line.strip()]
    if lines and lines[-1].split("#")[0].rstrip().endswith(";"):
        return [o for o in outputs if o.get("output_type") != "execute_result"]
    return outputs


def _store(nb_file: IPyNbFile) -> bool:
    """Put the executed notebook in the execution cache, unless one of its cells failed."""
    if nb_file.__dict__.get("_cache_failed"):
        return False
    nb = nb_file.nb
    client = nb_file.__dict__.get("_widget_client")
    if client is not None:
        client.nb = nb
        client.set_widgets_metadata()
    CACHE.mkdir(parents=True, exist_ok=True)
    cache = get_cache(str(CACHE))
    cache.cache_notebook_bundle(CacheBundleIn(nb, uri=str(nb_file.path)), check_validity=False, overwrite=True)
    return True
