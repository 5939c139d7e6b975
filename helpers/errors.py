"""The one exception type a user of the book can meet, so the command line can print it in one line."""

from __future__ import annotations


class BookError(Exception):
    """A problem with the user's input or environment: says what and where, then what to do."""


class DataError(BookError):
    """A missing, unreadable or malformed data file or folder."""
