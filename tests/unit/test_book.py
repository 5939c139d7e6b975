"""The book's structure: TOC, notebooks, launch/install URLs, the two README commands, CI and publishing."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from helpers import config

ROOT = Path(__file__).resolve().parents[2]
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())
REPO_URL = CONFIG["repository"]["url"]
NOTEBOOKS = sorted((ROOT / "chapters").glob("*.ipynb"))


def _toc_files() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]
    for part in toc.get("parts", []):
        files += [c["file"] for c in part.get("chapters", [])]
    return files


def _readme_command(kind: str) -> str:
    """The command in the README's block marked <!-- kind-command -->."""
    text = (ROOT / "README.md").read_text()
    m = re.search(rf"<!-- {kind}-command -->\s*```(?:bash)?\n(.+?)\n```", text, re.S)
    assert m, f"README.md has no {kind} command block"
    return m.group(1).split("#")[0].strip()


def test_toc_lists_exactly_the_pages_that_exist():
    files = _toc_files()
    for f in files:
        assert list(ROOT.glob(f + ".*")), f"_toc.yml lists {f}, which does not exist"
    for nb in NOTEBOOKS:
        assert f"chapters/{nb.stem}" in files, f"{nb.name} is not in _toc.yml"
    names = [nb.stem for nb in NOTEBOOKS]
    assert names == sorted(names) and all(re.fullmatch(r"\d\d_[a-z0-9_]+", n) for n in names)


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.name)
def test_notebooks_are_committed_without_outputs(nb):
    for cell in json.loads(nb.read_text())["cells"]:
        if cell["cell_type"] == "code":
            assert cell.get("outputs") == [] and cell.get("execution_count") is None, f"{nb.name}: clear outputs"


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.name)
def test_chapter_starts_with_the_hidden_colab_setup_cell(nb):
    cells = json.loads(nb.read_text())["cells"]
    first_code = next(c for c in cells if c["cell_type"] == "code")
    src = "".join(first_code["source"])
    assert "remove-cell" in first_code["metadata"].get("tags", []), f"{nb.name}: setup cell must be hidden"
    assert f"git+{REPO_URL}@{CONFIG['repository']['branch']}" in src, f"{nb.name}: install URL != _config.yml"
    assert "find_spec(\"helpers\")" in src and "torch" not in src.split("\n", 1)[1], "never reinstall torch"
    assert any("helpers.notebook import setup" in "".join(c["source"]) for c in cells if c["cell_type"] == "code")


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.name)
def test_chapters_read_the_profile_only_through_helpers(nb):
    text = "".join("".join(c["source"]) for c in json.loads(nb.read_text())["cells"] if c["cell_type"] == "code")
    assert "os.environ" not in text and "getenv" not in text, f"{nb.name}: read the profile via helpers.config"


def test_one_repository_url_everywhere():
    assert config.REPOSITORY_URL == REPO_URL
    assert f'Source = "{REPO_URL}"' in (ROOT / "pyproject.toml").read_text()
    assert REPO_URL in (ROOT / "book" / "chapter_template.md").read_text()
    assert CONFIG["repository"]["branch"] == "main" and CONFIG["repository"]["path_to_book"] == ""
    buttons = CONFIG["launch_buttons"]
    assert buttons["colab_url"] == "https://colab.research.google.com"
    assert buttons["binderhub_url"] == "https://mybinder.org"


def test_widget_and_math_javascript_is_vendored_not_from_a_cdn():
    cfg = CONFIG["sphinx"]["config"]
    assert cfg["html_extra_path"] == ["book/_extra"]
    for src in list(cfg["nb_ipywidgets_js"]) + [cfg["mathjax_path"]]:
        assert "://" not in src
        assert (ROOT / "book/_extra" / src.replace("../", "")).is_file(), src
    assert not (ROOT / "book" / "_static").exists(), "JS under _static/ is loaded on every page"


def test_two_commands_and_ci():
    assert _readme_command("book") == "make book"
    assert _readme_command("test") == "make test"
    ci = [l for l in (ROOT / ".ci/run").read_text().splitlines() if l.strip() and not l.startswith(("#", "set ", "cd "))]
    assert ci == [_readme_command("test")]


