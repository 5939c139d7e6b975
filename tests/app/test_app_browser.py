"""The real app in a real browser: ``python -m helpers.app`` (what ``make app`` runs: the app cells of
``chapters/07_app.ipynb`` served by Voila on a free localhost port, no token, no browser of its own), opened in
headless Chromium through Playwright as the site tests do.

One sample file per task goes through the page's file input; the prediction, the figure and the PDF link must
appear. A bad file must give the page's one-line message, and the next upload must still work. Every request
the page makes must go to 127.0.0.1 (nothing leaves the machine). The server and its kernel are stopped at the
end. Run after the chapters (``make test`` does), so that their models are cached; when one is missing the test
skips and says which, because training it here would take minutes.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import pytest

from tests.conftest import chromium_browser

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "data"
SAMPLES = {"retina": (DATA / "chase_db1" / "Image_11L.jpg", "retinal vessels (ch. 4)", "vessels cover"),
           "cxr": (sorted((DATA / "chest_xray" / "PNEUMONIA").iterdir())[0], "chest X-ray (ch. 5)",
                   "probability of pneumonia"),
           "cells": (sorted((DATA / "cells" / "images").iterdir())[0], "nuclei count (ch. 6)", "nuclei")}
START_TIMEOUT_S, PAGE_TIMEOUT_S, RESULT_TIMEOUT_S = 60, 150, 90
# The page has answered an upload of the file named `name`: its result, or its message.
DONE = ("name => [...document.querySelectorAll('.app-status, .app-error')].some(e => e.innerText.includes(name)"
        " && (e.innerText.includes('Done in') || e.innerText.includes('Cannot read')"
        " || e.innerText.includes('went wrong')))")


def _missing_models() -> str | None:
    """Why the app would have to train a model first (minutes), or None when every model is cached."""
    from helpers import config
    from helpers.errors import DataError
    from helpers.models import counting, unet

    profile, cache = config.get_profile(), config.cache_dir()
    checks = {"chapter 4's U-Net": (unet.load_checkpoint, "retina_unet", unet.recipe),
              "chapter 6's counting network": (counting.load_counter, "cells_counter", counting.recipe)}
    for what, (load, stem, recipe) in checks.items():
        options = [(cache / f"{stem}_{profile}.pt", recipe(profile)), (cache / f"app_{stem}_quick.pt",
                                                                       recipe("quick"))]
        for path, rec in options:
            try:
                load(path, recipe=rec)
                break
            except DataError:
                continue
        else:
            return f"{what} is not cached with its current recipe: run the chapters first (make test does)"
    from helpers.models.vgg import WeightsUnavailable, imagenet_weights
    try:
        imagenet_weights(fetch=False)
    except WeightsUnavailable:
        return "the ImageNet VGG16 weights are not cached: run chapter 5 first (make test does)"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    reason = _missing_models()
    if reason:
        pytest.skip(reason)
    if not Path(sys.executable).with_name("voila").is_file():
        pytest.skip("voila is not installed in this environment (pip install -r requirements.txt)")
    port = _free_port()
    log = tmp_path_factory.mktemp("voila") / "voila.log"
    cmd = [sys.executable, "-m", "helpers.app", f"--port={port}"]      # what `make app` runs
    env = {**os.environ, "TQDM_DISABLE": "1"}
    start = time.perf_counter()
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    url = f"http://127.0.0.1:{port}/"
    try:
        while True:
            try:   # any HTTP answer means the server is up (the page itself would start a kernel)
                urllib.request.urlopen(url + "api/status", timeout=2)
                break
            except urllib.error.HTTPError:
                break
            except OSError:
                if proc.poll() is not None or time.perf_counter() - start > START_TIMEOUT_S:
                    pytest.fail(f"Voila did not start: {log.read_text()[-2000:]}")
                time.sleep(0.5)
        yield {"url": url, "start": start, "log": log}
    finally:
        os.killpg(proc.pid, signal.SIGTERM)          # the server and the kernel it started
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode is not None


@pytest.fixture(scope="module")
def browser():
    yield from chromium_browser(pytest.skip)


def test_the_app_in_a_browser(server, browser, tmp_path):
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    requests, errors = [], []
    page.on("request", lambda r: requests.append(r.url))
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(server["url"], wait_until="domcontentloaded", timeout=PAGE_TIMEOUT_S * 1000)
    upload = page.locator(".widget-upload")
    upload.wait_for(timeout=PAGE_TIMEOUT_S * 1000)      # the app's last cell has run: the kernel is free
    page.locator(".app-status").first.wait_for(timeout=PAGE_TIMEOUT_S * 1000)
    ready = time.perf_counter() - server["start"]
    status = page.locator(".app-status, .app-error").first
    timings = {}

    def run(path: Path, task_label: str | None = None) -> None:
        if task_label is not None:
            page.locator(".widget-dropdown select").first.select_option(label=task_label)
            page.wait_for_timeout(300)
            page.wait_for_function("() => !document.body.innerText.includes('Reading ')",
                                   timeout=RESULT_TIMEOUT_S * 1000)
        start = time.perf_counter()
        with page.expect_file_chooser() as chooser:   # the widget's file input is not in the page
            upload.click()
        chooser.value.set_files(str(path))
        try:
            page.wait_for_function(DONE, arg=path.name, timeout=RESULT_TIMEOUT_S * 1000)
        except Exception:
            shot = tmp_path / f"{path.stem}.png"
            page.screenshot(path=str(shot), full_page=True)
            texts = page.locator(".app-status, .app-error, .jupyter-widgets-output-area").all_inner_texts()
            pytest.fail(f"no result for {path.name} in {RESULT_TIMEOUT_S} s; the page says {texts}; see {shot}")
        timings[path.name] = time.perf_counter() - start

    for task, (path, label, words) in SAMPLES.items():
        run(path, label)
        assert "Done in" in status.inner_text(), status.inner_text()
        assert words in page.locator(".app-result").inner_text()
        assert "Not a medical device" in page.locator(".app-result").inner_text()
        link = page.locator("a.app-report")
        assert link.count() == 1 and link.get_attribute("href").startswith("data:application/pdf;base64,")
        img = page.locator(".widget-image")
        assert img.count() == 1 and img.evaluate("i => i.naturalWidth") > 500, task

    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64)
    run(bad)
    message = page.locator(".app-error").inner_text()
    assert "Cannot read this file" in message and "bad.png" in message and "Traceback" not in message
    assert page.locator("a.app-report").count() == 0

    path, label, words = SAMPLES["cells"]
    run(path)                                            # the next upload works
    assert "Done in" in status.inner_text() and words in page.locator(".app-result").inner_text()

    foreign = [u for u in requests if urlparse(u).hostname not in ("127.0.0.1", "localhost")
               and not u.startswith(("data:", "blob:", "about:"))]
    assert not foreign, f"requests to other hosts: {foreign[:5]}"
    assert not errors, errors
    print(f"\napp ready {ready:.1f} s after `python -m helpers.app` started; upload to result: "
          + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()))
    page.close()
