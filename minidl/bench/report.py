"""Printing benchmark results: an aligned text table, a geometric-mean line, or JSON."""
from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path


def geomean(values: list[float]) -> float:
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else float("nan")


def table(rows: list[dict], columns: list[tuple[str, str, str]]) -> str:
    """columns: (key, header, format spec)."""
    cells = [[header for _, header, _ in columns]]
    for row in rows:
        cells.append([format(row[key], spec) if row.get(key) is not None else "-"
                      for key, _, spec in columns])
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    lines = ["  ".join(cell.rjust(width) for cell, width in zip(line, widths)) for line in cells]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def check_json_destination(destination: str | None) -> None:
    """ValueError (one line) before a benchmark runs if ``--json PATH`` cannot be written: its folder missing
    or not writable, or PATH a folder (the results of a long run were lost with a traceback at the end)."""
    if destination in (None, "-"):
        return
    path = Path(destination)
    folder = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise ValueError(f"--json {destination}: is a folder; give a file name")
    if not folder.is_dir():
        raise ValueError(f"--json {destination}: no folder {folder}")
    in_place = path.exists() and not path.is_file()      # /dev/null, a pipe: written in place (write_atomically)
    if not os.access(path if in_place else folder, os.W_OK | (0 if in_place else os.X_OK)) or (
            path.exists() and not os.access(path, os.W_OK)):
        raise ValueError(f"--json {destination}: not writable here")


def write_json(result: dict, destination: str) -> None:
    """destination '-' is standard output; a file is replaced atomically (no half-written JSON)."""
    from minidl.serialization import write_atomically

    text = json.dumps(result, indent=2) + "\n"
    if destination == "-":
        sys.stdout.write(text)
    else:
        write_atomically(destination, lambda file: file.write(text.encode()))
