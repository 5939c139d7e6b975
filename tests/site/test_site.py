"""The built website, opened as a reader would in headless Chromium (run after `make book`).

Each page of the table of contents loads with no console error from our code and no request to another host,
every image it shows exists, equations are typeset, widgets render, and the launch buttons point at notebooks
that exist in the repository. Screenshots are written to `_build/screenshots/` for a human to look at.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
HTML = ROOT / "_build" / "html"
SHOTS = ROOT / "_build" / "screenshots"
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())
REPO = urlparse(CONFIG["repository"]["url"]).path.strip("/")
BRANCH = CONFIG["repository"]["branch"]
# Jupyter Book 1 loads sphinx-thebe twice on every page; harmless, not ours.
KNOWN_NOISE = ("Identifier 'THEBE_JS_URL' has already been declared",)
CHROME_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _pages() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]] + [c["file"] for p in toc.get("parts", []) for c in p.get("chapters", [])]
    return files


PAGES = _pages()


@pytest.fixture(scope="session")
def browser():
    if not (HTML / "index.html").is_file():
        pytest.fail(f"{HTML} has no built site: run `make book` first")
    exe = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not exe:
        pytest.fail("Chromium not found: install it (Debian package 'chromium') or set CHROMIUM")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=exe, args=CHROME_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture(scope="session")
def visited(browser):
    """Open every page once; keep what each logged, requested and rendered."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    results = {}
    for page_file in PAGES:
        path = HTML / f"{page_file}.html"
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        errors, foreign = [], []
        page.on("console", lambda m, e=errors: e.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda exc, e=errors: e.append(f"uncaught: {exc}"))
        page.on("request", lambda r, f=foreign: f.append(r.url) if not r.url.startswith(("file:", "data:", "blob:", "about:")) else None)
        page.goto(path.as_uri(), wait_until="load")
        page.wait_for_timeout(1500)  # MathJax and the widget manager render after load
        info = page.evaluate("""() => ({
            images: [...document.querySelectorAll('img')].map(i => ({src: i.getAttribute('src'), ok: i.complete && i.naturalWidth > 0})),
            links: [...document.querySelectorAll('a[href]')].map(a => a.href),
            math: document.querySelectorAll('mjx-container').length,
            outputText: [...document.querySelectorAll('.cell_output')].map(o => o.innerText).join(' | '),
            mathSource: document.querySelectorAll('.math, span.math, div.math').length,
            widgetViews: document.querySelectorAll('script[type="application/vnd.jupyter.widget-view+json"]').length,
            widgetsRendered: document.querySelectorAll('.jupyter-widgets, .widget-container, .widget-inline-hbox, .widget-hslider').length,
        })""")
        page.screenshot(path=str(SHOTS / f"{page_file.replace('/', '__')}.png"), full_page=True)
        page.close()
        results[page_file] = dict(info, errors=errors, foreign=foreign, path=path)
    return results


@pytest.mark.parametrize("page_file", PAGES)
def test_page_loads_without_console_errors(visited, page_file):
    errors = [e for e in visited[page_file]["errors"] if not any(n in e for n in KNOWN_NOISE)]
    assert errors == [], f"{page_file}: console errors {errors}"


@pytest.mark.parametrize("page_file", PAGES)
def test_page_requests_nothing_from_other_hosts(visited, page_file):
    assert visited[page_file]["foreign"] == [], f"{page_file} loads from the network: works only online"


@pytest.mark.parametrize("page_file", PAGES)
def test_every_image_exists_and_renders(visited, page_file):
    info = visited[page_file]
    for img in info["images"]:
        src = img["src"] or ""
        if not src.startswith("data:"):
            target = (info["path"].parent / unquote(src.split("#")[0].split("?")[0])).resolve()
            assert target.is_file(), f"{page_file}: image {src} does not exist"
        assert img["ok"], f"{page_file}: image {src[:80]} did not render"


@pytest.mark.parametrize("page_file", [p for p in PAGES if p.startswith("chapters/")])
def test_chapter_pages_show_their_figures(visited, page_file):
    """Executed chapters carry their figures (e.g. not lost to a non-inline matplotlib backend)."""
    figures = [i for i in visited[page_file]["images"] if (i["src"] or "").startswith(("../_images/", "data:image"))]
    assert len(figures) >= 3, f"{page_file}: only {len(figures)} figures rendered"


@pytest.mark.parametrize("page_file", [p for p in PAGES if p.startswith("chapters/")])
def test_cell_outputs_show_no_stray_object_reprs(visited, page_file):
    """A cell ending in ``;`` shows no result (``widgets.interact(...);`` must not print ``<function ...>``)."""
    stray = re.findall(r"<function __main__\.\w+|<[\w.]+ object at 0x[0-9a-f]+>", visited[page_file]["outputText"])
    assert stray == [], f"{page_file}: cell outputs show Python reprs {stray}"


@pytest.mark.parametrize("page_file", PAGES)
def test_equations_are_typeset_offline(visited, page_file):
    info = visited[page_file]
    if info["mathSource"]:
        assert info["math"] > 0, f"{page_file}: {info['mathSource']} equations, none typeset by MathJax"


@pytest.mark.parametrize("page_file", PAGES)
def test_widgets_render_from_their_saved_state(visited, page_file):
    info = visited[page_file]
    if info["widgetViews"]:
        assert info["widgetsRendered"] > 0, f"{page_file}: {info['widgetViews']} widget views, none rendered"


def test_some_page_has_a_rendered_widget(visited):
    assert any(v["widgetViews"] and v["widgetsRendered"] for v in visited.values()), "no widget on the site"


@pytest.mark.parametrize("page_file", [p for p in PAGES if p.startswith("chapters/")])
def test_launch_buttons_open_existing_notebooks(visited, page_file):
    links = visited[page_file]["links"]
    colab = [l for l in links if l.startswith("https://colab.research.google.com/")]
    binder = [l for l in links if l.startswith("https://mybinder.org/")]
    assert colab and binder, f"{page_file}: missing Colab or Binder launch button"
    for url in colab:
        m = re.fullmatch(rf"https://colab\.research\.google\.com/github/{REPO}/blob/{BRANCH}/(.+\.ipynb)", url)
        assert m and (ROOT / m.group(1)).is_file(), f"{page_file}: Colab URL {url} is not a notebook of {REPO}"
    for url in binder:
        m = re.fullmatch(rf"https://mybinder\.org/v2/gh/{REPO}/{BRANCH}\?urlpath=tree/(.+\.ipynb)", url)
        assert m and (ROOT / unquote(m.group(1))).is_file(), f"{page_file}: Binder URL {url} is wrong"
