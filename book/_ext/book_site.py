"""Sphinx tweaks of this book's website (loaded through `local_extensions` in _config.yml)."""

from __future__ import annotations


def _unique_scripts(app, pagename, templatename, context, doctree) -> None:
    """Jupyter Book 1 sets up sphinx-thebe twice, so every page declared ``const THEBE_JS_URL`` twice and logged a
    console error. Keep the first of identical script tags (same file, or none, same inline body and attributes)."""
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, unique = set(), []
    for js in scripts:
        key = (str(getattr(js, "filename", js) or ""), repr(sorted(getattr(js, "attributes", {}).items())))
        if key not in seen:
            seen.add(key)
            unique.append(js)
    context["script_files"] = unique


def _exercises_per_chapter(app, env) -> list[str]:
    """Sphinx numbers enumerable nodes across the whole book; a reader looks for "Exercise 2" of *this* chapter.
    After Sphinx assigned the numbers (same event, later priority), restart the exercises' count on every page."""
    for numbers in env.toc_fignumbers.values():
        exercises = numbers.get("exercise")
        if exercises:
            order = sorted(exercises, key=lambda ident: exercises[ident])
            numbers["exercise"] = {ident: (k + 1,) for k, ident in enumerate(order)}
    return []


def setup(app):
    # ipywidgets' controls typeset their labels with MathJax 2's `MathJax.Hub.Queue`; the site uses MathJax 3.
    # A deferred shim right after MathJax (priority 500) maps the call to MathJax 3's `typesetPromise`.
    app.add_js_file("../vendor/mathjax2-shim.js", priority=501, defer="defer")
    app.connect("html-page-context", _unique_scripts, priority=900)
    app.connect("env-get-updated", _exercises_per_chapter, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
