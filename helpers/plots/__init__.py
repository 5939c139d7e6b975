"""The book's figures. :mod:`.style` holds the shared look; each topic has its own module."""

from helpers.plots.style import COLORS, DIVERGING, SEQUENTIAL, show_image, use_book_style

__all__ = ["COLORS", "DIVERGING", "SEQUENTIAL", "show_image", "use_book_style"]
