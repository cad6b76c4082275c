"""``save`` / ``load``: state dicts as ``.npz`` files, written atomically, read without pickle."""
from __future__ import annotations

import math
import os
import re
import reprlib
import stat
import tempfile
import zipfile
from collections import Counter

import numpy as np

from minidl.tensor import Tensor

__all__ = ["save", "load", "write_atomically", "remove_temporaries", "member_name_problem"]

_TEMPORARY_PREFIX = ".tmp-"
_TEMPORARY = re.compile(r"\.tmp-.+-[a-z0-9_]{8}")      # mkstemp's names: prefix, 8 random characters
_MAX_NAME_BYTES = 0xFFFF         # a zip header stores a member name's length in 2 bytes (APPNOTE.TXT 4.4.10)
_KEYS = reprlib.Repr()           # a key in a message: whole unless it is very long
_KEYS.maxstring = 120


def member_name_problem(name: str) -> str | None:
    """Why the key ``name`` cannot be stored as the archive member ``<name>.npy``, in words, or None if it can.

    zipfile cuts a name at NUL, writes names as UTF-8 (which has no code for a lone surrogate, the character
    ``os.fsdecode`` makes of an undecodable byte) and gives their length 2 bytes: each would fail mid-write
    or load as another key.
    """
    if "\0" in name:
        return "contains a NUL character, which ends a name in a zip archive: it would load as another key"
    try:
        size = len((name + ".npy").encode("utf-8"))
    except UnicodeEncodeError as error:
        return (f"holds {error.object[error.start:error.end]!r} at position {error.start}, a lone surrogate, which "
                f"UTF-8 (the encoding of names in a zip archive) cannot encode")
    if size > _MAX_NAME_BYTES:
        return f"is {size:,} bytes in UTF-8 with its '.npy', more than the {_MAX_NAME_BYTES:,} a zip archive's names hold"
    return None


def _to_array(name, value, path) -> np.ndarray:
    if isinstance(value, Tensor):
        value = value.data
    if isinstance(value, (bool, int, float, str, np.generic)):
        value = np.asarray(value)
    if not isinstance(value, np.ndarray):
        raise TypeError(f"save({path!r}): value for key {name!r} is a {type(value).__name__}; only "
                        f"ndarrays, Tensors, numbers and strings can be saved (flatten nested dicts)")
    if value.dtype.hasobject:
        raise ValueError(f"save({path!r}): key {name!r} holds an object array (dtype {value.dtype}), "
                         f"which would need pickle; convert it to a numeric or string array")
    return value


