"""The `minidl` command: one subcommand per module in this package.

Each subcommand module defines `register(subparsers)` (adds its parser, cheap: no heavy imports)
and sets `func=run` on it; `run(args) -> int` does the work and imports what it needs lazily.
"""
from __future__ import annotations

import argparse
import importlib
import os
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


STANDARD_OUTPUT = "standard output"


def main(argv: list[str] | None = None) -> int:
    """Run the command line `argv`; a Ctrl-C that no subcommand handles (its imports) exits 130 in one line,
    and standard output that cannot be written (a full disk, a closed pipe) exits 1 in one line."""
    status, stdout = 0, sys.stdout
    if stdout is not None:      # None: started with standard output closed (`minidl >&-`)
        sys.stdout = _NamedOutput(stdout)
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        from minidl.allocator import tune_malloc

        tune_malloc()       # this process is ours: keep the training step's large buffers mapped (see allocator.py)
        _print_names_as_given()
        if not getattr(args, "func", None):
            parser.print_help()
        else:
            status = int(args.func(args) or 0)
        if sys.stdout is not None:
            sys.stdout.flush()  # here, where a failure is said, not at exit ("Exception ignored in ...")
        return status
    except KeyboardInterrupt:
        print("minidl: interrupted", file=sys.stderr)
        return 130
    except OSError as error:
        if error.filename != STANDARD_OUTPUT:
            raise
        if status == 0:     # else the command has already said why it stopped
            print(f"minidl: {STANDARD_OUTPUT}: {error.strerror} [errno {error.errno}]", file=sys.stderr)
        _drop_pending_output(stdout)
        return status or 1
    finally:
        sys.stdout = stdout


class _NamedOutput:
    """Standard output whose write errors name it: print() into a full disk raised an OSError naming no file,
    and a command's one-line error said only "No space left on device"."""

    def __init__(self, stream):
        self._stream = stream

    def write(self, text):
        return self._named(self._stream.write, text)

    def flush(self):
        return self._named(self._stream.flush)

    def _named(self, call, *args):
        try:
            return call(*args)
        except OSError as error:
            raise OSError(error.errno, error.strerror, STANDARD_OUTPUT) from None

    def __getattr__(self, name):
        return getattr(self._stream, name)


def _drop_pending_output(stream) -> None:
    """Point standard output at /dev/null, so that Python's flush at exit does not fail again on the text still
    buffered (the recipe of Python's `signal` docs for a closed pipe)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):     # no file descriptor (a test's captured output)
        pass


def _print_names_as_given() -> None:
    """A path given in bytes that are not UTF-8 (``--out $'run\\xff'``) reaches Python as a lone surrogate;
    printed to a strict standard output (a UTF-8 locale such as en_US.UTF-8, unlike C.UTF-8) it raised
    UnicodeEncodeError mid-run. It is printed as standard error prints it, ``run\\udcff`` (backslashreplace)."""
    reconfigure = getattr(sys.stdout, "reconfigure", None)
    if reconfigure is not None and getattr(sys.stdout, "errors", None) == "strict":
        reconfigure(errors="backslashreplace")
