"""The ``hwsim`` command line: a thin layer over the Python API.

Each sub-command lives in ``hwsim/commands/<name>.py`` and provides ``register(subparsers)``
(adds its parser and sets ``func``) and a ``run(args) -> int``; this module only discovers them,
sets up logging and turns expected errors into a one-line message and exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys

import hwsim.commands
from models.yamlio import ConfigError

log = logging.getLogger("hwsim")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hwsim",
        description="Cost RNN-T speech recognition with LM fusion on parametric accelerators.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(hwsim.commands.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):  # shared helpers, not commands
            continue
        module = importlib.import_module(f"hwsim.commands.{info.name}")
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        return int(args.func(args) or 0)
    except (ConfigError, FileNotFoundError, ValueError, KeyError) as exc:
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"hwsim {args.command}: error: {msg}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
