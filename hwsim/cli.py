"""The ``hwsim`` command line: a thin layer over the Python API.

Each sub-command lives in ``hwsim/commands/<name>.py`` and provides ``register(subparsers)``
(adds its parser and sets ``func``) and a ``run(args) -> int``; this module only discovers them,
sets up logging and maps outcomes to exit statuses:

- ``0``: success; ``2``: bad input, one line ``hwsim CMD: error: ...`` naming the file, field or
  argument (a ``models.yamlio.UserError``, or an argparse usage error);
- ``1``: anything else is a bug: its traceback is printed, then one line saying so (a command
  may also return 1 for a partial result it reports itself: ``hwsim sweep`` with failed points);
- ``130``: interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys
import traceback

import hwsim.commands
from hwsim.provenance import git_commit, version_string  # noqa: F401 (hwsim.cli's public helpers)
from models.yamlio import UserError

log = logging.getLogger("hwsim")


class _HelpFormatter(argparse.HelpFormatter):
    """Help text from docstrings: RST ``literal`` markup shown as `literal`."""

    def _format_text(self, text: str) -> str:
        return super()._format_text(text.replace("``", "`"))

    def _expand_help(self, action: argparse.Action) -> str:
        return super()._expand_help(action).replace("``", "`")


class ArgumentParser(argparse.ArgumentParser):
    """argparse with one-line usage errors (``hwsim CMD: error: argument --x: ...``, exit 2)."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())} (see {self.prog} --help)\n")


class _VersionAction(argparse.Action):
    """``--version``: computed when asked for (reading the metadata costs every other call nothing)."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None):
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        print(version_string())
        parser.exit(0)


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="hwsim",
        description="Cost RNN-T speech recognition with LM fusion on parametric accelerators.",
    )
    parser.add_argument("--version", action=_VersionAction,
                        help="print the version (and the git commit of a checkout) and exit")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(hwsim.commands.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):  # shared helpers, not commands
            continue
        module = importlib.import_module(f"hwsim.commands.{info.name}")
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; returns its exit status (argparse usage errors raise ``SystemExit(2)``)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        return int(args.func(args) or 0)
    except UserError as exc:
        log.debug("where the bad input was found (shown with -v):", exc_info=True)
        print(f"hwsim {args.command}: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"hwsim {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - not bad input: a bug, shown with its traceback
        traceback.print_exc(file=sys.stderr)
        print(f"hwsim {args.command}: internal error ({type(exc).__name__}); this is a bug, "
              "not bad input: please report it with the traceback above", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