def _file_mode(path: str) -> int:
    """The mode of the file at ``path``, which its replacement keeps (as open() keeps it when it overwrites);
    for a new file 0666 minus the process umask, the mode open() would give it."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def save(state_dict: dict, path) -> None:
    """Write ``{name: ndarray | Tensor | number | str}`` to ``path`` (exactly that name) as .npz.

    The archive is NumPy's (``np.load`` reads it): one member ``<name>.npy`` per key, whatever the key
    (``np.savez`` would take "file" as its own argument, and give "x.npy" and "x" one member name) but one
    no member can be named by (``member_name_problem``): ValueError naming it, before any file is touched.
    The file is written to a temporary file in the same directory, flushed to disk, then renamed over
    ``path`` (``os.replace``), so an interrupted save never leaves a truncated file behind. A failed write
    (full disk, read-only folder) raises OSError naming ``path`` and leaves any previous file intact.
    """
    path = os.fsdecode(path)                  # bytes too, as open() takes them
    if not isinstance(state_dict, dict):
        raise TypeError(f"save({path!r}) expects a dict of arrays, got {type(state_dict).__name__}")
    arrays = {}
    for name, value in state_dict.items():
        if not isinstance(name, str):
            raise TypeError(f"save({path!r}): keys must be strings, got {name!r}")
        problem = member_name_problem(name)
        if problem:
            raise ValueError(f"save({path!r}): key {_KEYS.repr(name)} {problem}")
        arrays[name] = _to_array(name, value, path)
    write_atomically(path, lambda file: _write_npz(file, arrays))


def _write_npz(file, arrays: dict) -> None:
    """An uncompressed .npz, as ``np.savez`` writes it, into the open binary ``file``."""
    with zipfile.ZipFile(file, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
        for name, array in arrays.items():
            with archive.open(name + ".npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, array, allow_pickle=False)


def write_atomically(path, write) -> None:
    """Replace ``path`` by what ``write(file)`` writes to a binary file, atomically.

    ``write`` fills a temporary file in the same folder, which is flushed to disk (fsync) and renamed over
    ``path`` (``os.replace``): a crash leaves the old file or the new one, never a torn one; a killed process
    can also leave its temporary beside it (``remove_temporaries`` deletes those). A failure (full disk,
    read-only folder) removes the temporary and raises OSError naming ``path``. The new file keeps the
    mode of the one it replaces. Like open(), it writes through a symbolic link to its target, and into
    a device or FIFO (``/dev/null``) directly: renaming over either would replace it by a regular file.
    """
    path = os.fsdecode(path)
    if "\0" in path:                             # realpath's own error would not name the file
        raise ValueError(f"cannot write {path!r}: a path cannot contain a NUL character")
    tmp = None
    try:
        target = os.path.realpath(path)           # the file open() would write: the link stays a link
        if _is_special(target):
            with open(target, "wb") as file:
                write(file)
            return
        directory = os.path.dirname(target)
        fd, tmp = tempfile.mkstemp(prefix=_TEMPORARY_PREFIX + os.path.basename(target) + "-", dir=directory)
        with os.fdopen(fd, "wb") as file:
            os.chmod(tmp, _file_mode(target))     # mkstemp creates 0600
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, target)
        tmp = None
        _fsync_directory(directory)               # the rename itself survives a power loss
    except BaseException as error:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
        elif isinstance(error, UnicodeEncodeError):   # a surrogate no file name can hold: nothing was created
            raise ValueError(f"{path!r}: the file system cannot encode this name ({error.reason})") from None
        if isinstance(error, OSError) and error.errno is not None:
            raise OSError(error.errno, error.strerror, path) from error   # name the file, not the temporary
        raise


def _is_special(path: str) -> bool:
    """Whether ``path`` exists and is neither a regular file nor a folder (a device, a FIFO, a socket)."""
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):             # ValueError: a NUL in the name (open() then names it)
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


def _fsync_directory(directory: str) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:                               # no directory descriptors here (Windows)
        return
    try:
        os.fsync(fd)
    except OSError:
        pass                                      # a file system that cannot sync directories
    finally:
        os.close(fd)


def remove_temporaries(folder) -> list[str]:
    """Delete the temporary files that ``write_atomically`` leaves in ``folder`` when its process is killed
    mid-write (call only while no other process can be writing there: the run lock's holder); returns
    their names."""
    removed = []
    for entry in os.scandir(folder):
        if entry.name.startswith(_TEMPORARY_PREFIX) and _TEMPORARY.fullmatch(entry.name) and entry.is_file():
            try:
                os.unlink(entry.path)
                removed.append(entry.name)
            except FileNotFoundError:
                pass
    return removed


def load(path) -> dict:
    """Read a file written by ``save`` into ``{name: ndarray}`` (numbers come back as 0-d arrays).

    Never unpickles: a file that would need pickle (a pickle, or an .npz holding object arrays) is refused
    with ValueError; a missing file raises FileNotFoundError, a corrupt one ValueError naming it, and so
    does a member whose header declares more data than it holds, checked before anything is allocated: a
    stored member (np.savez, minidl) takes no more memory than the file's size. A deflated one
    (np.savez_compressed) can unpack to any size its header declares; more than the process can get is a
    ValueError too.
    """
    path = os.fsdecode(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"load: no such file {path!r}")
    if os.path.isdir(path):
        raise ValueError(f"load({path!r}): is a directory, not an .npz file")
    size = os.path.getsize(path)
    if size == 0:
        raise ValueError(f"load({path!r}): empty file, not an .npz archive")
    with open(path, "rb") as file:
        start = file.read(len(np.lib.format.MAGIC_PREFIX))
        if start == np.lib.format.MAGIC_PREFIX:
            file.seek(0)
            shape, dtype = _read_header(file, path, "the file")
            raise ValueError(f"load({path!r}): a single .npy array ({dtype}, shape {shape}), not an .npz archive "
                             f"of named arrays")
    if start[:1] == b"\x80":                     # a pickle's first opcode (PROTO)
        raise ValueError(f"load({path!r}): the file needs pickle to load (pickled data); refusing it: minidl "
                         f"files never contain pickle")
    try:
        with zipfile.ZipFile(path) as archive:
            members, declared = archive.infolist(), _declared_entries(path)
            if declared != len(members):
                raise ValueError(f"load({path!r}): the archive declares {declared} members but its directory lists "
                                 f"{len(members)}: damaged")
            repeated = [name for name, count in Counter(archive.namelist()).items() if count > 1]
            if repeated:
                raise ValueError(f"load({path!r}): member {repeated[0]!r} appears more than once: damaged")
            return dict(_read_member(archive, info, path, size) for info in members)
    except UnicodeDecodeError as exc:          # zipfile decodes a name flagged as UTF-8 when it lists or opens it
        raise ValueError(f"load({path!r}): a member name is not valid UTF-8 ({exc.object[exc.start:exc.end]!r} at "
                         f"byte {exc.start} of {len(exc.object):,}): damaged") from None
    except _UNREADABLE as exc:
        raise ValueError(f"load({path!r}): corrupt or truncated file ({exc})") from exc


def _declared_entries(path) -> int | None:
    """The number of entries the zip archive at ``path`` declares in its end records (PKWARE's APPNOTE.TXT);
    None without an end record.

    The end of central directory record (4.3.16, 22 bytes, signature ``b"PK\\x05\\x06"``) ends the file, or is
    followed by an archive comment of at most 65,535 bytes: it is the last signature with 22 bytes after
    it, as zipfile finds it. Its total number of entries is 2 bytes little-endian at offset 10. A zip64
    locator (4.3.15, 20 bytes, ``b"PK\\x06\\x07"``) just before it means the zip64 end record (4.3.14, 56 bytes,
    ``b"PK\\x06\\x06"``) precedes the locator and holds the count (65,536 entries and more): 8 bytes at offset 32.
    """
    with open(path, "rb") as file:
        tail_start = max(0, file.seek(0, os.SEEK_END) - 22 - 65_535)
        file.seek(tail_start)
        tail = file.read()
        end = tail.rfind(b"PK\x05\x06", 0, len(tail) - 18)
        if end < 0:
            return None
        zip64_start = tail_start + end - 20 - 56
        if zip64_start >= 0:
            file.seek(zip64_start)
            zip64 = file.read(56 + 20)
            if zip64.startswith(b"PK\x06\x06") and zip64[56:60] == b"PK\x06\x07":
                return int.from_bytes(zip64[32:40], "little")
    return int.from_bytes(tail[end + 10:end + 12], "little")


# What zipfile raises for a damaged archive: RuntimeError for an encrypted member (a flipped flag bit),
# NotImplementedError (a RuntimeError) for an unknown compression method or zip version.
_UNREADABLE = (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, RuntimeError)


def _read_header(file, path, what) -> tuple[tuple, np.dtype]:
    """(shape, dtype) from an .npy header; ValueError naming ``what`` if it is damaged, declares a shape no
    array can have (a negative length, or more bytes than an address can count, as (0, 10**20) does:
    NumPy's own limit), or needs pickle."""
    try:
        version = np.lib.format.read_magic(file)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(file)
        elif version == (2, 0):
            shape, _, dtype = np.lib.format.read_array_header_2_0(file)
        else:
            raise ValueError(f".npy format version {version} is not supported")
    except (ValueError, EOFError, SyntaxError) as exc:
        raise ValueError(f"load({path!r}): {what} has a damaged .npy header ({exc})") from exc
    if any(n < 0 for n in shape) or math.prod(n for n in shape if n) * max(dtype.itemsize, 1) > np.iinfo(np.intp).max:
        raise ValueError(f"load({path!r}): {what} declares a {dtype} array of shape {shape}, which no array can "
                         f"have: damaged")
    if dtype.hasobject:
        raise ValueError(f"load({path!r}): {what} holds an object array, which needs pickle to load; refusing "
                         f"it: minidl files never contain pickle")
    return shape, dtype


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, path, size: int) -> tuple[str, np.ndarray]:
    """(name, array) of one stored member ``<name>.npy`` of a ``size``-byte file, its declared size checked
    against what it holds."""
    if not info.filename.endswith(".npy"):
        raise ValueError(f"load({path!r}): member {info.filename!r} is not an .npy array")
    what = f"member {info.filename!r}"
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise ValueError(f"load({path!r}): {what} is compressed with zip method {info.compress_type}; .npz files "
                         f"hold stored members (np.savez, minidl) or deflated ones (np.savez_compressed)")
    stored = info.compress_type == zipfile.ZIP_STORED
    if info.compress_size > size or stored and info.file_size != info.compress_size:
        raise ValueError(f"load({path!r}): {what} is listed as {info.compress_size:,} bytes stored and "
                         f"{info.file_size:,} unpacked in a {size:,}-byte file: damaged")
    with archive.open(info) as member:
        shape, dtype = _read_header(member, path, what)
        declared = math.prod(shape) * dtype.itemsize
        held = info.file_size - member.tell()
        if declared != held:
            raise ValueError(f"load({path!r}): {what} declares a {dtype} array of shape {shape} ({declared:,} "
                             f"bytes) but holds {held:,} bytes: damaged")
    try:
        with archive.open(info) as member:
            return info.filename[:-len(".npy")], np.lib.format.read_array(member, allow_pickle=False)
    except MemoryError:                         # a deflated member unpacks to its declared size, any size
        raise ValueError(f"load({path!r}): {what} unpacks to {declared:,} bytes, more memory than this process "
                         f"can get") from None
