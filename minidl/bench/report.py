"""Printing benchmark results: an aligned text table, a geometric-mean line, or JSON."""
from __future__ import annotations

import json
import math
import sys


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


def write_json(result: dict, destination: str) -> None:
    """destination '-' is standard output."""
    text = json.dumps(result, indent=2)
    if destination == "-":
        sys.stdout.write(text + "\n")
    else:
        with open(destination, "w") as f:
            f.write(text + "\n")
