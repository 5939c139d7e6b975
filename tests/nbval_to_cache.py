"""pytest plugin: keep what nbval executed, so the site build does not execute every chapter a second time.

`make test` runs the chapters under nbval with ``-p tests.nbval_to_cache``. For each notebook whose cells all
passed, the executed notebook (outputs, plus the ipywidgets state captured from the kernel's comm messages the
way nbclient does it) is stored in the Jupyter Book execution cache (``_build/.jupyter_cache``). The build that
follows (``execute_notebooks: cache``) finds every chapter there, keyed by the hash of its code, and renders
those outputs. `make book` empties the cache first, so the book command always executes every chapter itself.
"""

from __future__ import annotations

import sys
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
    if report.failed or item.test_outputs is None:
        nb_file.__dict__["_cache_failed"] = True
        return
    item.cell.outputs = without_suppressed_result(item.cell.source, item.test_outputs)
    item.cell.execution_count = item.cell_num + 1
    if item.cell_num == max(c.cell_num for c in nb_file.session.items if c.parent is nb_file):
        _store(nb_file)


def without_suppressed_result(source: str, outputs: list) -> list:
    """IPython's rule, which nbval does not apply: a cell whose last line ends with ``;`` displays no result
    (``model.eval();`` must not print the whole network on the website)."""
    lines = [line for line in source.rstrip().splitlines() if line.strip()]
    if lines and lines[-1].split("#")[0].rstrip().endswith(";"):
        return [o for o in outputs if o.get("output_type") != "execute_result"]
    return outputs


def _store(nb_file: IPyNbFile) -> None:
    seconds = time.perf_counter() - nb_file.__dict__.get("_started", time.perf_counter())
    print(f"\n{nb_file.path.name}: executed in {seconds:.0f} s", file=sys.stderr)
    if nb_file.__dict__.get("_cache_failed"):
        return
    nb = nb_file.nb
    client = nb_file.__dict__.get("_widget_client")
    if client is not None:
        client.nb = nb
        client.set_widgets_metadata()
    CACHE.mkdir(parents=True, exist_ok=True)
    cache = get_cache(str(CACHE))
    cache.cache_notebook_bundle(CacheBundleIn(nb, uri=str(nb_file.path)), check_validity=False, overwrite=True)
