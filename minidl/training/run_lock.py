"""One process per output folder: a lock file `<folder>/.lock` naming its holder (PID, host, purpose).

    from minidl.training.run_lock import FolderLocked, acquire
    with acquire("runs/fm", "minidl train") as lock:
        if lock.stale is not None:
            print(f"note: {lock.stale}")       # a dead holder's lock was taken over
        ...                                  # the folder is ours until the block ends

The lock itself is an exclusive `flock` on the file: the kernel releases it when its process ends, however
it ends (SIGKILL included), so a lock file left behind is recognized as stale with no guessing, and a reused
PID cannot keep it alive. The file's JSON contents (pid, host, purpose, since) only name the holder in
messages. Where the file system refuses `flock` (some network or FUSE mounts), liveness falls back to the
PID: a lock from this host whose PID no longer runs is stale; one from another host is presumed alive
(the fallback cannot stop two processes that find the same stale lock at the same instant).
On release the file is removed (unlinked while still locked; an acquirer that locked the unlinked file
notices the path now names another file, or none, and starts over).
Only minidl's own lock file is ever written or removed: a `.lock` that is a symbolic link (never followed),
not a regular file, or holds anything but a lock record (an empty file is one not yet written) is refused
with NotALockFile and left as it is.
"""
from __future__ import annotations

import errno
import json
import os
import socket
import stat
import time
from dataclasses import dataclass
from pathlib import Path

from minidl.serialization import remove_temporaries

try:
    import fcntl
except ImportError:             # not POSIX (Windows): the PID fallback below
    fcntl = None

__all__ = ["acquire", "FolderLock", "FolderLocked", "NotALockFile", "Holder", "LOCK_FILE"]

LOCK_FILE = ".lock"
RECORD_FIELDS = {"pid": int, "host": str, "purpose": str}    # what a lock record holds (`_write` adds "since")
_MAX_RECORD_BYTES = 65536       # a record is ~150 bytes: a larger file is not one, and is not read whole
_NO_FLOCK = (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL)


@dataclass(frozen=True)
class Holder:
    """Who holds (or held) a lock, as written in the lock file."""
    pid: int | None
    host: str | None
    purpose: str | None
    since: str | None

    @classmethod
    def from_record(cls, text: str) -> "Holder | None":
        """The holder a lock record written by minidl names, or None when `text` is not such a record."""
        try:
            fields = json.loads(text)
        except json.JSONDecodeError:
            return None
        if not isinstance(fields, dict) or not all(isinstance(fields.get(key), kind) and not isinstance(fields[key], bool)
                                                   for key, kind in RECORD_FIELDS.items()):
            return None
        since = fields.get("since")
        return cls(fields["pid"], fields["host"], fields["purpose"], since if isinstance(since, str) else None)

    def __str__(self) -> str:
        if self.pid is None:
            return "another process (its lock file names no holder yet, or is unreadable)"
        what = f"{self.purpose} " if self.purpose else ""
        since = f", since {self.since}" if self.since else ""
        return f"{what}(PID {self.pid} on host {self.host}{since})"


UNKNOWN_HOLDER = Holder(None, None, None, None)     # a held lock whose record is not written yet


class FolderLocked(RuntimeError):
    """The folder is in use by another live process; `holder` names it, `path` is the lock file."""

    def __init__(self, folder: Path, path: Path, holder: Holder | None, message: str | None = None):
        self.folder, self.path, self.holder = folder, path, holder
        super().__init__(message or f"{folder} is in use by {holder}; wait for it to finish or use another folder "
                                    f"(lock file {path})")


class NotALockFile(FolderLocked):
    """`<folder>/.lock` is not minidl's lock file (`what` says what it is); it was neither written nor removed."""

    def __init__(self, folder: Path, path: Path, what: str):
        super().__init__(folder, path, None, f"{path} is not minidl's lock file ({what}); minidl would overwrite "
                                             f"and then delete it: move it away, or use another folder")


class FolderLock:
    """A held lock (see `acquire`). `stale` describes the dead holder whose lock was taken over, else None."""

    def __init__(self, folder: Path, path: Path, fd: int, stale: str | None):
        self.folder, self.path, self._fd, self.stale = folder, path, fd, stale

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        """Remove the lock file and unlock (idempotent)."""
        if self._fd is None:
            return
        try:
            _remove_if_ours(self._fd, self.path)   # a read-only folder keeps it: the kernel lock goes anyway
        finally:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> "FolderLock":
        return self

    def __exit__(self, *exc) -> bool:
        self.release()
        return False


