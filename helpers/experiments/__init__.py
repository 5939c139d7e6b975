"""One module per chapter pipeline behind ``python -m helpers <name>``.

Each module defines ``HELP`` (one line), ``add_arguments(parser)`` and ``run(args) -> dict``; the command line
finds them by name (see :mod:`helpers.cli`). Nothing else imports an experiment module.
"""
