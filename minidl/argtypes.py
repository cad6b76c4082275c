"""argparse helpers shared by the command lines (`minidl train`, `minidl reproduce`, `minidl bench`): value
types that check their value and say what they expected in argparse's error (`minidl train` re-checks the
settings of a config.json with the same functions), and one-line errors instead of the usage block."""
from __future__ import annotations

import argparse
import math

__all__ = ["MAX_SECONDS", "integer", "real", "choice", "comma_list", "integers", "nonempty_path", "one_line_errors",
           "repeated"]


def integer(minimum: int, maximum: int | None = None):
    """An int in [minimum, maximum] (no maximum when None)."""
    interval = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"

    def parse(text) -> int:
        try:
            value = int(text) if isinstance(text, (str, int)) and not isinstance(text, bool) else None
        except ValueError:
            value = None
        if value is None or value < minimum or (maximum is not None and value > maximum):
            raise argparse.ArgumentTypeError(f"must be an integer {interval}, got {text!r}")
        return value
    parse.__name__ = f"integer {interval}"
    return parse


def real(low: float, high: float = math.inf, *, low_open: bool = False, high_open: bool = True):
    """A finite float in the interval [low, high) (open/closed ends as given)."""
    if high == math.inf:
        interval = f"> {low:g}" if low_open else f">= {low:g}"
    else:
        interval = f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"

    def parse(text) -> float:
        try:
            value = float(text)
        except (TypeError, ValueError):
            value = math.nan
        if isinstance(text, bool) or not (math.isfinite(value) and (value > low if low_open else value >= low)
                                          and (value < high if high_open else value <= high)):
            raise argparse.ArgumentTypeError(f"must be a finite number {interval}, got {text!r}")
        return value
    parse.__name__ = f"number {interval}"
    return parse


# The longest pause or timed block a benchmark option may ask for: they are meant to be fractions of a second,
# and time.sleep overflows (a traceback after the measurements) past about 9.2e9 s.
MAX_SECONDS = 3600.0


def choice(choices):
    """One of ``choices`` (a string)."""
    def parse(text) -> str:
        if text is argparse.SUPPRESS:        # argparse passes the default of an absent optional positional
            return text
        if text not in choices:
            raise argparse.ArgumentTypeError(f"unknown {text!r}; choose from {', '.join(choices)}")
        return text
    return parse


def nonempty_path(text) -> str:
    """A non-empty path: an empty one would quietly name the current folder."""
    if not text:
        raise argparse.ArgumentTypeError("must be a path, got an empty one (write . for the current folder)")
    return text


def repeated(values) -> list:
    """The values listed more than once, sorted."""
    values = list(values)
    return sorted({v for v in values if values.count(v) > 1})


def comma_list(kind, *, distinct: bool = True):
    """A comma-separated, non-empty list ("1,2,4"), each item parsed by ``kind`` (an argparse type, or a
    function raising ValueError); with ``distinct``, no value listed twice. An empty item ("1,,2", "1,") is
    refused, not skipped: it is most often a value deleted by mistake."""
    def parse(text) -> list:
        parts = [part.strip() for part in str(text).split(",")]
        if not any(parts):
            raise argparse.ArgumentTypeError(f"must be a comma-separated list, got {text!r}")
        if not all(parts):
            raise argparse.ArgumentTypeError(f"has an empty item: {text!r}")
        try:
            values = [kind(part) for part in parts]
        except (ValueError, TypeError) as error:     # a plain function (int, float); ArgumentTypeError passes
            raise argparse.ArgumentTypeError(f"{error}: {text!r}") from None
        twice = repeated(values) if distinct else []
        if twice:           # measured twice, a value would appear twice in the tables and their summaries
            raise argparse.ArgumentTypeError(f"lists {', '.join(map(str, twice))} more than once: {text!r}")
        return values
    parse.__name__ = f"comma-separated list of {getattr(kind, '__name__', 'values')}"
    return parse


def integers(minimum: int, maximum: int | None = None):
    """A comma-separated, non-empty list of distinct ints, each in [minimum, maximum] ("1,2,4")."""
    return comma_list(integer(minimum, maximum))


def one_line_errors(parser: argparse.ArgumentParser) -> None:
    """Make `parser` report every mistake, unrecognized arguments included, in one line (exit status 2)
    rather than the usage block; the top-level parser would otherwise report the extras itself."""
    parse_known_args = parser.parse_known_args

    def error(message: str):
        parser.exit(2, f"{parser.prog}: error: {message} (see {parser.prog} --help)\n")

    def parse_known_args_without_extras(args=None, namespace=None):
        namespace, extras = parse_known_args(args, namespace)
        if extras:
            error(f"unrecognized arguments: {' '.join(extras)}")
        return namespace, extras
    parser.error, parser.parse_known_args = error, parse_known_args_without_extras
