"""Entry point of the ``pathwaygrad`` command.

Each subcommand lives in its own module of this package and exposes
``register(subparsers)``, which adds its parser and sets ``func`` (a callable taking the parsed
``argparse.Namespace`` and returning an exit code).

Exit status and messages:
- 0: success;
- 2: bad input: a :class:`pathwaygrad.errors.UserError` (the message names the problem and the
  fix) or an operating-system error about a file (missing, not allowed, a folder where a file was
  expected), printed as one line ``pathwaygrad: error: ...``; also argparse's usage errors;
- 130: Ctrl-C, with one line (finished work is kept: a rerun resumes);
- anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from pathwaygrad import __version__
from pathwaygrad.errors import UserError

# Subcommand modules, in the order they appear in ``--help``.
_COMMANDS = ("explain", "train", "demo", "evaluate", "analyze", "reproduce")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pathwaygrad",
        description=(
            "Explain neural network responses through critical pathways (Khakzar et al., CVPR 2021) "
            "and evaluate explanations."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"pathwaygrad {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMANDS:
        try:
            module = importlib.import_module(f"pathwaygrad.cli.{name}")
        except ModuleNotFoundError as exc:  # a command not built yet
            if exc.name == f"pathwaygrad.cli.{name}":
                continue
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print(
            "pathwaygrad: interrupted (finished work is kept; run the same command again to resume)",
            file=sys.stderr,
        )
        return 130
    except UserError as exc:
        print(f"pathwaygrad: error: {_one_line(str(exc))}", file=sys.stderr)
        return 2
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError) as exc:
        if exc.filename is None:
            raise  # not about a file the user named: a bug
        reason = exc.strerror or type(exc).__name__
        print(f"pathwaygrad: error: {exc.filename}: {reason}", file=sys.stderr)
        return 2


def _one_line(text: str) -> str:
    return " ".join(part.strip() for part in text.strip().splitlines() if part.strip())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
