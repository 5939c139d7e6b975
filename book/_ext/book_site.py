"""Sphinx tweaks of this book's website (loaded through `local_extensions` in _config.yml)."""

from __future__ import annotations


def setup(app):
    # ipywidgets' controls typeset their labels with MathJax 2's `MathJax.Hub.Queue`; the site uses MathJax 3.
    # A deferred shim right after MathJax (priority 500) maps the call to MathJax 3's `typesetPromise`.
    app.add_js_file("../vendor/mathjax2-shim.js", priority=501, defer="defer")
    return {"parallel_read_safe": True, "parallel_write_safe": True}
