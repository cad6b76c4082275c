"""Per-epoch metrics as JSON lines: one object per line, appended as training goes."""
from __future__ import annotations

import json
import math
import os
from pathlib import Path

__all__ = ["append_record", "read_records", "truncate_after_step"]


def _clean(value):
    # JSON has no NaN/inf: write them as null so every line stays standard JSON.
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def append_record(path: str | os.PathLike, record: dict) -> None:
    """Append `record` as one JSON line (flushed and fsynced, so a crash loses at most this line)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as out:
        out.write(json.dumps({key: _clean(value) for key, value in record.items()}) + "\n")
        out.flush()
        os.fsync(out.fileno())


def read_records(path: str | os.PathLike) -> list[dict]:
    """All records of a metrics file ([] if it does not exist); a torn last line is ignored."""
    path = Path(path)
    if not path.exists():
        return []
    records = []
    with open(path, encoding="utf-8") as lines:
        for line in lines:
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                break
    return records


def truncate_after_step(path: str | os.PathLike, step: int) -> list[dict]:
    """Keep only records with record["step"] <= step (rewritten atomically); returns the kept records.

    Resuming from a checkpoint at `step` drops lines written after it, so they are not duplicated.
    """
    path = Path(path)
    kept = [record for record in read_records(path) if record.get("step", 0) <= step]
    if path.exists():
        temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        with open(temporary, "w", encoding="utf-8") as out:
            out.writelines(json.dumps(record) + "\n" for record in kept)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    return kept
