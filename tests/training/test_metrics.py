"""metrics.jsonl: intact lines are never dropped; a torn last line is set aside; damage elsewhere is named."""
import json

import pytest

from minidl.training.metrics import MetricsError, append_record, keep_until_step, read_records


def _write(path, steps):
    for step in steps:
        append_record(path, {"epoch": step // 5, "step": step, "loss": float("nan") if step == 10 else 0.5})


def test_round_trip_and_nan_as_null(tmp_path):
    path = tmp_path / "metrics.jsonl"
    _write(path, [5, 10])
    assert read_records(path) == [{"epoch": 1, "step": 5, "loss": 0.5}, {"epoch": 2, "step": 10, "loss": None}]
    assert read_records(tmp_path / "missing.jsonl") == []


def test_damaged_line_anywhere_but_last_is_named_and_nothing_changes(tmp_path):
    path = tmp_path / "metrics.jsonl"
    _write(path, [5, 10, 15])
    lines = path.read_bytes().split(b"\n")
    for damaged in (lines[1][:20], b"[1, 2]", b"\xff\xfe"):
        text = b"\n".join([lines[0], damaged, lines[2], b""])
        path.write_bytes(text)
        with pytest.raises(MetricsError, match=f"{path}, line 2: damaged metrics record"):
            read_records(path)
        with pytest.raises(MetricsError, match="line 2"):
            keep_until_step(path, 15)
        assert path.read_bytes() == text
    path.write_bytes(b"\n".join([lines[0], lines[1], lines[2][:10], b""]))   # last, but complete: damaged
    with pytest.raises(MetricsError, match="line 3"):
        read_records(path)


def test_torn_last_line_is_skipped_then_set_aside(tmp_path):
    path = tmp_path / "metrics.jsonl"
    _write(path, [5, 10])
    intact = path.read_bytes()
    path.write_bytes(intact + b'{"epoch": 3, "st')
    assert [r["step"] for r in read_records(path)] == [5, 10]
    kept, notes = keep_until_step(path, 10)
    assert [r["step"] for r in kept] == [5, 10] and path.read_bytes() == intact
    assert (tmp_path / "metrics.jsonl.bad").read_bytes() == b'{"epoch": 3, "st\n'
    assert notes == [f"{path}: moved a torn last line (an interrupted write) to {tmp_path / 'metrics.jsonl.bad'}"]


def test_records_after_the_checkpoint_are_removed_and_said_earlier_ones_kept_byte_for_byte(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 5,   "epoch": 1}\n\n{"step": 10, "epoch": 2}\n{"step": 15, "epoch": 3}\n')
    kept, notes = keep_until_step(path, 10)
    assert kept == [{"step": 5, "epoch": 1}, {"step": 10, "epoch": 2}]
    assert path.read_text() == '{"step": 5,   "epoch": 1}\n{"step": 10, "epoch": 2}\n'
    assert notes == [f"{path}: removed 1 record(s) past update 10 (epoch 3), where training continues: it writes "
                     f"them anew"]
    before = path.stat().st_mtime_ns
    assert keep_until_step(path, 10) == (kept, [])          # nothing to do: the file is not rewritten
    assert path.stat().st_mtime_ns == before
    assert json.loads(path.read_text().split("\n")[0]) == {"step": 5, "epoch": 1}


def test_a_last_record_without_its_newline_gets_one_before_the_next(tmp_path):
    """An editor that drops the final newline (or a write that stopped just before it): the next record was
    appended onto the same line, and the next read called the file damaged."""
    path = tmp_path / "metrics.jsonl"
    _write(path, [5, 10])
    path.write_bytes(path.read_bytes().rstrip(b"\n"))
    _write(path, [15])
    assert [r["step"] for r in read_records(path)] == [5, 10, 15]
    path.write_bytes(path.read_bytes().rstrip(b"\n"))
    kept, notes = keep_until_step(path, 15)                 # resuming there: the newline is restored, silently
    assert [r["step"] for r in kept] == [5, 10, 15] and notes == [] and path.read_bytes().endswith(b"}\n")


@pytest.mark.parametrize("step", ["null", "-5", "2.5", '"7"', "true"])
def test_a_record_whose_step_is_not_a_count_is_damaged(tmp_path, step):
    """A step of null made resuming fail with a TypeError traceback."""
    path = tmp_path / "metrics.jsonl"
    _write(path, [5])
    path.write_text(path.read_text() + f'{{"epoch": 2, "step": {step}}}\n' + '{"epoch": 3, "step": 15}\n')
    with pytest.raises(MetricsError, match=r"line 2: damaged metrics record \(its step is .*not an update count"):
        keep_until_step(path, 15)


@pytest.mark.parametrize("fails", ["write", "fsync"])
def test_a_full_disk_while_appending_names_the_file_and_leaves_it_as_it_was(tmp_path, monkeypatch, fails):
    """A full disk takes the first bytes of a line and refuses the rest (os.write returns short, then ENOSPC):
    the half line stayed, and the error (from the file object's flush) named no file."""
    import errno
    import os

    from minidl.training import metrics

    path = tmp_path / "metrics.jsonl"
    _write(path, [5, 10])
    intact = path.read_bytes()
    real_write, real_fsync = os.write, os.fsync

    def disk_fills(fd, data):
        if len(data) > 7:
            return real_write(fd, bytes(data[:7]))
        raise OSError(errno.ENOSPC, "No space left on device")

    def sync_fails(fd):
        raise OSError(errno.EIO, "Input/output error")
    monkeypatch.setattr(metrics.os, "write", disk_fills if fails == "write" else real_write)
    monkeypatch.setattr(metrics.os, "fsync", sync_fails if fails == "fsync" else real_fsync)
    with pytest.raises(OSError) as info:
        _write(path, [15])
    monkeypatch.undo()
    assert info.value.filename == str(path)
    assert info.value.errno == (errno.ENOSPC if fails == "write" else errno.EIO)
    assert path.read_bytes() == intact
    _write(path, [15])
    assert [r["step"] for r in read_records(path)] == [5, 10, 15]


def _epochs(path, epochs, per_epoch=7):
    for epoch in epochs:
        append_record(path, {"epoch": epoch, "step": per_epoch * epoch, "complete": True, "loss": 0.5})


def test_records_the_checkpoint_has_done_but_the_file_lacks_are_named(tmp_path):
    """A deleted metrics file, a deleted line or a file cut short: resuming went on without a word, leaving a
    finished run's metrics without the epochs it lacked."""
    path = tmp_path / "metrics.jsonl"
    kept, notes = keep_until_step(path, 21, epochs_done=3)
    assert kept == [] and not path.exists()
    assert notes == [f"{path} does not exist: it lacks the records of epochs 1-3, done before the checkpoint "
                     f"(epoch 3, update 21); training continues without them"]
    _epochs(path, [1, 3, 4])
    text = path.read_bytes()
    kept, notes = keep_until_step(path, 21, epochs_done=3)
    assert [r["epoch"] for r in kept] == [1, 3]
    assert notes[0] == (f"{path} was cut or had lines removed: it lacks the records of epoch 2, done before the "
                        f"checkpoint (epoch 3, update 21); training continues without them")
    assert "removed 1 record(s) past update 21 (epoch 4)" in notes[1]
    assert path.read_bytes() == text[:text.index(b'{"epoch": 4')]
    path.unlink()
    _epochs(path, [2, 5])
    assert "the records of epochs 1, 3-4, 6, done" in keep_until_step(path, 42, epochs_done=6)[1][0]
    path.write_text('{"epoch": 1, "step": 7}\n{"epoch": 2, "step": 14}\n')    # older records: no "complete"
    assert keep_until_step(path, 14, epochs_done=2) == ([{"epoch": 1, "step": 7}, {"epoch": 2, "step": 14}], [])


def test_a_second_copy_of_a_line_is_removed_two_different_records_of_one_update_are_refused(tmp_path):
    path = tmp_path / "metrics.jsonl"
    _epochs(path, [1, 2, 3])
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines + lines[-1:]))
    kept, notes = keep_until_step(path, 21, epochs_done=3)
    assert [r["epoch"] for r in kept] == [1, 2, 3] and path.read_bytes() == b"".join(lines)
    assert notes == [f"{path}: removed a second copy of the record of update 21 (epoch 3)"]
    for edited, what in ((lines + [lines[-1].replace(b"0.5", b"0.25")], "two different records of update 21"),
                         ([lines[0], lines[2], lines[1]], "a record of update 14 after one of update 21")):
        path.write_bytes(b"".join(edited))
        with pytest.raises(MetricsError, match=f"{what}: the file was edited"):
            keep_until_step(path, 21, epochs_done=3)
        assert path.read_bytes() == b"".join(edited)
