"""``python -m helpers``: the book's experiments on the command line, and ``info`` about the installation.

Each experiment prints progress to stderr and one JSON line of results to stdout; an input problem prints one
line (``error: ...``) and exits with status 2, without a traceback.

Run from a shell, an experiment restarts itself once with ``OMP_WAIT_POLICY=PASSIVE`` (unless that variable is
set): PyTorch's OpenMP threads then sleep between operations instead of spinning. On cores that other programs
also use, spinning threads hold a core while they wait for a thread that is not running; measured on 2 shared
cores (load 11-13), one training step of ``retina`` took 10 s instead of 2 s. The variable has to be set before
PyTorch is loaded, hence the restart. When stderr is not a terminal (a log file), progress bars are redrawn at
most every 30 s (``TQDM_MININTERVAL``).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import pkgutil
import platform
import sys
import time
from typing import Any

from helpers import config
from helpers.errors import BookError


def experiments() -> dict[str, Any]:
    """The experiment modules under :mod:`helpers.experiments`, by name."""
    import helpers.experiments as pkg

    found = {}
    for info in pkgutil.iter_modules(pkg.__path__):
        if not info.name.startswith("_"):
            found[info.name] = importlib.import_module(f"helpers.experiments.{info.name}")
    return found


def info() -> dict[str, Any]:
    """Versions, profile, device and data locations, as a dictionary."""
    import numpy
    import torch

    from helpers import __version__
    from helpers.data import registry

    versions = {"python": platform.python_version(), "helpers": __version__, "torch": torch.__version__,
                "numpy": numpy.__version__}
    for name in ("torchvision", "captum", "matplotlib", "skimage"):
        try:
            versions[name] = importlib.import_module(name).__version__
        except ImportError:
            versions[name] = "not installed"
    root = config.data_dir()
    data = {ds: ("complete" if not registry.missing_files(ds, root) else "missing (downloaded on first use)")
            for ds in registry.datasets()}
    return {"versions": versions, "profile": config.get_profile(), "device": str(config.get_device()),
            "torch_threads": torch.get_num_threads(),
            "openmp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "not set (experiments set PASSIVE)"),
            "data_dir": str(root), "datasets": data,
            "cache_dir": str(config.cache_dir()), "repository": config.REPOSITORY_URL}


def build_parser(found: dict[str, Any]) -> argparse.ArgumentParser:
    lines = "\n".join(f"  {name:<10} {getattr(mod, 'HELP', '')}" for name, mod in sorted(found.items()))
    parser = argparse.ArgumentParser(
        prog="python -m helpers",
        description="The experiments of 'Trustworthy deep learning for medical imaging', on the book's data or "
                    "yours. Results: one JSON line on stdout; progress on stderr.",
        epilog=f"experiments:\n{lines or '  (none yet)'}\n  {'info':<10} versions, profile, device, data locations",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", metavar="{info," + ",".join(sorted(found)) + "}")
    sub.add_parser("info", help="print versions, profile, device and data locations")
    for name, mod in sorted(found.items()):
        p = sub.add_parser(name, help=getattr(mod, "HELP", ""), description=getattr(mod, "HELP", ""))
        p.add_argument("--profile", choices=config.PROFILES, default=None,
                       help=f"quick or full (default: ${config.PROFILE_ENV} or quick)")
        mod.add_arguments(p)
    return parser


#: Environment of an experiment run from a shell (see the module docstring); existing values are kept.
RUN_ENVIRONMENT = {"OMP_WAIT_POLICY": "PASSIVE"}


def _restart_with_run_environment() -> None:
    """Replace this process by the same command with :data:`RUN_ENVIRONMENT` (POSIX only; once: the restarted
    command finds ``OMP_WAIT_POLICY`` set)."""
    if os.name != "posix" or "OMP_WAIT_POLICY" in os.environ:
        return
    env = {**RUN_ENVIRONMENT, **os.environ}
    if not sys.stderr.isatty():
        env.setdefault("TQDM_MININTERVAL", "30")
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, "-m", "helpers", *sys.argv[1:]], env)


def main(argv: list[str] | None = None) -> int:
    found = experiments()
    parser = build_parser(found)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    if argv is None and args.command in found:  # a command line, not a call from Python
        _restart_with_run_environment()
    try:
        if args.command == "info":
            print(json.dumps(info(), indent=2))
            return 0
        start = time.perf_counter()
        result = found[args.command].run(args)
        result.setdefault("seconds", round(time.perf_counter() - start, 2))
        print(json.dumps(result))
        return 0
    except BookError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
