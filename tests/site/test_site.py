"""The built website, opened as a reader would in headless Chromium (run after `make book`).

Each page of the table of contents loads with no console error from our code and no request to another host,
every image it shows exists, equations are typeset, widgets render, and the launch buttons point at notebooks
that exist in the repository. Screenshots are written to `_build/screenshots/` for a human to look at.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest
import yaml

from tests.conftest import chromium_browser

ROOT = Path(__file__).resolve().parents[2]
HTML = ROOT / "_build" / "html"
SHOTS = ROOT / "_build" / "screenshots"
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())
REPO = urlparse(CONFIG["repository"]["url"]).path.strip("/")
BRANCH = CONFIG["repository"]["branch"]
# The smallest text the book's figure style uses and the resolution figures are saved at (helpers.plots.style), and
# the size a reader needs at least. On a screen 1 pt is 1/72 in and CSS draws 96 px per inch.
MIN_FIGURE_POINTS, FIGURE_DPI, CSS_PX_PER_INCH, READABLE_POINTS = 10.0, 110.0, 96.0, 9.0


def _pages() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]] + [c["file"] for p in toc.get("parts", []) for c in p.get("chapters", [])]
    return files


PAGES = _pages()


@pytest.fixture(scope="session")
def browser():
    if not (HTML / "index.html").is_file():
        pytest.fail(f"{HTML} has no built site: run `make book` first")
    yield from chromium_browser(pytest.fail)


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
            codeLines: [...document.querySelectorAll('.cell_input pre')].flatMap(p => p.innerText.split('\\n')),
            figures: [...document.querySelectorAll('.cell_output img')].map(i => ({
                src: (i.getAttribute('src') || '').slice(0, 60), natural: i.naturalWidth, shown: i.clientWidth})),
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
    """Any console error fails (the duplicate THEBE_JS_URL declaration is removed by book/_ext)."""
    assert visited[page_file]["errors"] == [], f"{page_file}: console errors {visited[page_file]['errors']}"


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
def test_no_dead_widget_controls(visited, page_file):
    """Controls that need a kernel do nothing on a static page: the kernel-free figure stands in for them."""
    info = visited[page_file]
    assert info["widgetViews"] == 0, f"{page_file}: {info['widgetViews']} widgets that need a kernel are shown"


DEBRIS = {
    "a progress bar": r"\d+%\|[^|]*\||\d+(\.\d+)?(it/s|s/it)\]",
    "a machine path": r"(/work/|/root/|/home/\w+|/tmp/|/\.cache/|site-packages)",
    "a JSON dump": r"(^|\n)\s*\{\s*\"\w+\"\s*:",
    "a traceback or warning": r"Traceback \(most recent call last\)|\w+Warning:",
}


@pytest.mark.parametrize("page_file", [p for p in PAGES if p.startswith("chapters/")])
def test_cell_outputs_show_no_debris(visited, page_file):
    text = visited[page_file]["outputText"]
    found = {what: m.group(0) for what, rx in DEBRIS.items() if (m := re.search(rx, text))}
    assert not found, f"{page_file}: cell outputs show {found}"


@pytest.mark.parametrize("page_file", [p for p in PAGES if p.startswith("chapters/")])
def test_code_lines_fit_the_code_column(visited, page_file):
    long = [line for line in visited[page_file]["codeLines"] if len(line.rstrip()) > 88]
    assert not long, f"{page_file}: {len(long)} code lines wider than 88 characters, e.g. {long[0]!r}"


@pytest.mark.parametrize("page_file", [p for p in PAGES if p.startswith("chapters/")])
def test_figure_text_is_readable_at_the_page_width(visited, page_file):
    """A figure wider than the column is shrunk; its smallest text must stay at least 9 pt on the page."""
    full_size = MIN_FIGURE_POINTS * FIGURE_DPI / CSS_PX_PER_INCH   # its smallest text shown unscaled, in pt
    for fig in visited[page_file]["figures"]:
        if fig["natural"] and fig["shown"]:
            points = full_size * fig["shown"] / fig["natural"]
            widest = int(fig["shown"] * full_size / READABLE_POINTS)
            assert points >= READABLE_POINTS, (
                f"{page_file}: figure {fig['src']}... is {fig['natural']} px wide, shown at {fig['shown']} px: "
                f"its text is {points:.1f} pt; make it at most {widest} px ({widest / FIGURE_DPI:.1f} in) or split it")


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
