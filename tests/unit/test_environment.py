"""The install: pinned book environment, conda file in agreement, a light helpers package."""

from __future__ import annotations

import re
import tomllib

import yaml


def _pins(lines):
    pins = {}
    for line in lines:
        line = line.split("#")[0].strip()
        m = re.fullmatch(r"([A-Za-z0-9_.\-]+)==([^\s;]+)", line)
        if m:
            pins[m.group(1).lower().replace("_", "-")] = m.group(2)
        elif line and not line.startswith("-e"):
            raise AssertionError(f"unpinned requirement: {line!r}")
    return pins


def test_requirements_are_pinned_and_include_the_stack(repo_root):
    pins = _pins((repo_root / "requirements.txt").read_text().splitlines())
    assert pins["torch"] == "2.14.1" and pins["torchvision"] == "0.29.1"
    assert pins["jupyter-book"].startswith("1."), "Jupyter Book 2 reads neither _config.yml nor _toc.yml"
    for name in ("captum", "matplotlib", "ipywidgets", "numpy", "nbval", "nbclient", "pytest"):
        assert name in pins


def test_environment_yml_lists_the_same_packages(repo_root):
    env = yaml.safe_load((repo_root / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert _pins(pip_section) == _pins((repo_root / "requirements.txt").read_text().splitlines())
    assert "-e ." in pip_section
    assert any(str(d).startswith("python=3.11") for d in env["dependencies"])


def test_helpers_package_is_light_and_not_named_helpers(repo_root):
    project = tomllib.loads((repo_root / "pyproject.toml").read_text())["project"]
    assert project["name"] != "helpers", "PyPI's 'helpers' is an unrelated package"
    for dep in project["dependencies"]:
        assert "<" not in dep and "==" not in dep, f"{dep}: no upper pins, so Colab keeps its torch"
    names = {re.split(r"[<>=!~ ]", d)[0] for d in project["dependencies"]}
    assert "jupyter-book" not in names and "torchvision" not in names
