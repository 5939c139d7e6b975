"""``python -m helpers.data [--update] [--verify] [--archives DIR]``: maintain the sample-data registry."""

from helpers.data.registry import _main

_main()
