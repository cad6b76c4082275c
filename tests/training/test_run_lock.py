"""The output-folder lock: one holder at a time, stale locks taken over, the holder named."""
import errno
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

import minidl

from minidl.training import run_lock
from minidl.training.run_lock import FolderLocked, acquire

# Children run beside the tested package (the installed copy, or a source tree built in place), never
# in a source checkout whose unbuilt copy would shadow it from the current directory.
PACKAGE_PARENT = str(Path(minidl.__file__).resolve().parents[1])


def _dead_pid() -> int:
    """The PID of a process that has just exited (reuse within the test is vanishingly unlikely)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _leave_lock(folder, pid, host=None):
    folder.mkdir(exist_ok=True)
    (folder / ".lock").write_text(json.dumps({"pid": pid, "host": host or socket.gethostname(),
                                              "purpose": "minidl train", "since": "earlier"}))


def test_holder_is_named_and_the_file_removed_on_release(tmp_path):
    with acquire(tmp_path / "run", "minidl train") as lock:
        assert lock.stale is None and lock.held
        holder = json.loads((tmp_path / "run" / ".lock").read_text())
        assert holder["pid"] == os.getpid() and holder["host"] == socket.gethostname()
        with pytest.raises(FolderLocked, match=f"in use by minidl train \\(PID {os.getpid()} on host") as info:
            acquire(tmp_path / "run", "minidl train")       # a second open file: refused like another process
        assert info.value.holder.pid == os.getpid()
    assert not lock.held and not (tmp_path / "run" / ".lock").exists()
    with acquire(tmp_path / "run", "again") as lock:      # free again
        assert lock.stale is None


def test_a_live_holder_in_another_process_is_refused(tmp_path):
    code = ("import sys, time; from minidl.training.run_lock import acquire\n"
            "with acquire(sys.argv[1], 'holder'):\n print('held', flush=True); sys.stdin.read()")
    holder = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, cwd=PACKAGE_PARENT)
    try:
        assert holder.stdout.readline() == "held\n"
        with pytest.raises(FolderLocked, match=f"holder \\(PID {holder.pid} on host {socket.gethostname()}"):
            acquire(tmp_path, "minidl train")
    finally:
        holder.communicate("")
    with acquire(tmp_path, "minidl train") as lock:       # released when the holder ended
        assert lock.stale is None


def _killed_holder(folder) -> subprocess.Popen:
    """A process that took the lock of ``folder`` as 'doomed' and died of SIGKILL holding it."""
    code = ("import os, signal, sys; from minidl.training.run_lock import acquire\n"
            "acquire(sys.argv[1], 'doomed'); os.kill(os.getpid(), signal.SIGKILL)")
    killed = subprocess.Popen([sys.executable, "-c", code, str(folder)], cwd=PACKAGE_PARENT)
    assert killed.wait() == -9
    return killed


def test_a_killed_holders_lock_is_taken_over_with_a_message(tmp_path):
    killed = _killed_holder(tmp_path)
    assert (tmp_path / ".lock").exists()
    with acquire(tmp_path, "minidl train") as lock:
        assert lock.stale.startswith(f"took over the lock of {tmp_path} left by doomed (PID {killed.pid} on host "
                                     f"{socket.gethostname()}, since ")
        assert lock.stale.endswith("which is no longer running")
        assert json.loads((tmp_path / ".lock").read_text())["pid"] == os.getpid()


def test_a_killed_holders_unfinished_writes_are_removed_in_subfolders_too(tmp_path):
    """A study writes figures/*.png and checkpoints/*.npz atomically: a SIGKILL mid-write left the hidden
    temporary there for good (only the locked folder itself was cleaned)."""
    _killed_holder(tmp_path)
    (tmp_path / "figures").mkdir()
    (tmp_path / "figures" / ".tmp-fig2.png-abcd1234").write_bytes(b"half a png")
    (tmp_path / "figures" / "fig1.png").write_bytes(b"a finished figure")
    (tmp_path / ".tmp-report.md-wxyz9876").write_text("half a report")
    with acquire(tmp_path, "minidl reproduce") as lock:
        assert lock.stale.endswith("it left: .tmp-report.md-wxyz9876, figures/.tmp-fig2.png-abcd1234")
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["fig1.png", "figures"]


@pytest.fixture
def no_flock(monkeypatch):
    """A file system that refuses flock: liveness falls back to the PID."""
    def refuse(fd, operation):
        raise OSError(errno.ENOLCK, "No locks available")
    monkeypatch.setattr(run_lock.fcntl, "flock", refuse)


def test_without_flock_a_dead_pid_on_this_host_is_stale(tmp_path, no_flock):
    pid = _dead_pid()
    _leave_lock(tmp_path, pid)
    with acquire(tmp_path, "minidl train") as lock:
        assert f"PID {pid} on host {socket.gethostname()}" in lock.stale


def test_without_flock_a_live_pid_or_another_host_is_respected(tmp_path, no_flock):
    _leave_lock(tmp_path, os.getppid())                 # pytest's parent: alive
    with pytest.raises(FolderLocked, match=f"PID {os.getppid()}"):
        acquire(tmp_path, "minidl train")
    _leave_lock(tmp_path, _dead_pid(), host="elsewhere.example")   # cannot be checked from here
    with pytest.raises(FolderLocked, match="on host elsewhere.example"):
        acquire(tmp_path, "minidl train")


def test_read_only_folder_is_an_os_error(tmp_path, monkeypatch):
    real_open = os.open

    def read_only(path, *args, **kwargs):
        if str(path).endswith(".lock"):
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real_open(path, *args, **kwargs)
    monkeypatch.setattr(run_lock.os, "open", read_only)
    with pytest.raises(OSError) as info:
        acquire(tmp_path, "minidl train")
    assert info.value.errno == errno.EROFS


@pytest.mark.parametrize("target", ["p.txt", "missing.txt"], ids=["to_a_file", "dangling"])
def test_a_symbolic_link_is_refused_and_never_followed(tmp_path, target):
    """`.lock -> ../p.txt`: p.txt was overwritten with the lock record and then deleted."""
    (tmp_path / "p.txt").write_text("precious")
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / ".lock").symlink_to(f"../{target}")
    with pytest.raises(run_lock.NotALockFile, match=f"lock file \\(a symbolic link to ../{target}\\); minidl would"):
        acquire(tmp_path / "run", "minidl train")
    assert (tmp_path / "p.txt").read_text() == "precious" and not (tmp_path / "missing.txt").exists()
    assert os.readlink(tmp_path / "run" / ".lock") == f"../{target}"


@pytest.mark.parametrize("text", ["my notes\n", '{"pid": 12}', "[1, 2]", "x" * 100_000])
def test_a_lock_file_minidl_did_not_write_is_refused_untouched(tmp_path, text):
    """Any `.lock` was truncated, then deleted, with a note that a dead process's lock was taken over."""
    (tmp_path / ".lock").write_text(text)
    with pytest.raises(run_lock.NotALockFile, match="holds no minidl lock record"):
        acquire(tmp_path, "minidl train")
    assert (tmp_path / ".lock").read_text() == text


def test_an_empty_lock_file_is_one_not_yet_written_and_is_taken(tmp_path):
    (tmp_path / ".lock").write_text("")           # a holder killed between creating and writing it
    with acquire(tmp_path, "minidl train") as lock:
        assert lock.stale is None
    assert not (tmp_path / ".lock").exists()


@pytest.mark.parametrize("before", ["none", "stale"])
def test_a_full_disk_names_the_lock_file_and_leaves_none_behind(tmp_path, monkeypatch, before):
    """A full disk still creates the empty file but refuses its record: the error named no file ("No space
    left on device [errno 28]") and an empty `.lock` stayed in the folder."""
    if before == "stale":
        _leave_lock(tmp_path, _dead_pid())

    def disk_full(fd, data):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(run_lock.os, "write", disk_full)
    with pytest.raises(OSError) as info:
        acquire(tmp_path, "minidl train")
    monkeypatch.undo()
    assert (info.value.errno, info.value.filename) == (errno.ENOSPC, str(tmp_path / ".lock"))
    assert not (tmp_path / ".lock").exists()
    with acquire(tmp_path, "minidl train") as lock:
        assert lock.stale is None


@pytest.mark.parametrize("flock", ["flock", "no_flock"])
def test_a_ctrl_c_while_the_record_is_written_leaves_no_lock_behind(tmp_path, monkeypatch, request, flock):
    """A SIGTERM during the record's fsync: `minidl train` said "<out> is unchanged" and left the folder it
    had made, holding a `.lock` of its now dead process."""
    if flock == "no_flock":
        request.getfixturevalue("no_flock")

    def interrupted(fd):
        raise KeyboardInterrupt
    monkeypatch.setattr(run_lock.os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        acquire(tmp_path, "minidl train")
    monkeypatch.undo()
    assert not (tmp_path / ".lock").exists()
    (tmp_path / ".lock").write_text("not minidl's")        # refused before any write: left as it was
    with pytest.raises(run_lock.NotALockFile):
        acquire(tmp_path, "minidl train")
    assert (tmp_path / ".lock").read_text() == "not minidl's"
