"""One module per chapter pipeline behind ``python -m helpers <name>``.

Each module defines ``HELP`` (one line), ``add_arguments(parser)`` and ``run(args) -> dict``; the command line
finds them by name (see :mod:`helpers.cli`). Nothing else imports an experiment module.
"""

import sys


def log(msg: str) -> None:
    """A progress line on stderr (stdout carries only the command's JSON line)."""
    print(msg, file=sys.stderr, flush=True)
