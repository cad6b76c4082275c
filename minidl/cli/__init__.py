"""The `minidl` command: one subcommand per module in this package.

Each subcommand module defines `register(subparsers)` (adds its parser, cheap: no heavy imports)
and sets `func=run` on it; `run(args) -> int` does the work and imports what it needs lazily.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from minidl.argtypes import one_line_errors

SUBCOMMANDS = ("train", "reproduce", "bench")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="minidl",
        description="minidl: a tiny deep-learning framework with a Cython core.",
    )
    one_line_errors(parser)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        importlib.import_module(f"minidl.cli.{name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line `argv`; a Ctrl-C that no subcommand handles (its imports) exits 130 in one line."""
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        from minidl.allocator import tune_malloc

        tune_malloc()       # this process is ours: keep the training step's large buffers mapped (see allocator.py)
        _print_names_as_given()
        if not getattr(args, "func", None):
            parser.print_help()
            return 0
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("minidl: interrupted", file=sys.stderr)
        return 130


def _print_names_as_given() -> None:
    """A path given in bytes that are not UTF-8 (``--out $'run\\xff'``) reaches Python as a lone surrogate;
    printed to a strict standard output (a UTF-8 locale such as en_US.UTF-8, unlike C.UTF-8) it raised
    UnicodeEncodeError mid-run. It is printed as standard error prints it, ``run\\udcff`` (backslashreplace)."""
    reconfigure = getattr(sys.stdout, "reconfigure", None)
    if reconfigure is not None and getattr(sys.stdout, "errors", None) == "strict":
        reconfigure(errors="backslashreplace")
