"""Kernel-free interactive figures for the website: matplotlib animations as self-contained HTML."""

from __future__ import annotations

import re

from matplotlib.animation import Animation

# matplotlib's player loads Font Awesome from a CDN for its button icons; the book's pages must work offline,
# so the stylesheet link is dropped and each icon is replaced by a plain Unicode symbol.
_ICONS = {
    "fa fa-minus": "−", "fa fa-plus": "+", "fa fa-fast-backward": "⇤", "fa fa-fast-forward": "⇥",
    "fa fa-step-backward": "◀|", "fa fa-step-forward": "|▶", "fa fa-play fa-flip-horizontal": "◀",
    "fa fa-play": "▶", "fa fa-pause": "❚❚",
}


def offline_jshtml(html: str) -> str:
    """Make the HTML of ``Animation.to_jshtml()`` self-contained: no CDN stylesheet, Unicode button icons."""
    html = re.sub(r'<link rel="stylesheet"\s+href="https?://[^"]*font-awesome[^"]*">', "", html)
    for cls, symbol in _ICONS.items():
        html = html.replace(f'<i class="{cls}"></i>', f'<span aria-hidden="true">{symbol}</span>')
    return html


def animation_html(animation: Animation, *, default_mode: str = "once", dpi: float = 110):
    """An animation as an ``IPython.display.HTML`` player with a slider: scrubbable on the static website.

    Frames are saved at ``dpi`` (default 110, the book's screen resolution; matplotlib would otherwise use
    ``savefig.dpi``, 150 in the book style), so a figure at most 6.6 inches wide gives frames that fit the
    page's content column without being shrunk below the book's 10-pt text. Close the figure afterwards
    (``plt.close(fig)``) so that the last frame is not shown a second time. Taught in chapter 1.
    """
    import matplotlib as mpl
    from IPython.display import HTML

    with mpl.rc_context({"savefig.dpi": dpi}):
        return HTML(offline_jshtml(animation.to_jshtml(default_mode=default_mode)))
