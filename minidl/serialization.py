"""``save`` / ``load``: state dicts as ``.npz`` files, written atomically, read without pickle."""
from __future__ import annotations

import os
import tempfile
import zipfile

import numpy as np

from minidl.tensor import Tensor

__all__ = ["save", "load", "write_atomically"]


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


def _default_file_mode() -> int:
    """0666 minus the process umask: the mode open() would have given a new file."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def save(state_dict: dict, path) -> None:
    """Write ``{name: ndarray | Tensor | number | str}`` to ``path`` (exactly that name) as .npz.

    The file is written to a temporary file in the same directory, flushed to disk, then renamed over
    ``path`` (``os.replace``), so an interrupted save never leaves a truncated file behind. A failed write
    (full disk, read-only folder) raises OSError naming ``path`` and leaves any previous file intact.
    """
    path = os.fspath(path)
    if not isinstance(state_dict, dict):
        raise TypeError(f"save({path!r}) expects a dict of arrays, got {type(state_dict).__name__}")
    arrays = {}
    for name, value in state_dict.items():
        if not isinstance(name, str):
            raise TypeError(f"save({path!r}): keys must be strings, got {name!r}")
        arrays[name] = _to_array(name, value, path)
    write_atomically(path, lambda file: np.savez(file, **arrays))


def write_atomically(path, write) -> None:
    """Replace ``path`` by what ``write(file)`` writes to a binary file, atomically.

    ``write`` fills a temporary file in the same folder, which is flushed to disk (fsync) and renamed over
    ``path`` (``os.replace``): a crash leaves the old file or the new one, never a torn one, and no
    temporary. A failure (full disk, read-only folder) raises OSError naming ``path``.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=".tmp-" + os.path.basename(path) + "-", dir=directory)
        with os.fdopen(fd, "wb") as file:
            os.chmod(tmp, _default_file_mode())   # mkstemp creates 0600; give the usual mode
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException as error:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
        if isinstance(error, OSError) and error.errno is not None:
            raise OSError(error.errno, error.strerror, path) from error   # name the file, not the temporary
        raise


def load(path) -> dict:
    """Read a file written by ``save`` into ``{name: ndarray}`` (numbers come back as 0-d arrays).

    Reads with ``allow_pickle=False``: a file that would need pickle (a pickle, or an .npz holding object
    arrays) is refused with ValueError; a missing file raises FileNotFoundError, a corrupt one ValueError.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"load: no such file {path!r}")
    if os.path.isdir(path):
        raise ValueError(f"load({path!r}): is a directory, not an .npz file")
    if os.path.getsize(path) == 0:
        raise ValueError(f"load({path!r}): empty file, not an .npz archive")
    try:
        contents = np.load(path, allow_pickle=False)
        if isinstance(contents, np.lib.npyio.NpzFile):
            with contents as npz:
                return {name: npz[name] for name in npz.files}
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            raise ValueError(f"load({path!r}): the file needs pickle to load (pickled data or object "
                             f"arrays); refusing it: minidl files never contain pickle") from exc
        raise ValueError(f"load({path!r}): {exc}") from exc
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise ValueError(f"load({path!r}): corrupt or truncated file ({exc})") from exc
    raise ValueError(f"load({path!r}): a single .npy array ({contents.dtype}, shape {contents.shape}), not an "
                     f".npz archive of named arrays")
