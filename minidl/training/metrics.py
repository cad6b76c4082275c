"""Per-epoch metrics as JSON lines: one object per line, appended (and fsynced) as training goes.

A crash while appending can leave a torn last line (no newline at its end): readers skip it, and a resumed
run moves it to `<file>.bad` (kept for the user, never silently lost) and writes that epoch again (past
its checkpoint; records the file lacks before the checkpoint are named, see keep_until_step). Any other
line that is not a JSON object is damaged: reading stops with MetricsError naming the file and the line,
because guessing would cost records the user may need; nothing is rewritten.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path

from minidl.serialization import write_atomically

__all__ = ["append_record", "read_records", "check_order", "keep_until_step", "MetricsError"]


class MetricsError(ValueError):
    """A metrics file has a damaged line (other than a torn last one); the message names file and line."""


def _clean(value):
    # JSON has no NaN/inf: write them as null so every line stays standard JSON.
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _ends_unterminated(path: Path) -> bool:
    """True if the file is non-empty and its last byte is not a newline (an edited file, or a write that
    stopped just before its newline)."""
    try:
        with open(path, "rb") as f:
            if f.seek(0, os.SEEK_END) == 0:
                return False
            f.seek(-1, os.SEEK_END)
            return f.read(1) != b"\n"
    except FileNotFoundError:
        return False


def append_record(path: str | os.PathLike, record: dict) -> None:
    """Append `record` as one JSON line (fsynced, so a crash loses at most this line), on a line of its own
    even when the file's last line lacks its newline. A failed write (full disk, read-only or failing file
    system) cuts the file back to its length before (a full disk had left half a line) and raises OSError
    naming `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps({key: _clean(value) for key, value in record.items()}) + "\n"
    data = (("\n" + line) if _ends_unterminated(path) else line).encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        size = os.fstat(fd).st_size
        try:
            view = memoryview(data)
            while view:                       # a write may take part of the line (the last free bytes)
                view = view[os.write(fd, view):]
            os.fsync(fd)
        except OSError as error:
            try:
                os.ftruncate(fd, size)        # takes no space: the intact lines stay as they were
            except OSError:
                pass                          # a torn last line then: readers skip it, resume sets it aside
            raise OSError(error.errno, error.strerror, str(path)) from error
    finally:
        os.close(fd)


def _parse(path: Path) -> tuple[list[tuple[bytes, dict]], bytes]:
    """([(line as stored, record)], the torn last line skipped or b""); MetricsError on a damaged line."""
    if not path.exists():
        return [], b""
    lines = path.read_bytes().split(b"\n")
    last = len(lines) - 1            # the piece after the final newline: b"" unless the last line is torn
    parsed = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line.decode("utf-8"))
            problem = None if isinstance(record, dict) else f"a JSON {type(record).__name__}, not an object"
            step = record.get("step", 0) if problem is None else 0
            if problem is None and (type(step) is not int or step < 0):
                problem = f"its step is {step!r}, not an update count"
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            problem = str(error)
        if problem is None:
            parsed.append((line + b"\n", record))
        elif number - 1 == last:
            return parsed, line       # torn while being appended
        else:
            raise MetricsError(f"{path}, line {number}: damaged metrics record ({problem}); the other lines "
                               f"are intact: repair or delete line {number}, then run again")
    return parsed, b""


def read_records(path: str | os.PathLike) -> list[dict]:
    """All records of a metrics file ([] if it does not exist); a torn last line is skipped.

    Raises MetricsError naming the file and line if any other line is damaged.
    """
    return [record for _, record in _parse(Path(path))[0]]


def check_order(path: str | os.PathLike) -> None:
    """MetricsError, naming the file, if a line is damaged or two records are out of update order (a second
    copy of a line is no error: resuming removes it)."""
    path = Path(path)
    _in_order(path, _parse(path)[0])


def _in_order(path: Path, parsed: list) -> tuple[list, list[dict]]:
    """(the (line, record) pairs of `parsed` in update order, the second copies of lines left out);
    MetricsError for two different records of one update, or a record of an update before the last's."""
    kept, repeated = [], []
    for line, record in parsed:
        here, before = record.get("step", 0), kept[-1][1].get("step", 0) if kept else -1
        if here <= before:
            if record != kept[-1][1]:
                what = (f"two different records of update {here}" if here == before else
                        f"a record of update {here} after one of update {before}")
                raise MetricsError(f"{path}: {what}: the file was edited or joined from two runs; repair it, then "
                                   f"run again (nothing was changed)")
            repeated.append(record)
            continue
        kept.append((line, record))
    return kept, repeated


def keep_until_step(path: str | os.PathLike, step: int,
                    epochs_done: int | None = None) -> tuple[list[dict], list[str]]:
    """Keep the records with record["step"] <= step, for a run resumed from a checkpoint at `step`.

    Later records (written after that checkpoint, so redone by the resumed run) are removed, a torn last
    line is moved to `<file>.bad` and a second copy of a line is removed; the file is rewritten atomically
    if anything changed, intact earlier lines kept byte for byte. With `epochs_done`, the checkpoint's
    completed epochs, a note also names those whose records the file lacks (lines deleted, the file cut).
    Returns (kept records, notes saying what was removed or is missing). MetricsError if a line is damaged,
    or if records are out of update order (see check_order; nothing is changed then).
    """
    path = Path(path)
    parsed, torn = _parse(path)
    kept, repeated = _in_order(path, [(line, record) for line, record in parsed if record.get("step", 0) <= step])
    later = [record for _, record in parsed if record.get("step", 0) > step]
    notes = [f"{path}: removed a second copy of the record of update {record.get('step', 0)} (epoch "
             f"{record.get('epoch')})" for record in repeated]
    if epochs_done is not None:
        written = {record.get("epoch") for _, record in kept
                   if record.get("complete", type(record.get("epoch")) is int)}    # no "complete": older files
        lacking = [epoch for epoch in range(1, epochs_done + 1) if epoch not in written]
        if lacking:
            where = "does not exist" if not path.exists() else "was cut or had lines removed"
            epochs = ("epochs " if len(lacking) > 1 else "epoch ") + _spans(lacking)
            notes.append(f"{path} {where}: it lacks the records of {epochs}, done before the checkpoint (epoch "
                         f"{epochs_done}, update {step}); training continues without them")
    if later:
        epochs = ", ".join(str(record.get("epoch")) for record in later)
        notes.append(f"{path}: removed {len(later)} record(s) past update {step} (epoch {epochs}), where training "
                     f"continues: it writes them anew")
    if torn:
        bad = path.with_name(path.name + ".bad")
        with open(bad, "ab") as out:
            out.write(torn + b"\n")
            out.flush()
            os.fsync(out.fileno())
        notes.append(f"{path}: moved a torn last line (an interrupted write) to {bad}")
    if later or torn or repeated or (not torn and _ends_unterminated(path)):   # the latter: only a final newline
        write_atomically(path, lambda out: out.writelines(line for line, _ in kept))
    return [record for _, record in kept], notes


def _spans(numbers: list[int]) -> str:
    """[1, 2, 3, 5] -> '1-3, 5'."""
    spans, start = [], numbers[0]
    for previous, number in zip(numbers, numbers[1:] + [None]):
        if number != previous + 1:
            spans.append(f"{start}" if start == previous else f"{start}-{previous}")
            start = number
    return ", ".join(spans)