def test_every_chapter_is_executed_once_and_the_app_after_the_models_it_loads():
    """`make chapters` (inside `make book` and `make test`) runs chapters two at a time: each exactly once, and
    chapter 7 only after chapters 4-6, whose cached models its app loads (else it would train its own)."""
    import shutil
    import subprocess

    if shutil.which("make") is None:
        pytest.skip("make is not installed: the Makefile's chapter runs cannot be listed")
    out = subprocess.run(["make", "-n", "--no-print-directory", "chapters"], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout
    runs = [re.findall(r"chapters/(\d\d)_\S+\.ipynb", line) for line in out.splitlines() if "--nbval" in line]
    assert sorted(n for run in runs for n in run) == sorted(p.name[:2] for p in NOTEBOOKS)
    app_run = next(i for i, run in enumerate(runs) if "07" in run)
    assert runs[app_run] == ["07"], "the app chapter must run alone, after the others"
    assert {"04", "05", "06"} <= {n for run in runs[:app_run] for n in run}


def test_publishing_workflow_builds_with_the_readme_book_command():
    wf = yaml.safe_load((ROOT / ".github/workflows/book.yml").read_text())
    steps = [s for job in wf["jobs"].values() for s in job["steps"]]
    assert any(s.get("run", "").strip() == _readme_command("book") for s in steps)
    assert any(s.get("uses", "").startswith("actions/deploy-pages") for s in steps)
    assert any(s.get("with", {}).get("path") == "_build/html" for s in steps)


def test_a_trailing_semicolon_hides_the_cell_result_on_the_site():
    from tests.nbval_to_cache import without_suppressed_result

    outputs = [{"output_type": "stream", "name": "stdout", "text": "Loaded"},
               {"output_type": "execute_result", "data": {"text/plain": "UNet(...)"}}]
    assert without_suppressed_result("x = 1\nmodel.eval();\n\n", outputs) == outputs[:1]
    assert without_suppressed_result("widgets.interact(f);  # static figure below", outputs) == outputs[:1]
    assert without_suppressed_result("model.eval()", outputs) == outputs
    assert without_suppressed_result("s = 'a;'\ns", outputs) == outputs


def _cells(nb: Path) -> list[dict]:
    return json.loads(nb.read_text())["cells"]


def _src(cell: dict) -> str:
    return "".join(cell["source"])


CHAPTERS = [nb for nb in NOTEBOOKS if re.match(r"\d\d_", nb.name)]


@pytest.mark.parametrize("nb", CHAPTERS, ids=lambda p: p.name)
def test_three_exercises_each_with_a_runnable_hidden_solution(nb):
    """The template's rule: at least three exercises, each solution gated around code cells that the build (and
    so nbval) executes, shown as a dropdown."""
    cells = _cells(nb)
    labels = [m for c in cells if c["cell_type"] == "markdown"
              for m in re.findall(r"```\{exercise\}[^\n]*\n:label: *([\w-]+)", _src(c))]
    assert len(labels) >= 3, f"{nb.name}: {len(labels)} exercises, the template asks for at least three"
    for label in labels:
        start = next((i for i, c in enumerate(cells) if c["cell_type"] == "markdown"
                      and re.search(rf"```\{{solution-start\}} *{re.escape(label)}\b", _src(c))), None)
        assert start is not None, f"{nb.name}: exercise {label} has no gated solution (solution-start)"
        assert ":class: dropdown" in _src(cells[start]), f"{nb.name}: solution of {label} is not hidden"
        end = next((i for i in range(start + 1, len(cells)) if "```{solution-end}" in _src(cells[i])), None)
        assert end is not None, f"{nb.name}: solution of {label} is never closed (solution-end)"
        code = [c for c in cells[start + 1:end] if c["cell_type"] == "code" and _src(c).strip()]
        assert code, f"{nb.name}: the solution of {label} has no code cell to run"


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.name)
def test_code_fits_the_code_column(nb):
    """The website's code column shows about 88 characters; a longer line scrolls sideways."""
    long = [(i, line) for i, c in enumerate(_cells(nb)) if c["cell_type"] == "code"
            and "remove-cell" not in c["metadata"].get("tags", [])
            for line in _src(c).splitlines() if len(line) > 88]
    assert not long, f"{nb.name}: {len(long)} code lines over 88 characters, e.g. cell {long[0][0]}: {long[0][1]!r}"


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.name)
def test_cross_references_are_links_not_section_numbers(nb):
    text = "\n".join(_src(c) for c in _cells(nb) if c["cell_type"] == "markdown")
    found = re.findall(r"\b[Ss]ections? \d[\d.]*", text)
    assert not found, f"{nb.name}: refer to sections with links ({{ref}}`label`), not {found}"


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.name)
def test_live_widgets_are_not_shown_as_dead_controls_on_the_site(nb):
    """A widget needs a kernel; the website shows the kernel-free figure instead (tag the cell remove-output)."""
    for i, c in enumerate(_cells(nb)):
        if c["cell_type"] == "code" and re.search(r"\binteract(ive)?\(|widgets\.\w+\(", _src(c)):
            tags = c["metadata"].get("tags", [])
            assert {"remove-output", "remove-cell"} & set(tags), f"{nb.name}: widget cell {i} needs remove-output"