def _same_file(fd: int, path: Path) -> bool:
    try:
        here, there = os.fstat(fd), os.stat(path)
    except FileNotFoundError:
        return False
    return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)


def _remove_if_ours(fd: int, path: Path) -> None:
    """Unlink `path` if it is still the file `fd` holds locked (as `release` does); an unlink that fails stays
    silent: an empty lock file is one not yet written, taken by the next run."""
    try:
        if _same_file(fd, path):
            os.unlink(path)
    except OSError:
        pass


def _pid_alive(pid: int) -> bool:
    if os.name == "nt":
        return True       # os.kill(pid, 0) would send CTRL_C_EVENT there: presume alive
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True       # it exists, owned by someone else
    return True


def _read(fd: int) -> str:
    """The file's text, or its first _MAX_RECORD_BYTES + 1 bytes (then no lock record)."""
    os.lseek(fd, 0, os.SEEK_SET)
    chunks, size = [], 0
    while size <= _MAX_RECORD_BYTES and (chunk := os.read(fd, _MAX_RECORD_BYTES + 1 - size)):
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks).decode("utf-8", errors="replace")


def _open(folder: Path, path: Path) -> int:
    """Open (or create) the lock file without following a symbolic link; NotALockFile if it is not a file."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
    except OSError:
        if path.is_symlink():            # O_NOFOLLOW refused it (ELOOP; EMLINK on BSD)
            raise NotALockFile(folder, path, f"a symbolic link to {os.readlink(path)}") from None
        if path.is_dir():
            raise NotALockFile(folder, path, "a folder") from None
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise NotALockFile(folder, path, "not a regular file")
    return fd


def _write(fd: int, purpose: str) -> None:
    me = {"pid": os.getpid(), "host": socket.gethostname(), "purpose": purpose,
          "since": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, (json.dumps(me) + "\n").encode("utf-8"))
    os.fsync(fd)


def _held_by_live_process(holder: Holder) -> bool:
    """PID fallback (no flock): presumed alive unless it is this host's and its PID no longer runs."""
    if holder.pid is None or holder.host != socket.gethostname():
        return True
    return _pid_alive(holder.pid)


def acquire(folder: str | os.PathLike, purpose: str) -> FolderLock:
    """Lock `folder` (created if missing) for this process, or raise FolderLocked naming the live holder.

    `purpose` (e.g. "minidl train") is written to the lock file for other processes' messages. A lock
    left by a process that has ended is taken over; the returned lock's `stale` then says whose it was.
    A `.lock` that is not minidl's raises NotALockFile, untouched.
    Use as a context manager or call `release()`; OSError (read-only or full file system) propagates, naming
    the lock file, which is not left behind when its record could not be written (nor when a Ctrl-C stops
    the writing).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_FILE
    while True:
        fd = _open(folder, path)
        held = False              # set once the file is this call's to write: removed if it stops there
        try:
            kernel_lock = fcntl is not None
            try:
                if kernel_lock:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise FolderLocked(folder, path, Holder.from_record(_read(fd)) or UNKNOWN_HOLDER) from None
            except OSError as error:
                if error.errno not in _NO_FLOCK:
                    raise
                kernel_lock = False
            if not _same_file(fd, path):
                os.close(fd)      # the holder removed this file as we locked it: try the new one
                continue
            text = _read(fd)
            previous = Holder.from_record(text) if text.strip() else None    # empty: created, not yet written
            if text.strip() and previous is None:
                raise NotALockFile(folder, path, "it holds no minidl lock record")
            if not kernel_lock and previous is not None and _held_by_live_process(previous):
                raise FolderLocked(folder, path, previous)
            held = True
            try:
                _write(fd, purpose)
            except OSError as error:          # a full disk: the record does not fit, the file is ours and empty
                raise OSError(error.errno, error.strerror, str(path)) from error
        except BaseException:
            if held:                          # a full disk, or a Ctrl-C while the record was written
                _remove_if_ours(fd, path)
            os.close(fd)
            raise
        stale = None
        if previous is not None:
            stale = f"took over the lock of {folder} left by {previous}, which is no longer running"
            leftovers = remove_temporaries(folder)     # its unfinished atomic writes: nobody else writes here
            for sub in sorted(p for p in Path(folder).iterdir() if p.is_dir() and not p.is_symlink()):
                leftovers += [f"{sub.name}/{name}" for name in remove_temporaries(sub)]   # figures/, checkpoints/
            if leftovers:
                stale += f"; removed the unfinished temporary file(s) it left: {', '.join(sorted(leftovers))}"
        return FolderLock(folder, path, fd, stale)
