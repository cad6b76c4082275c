"""MNIST and Fashion-MNIST from their four standard IDX files, found without a network connection.

Lookup order for a dataset named NAME ("mnist" or "fashion-mnist"); the first folder holding all four files
wins, so both splits always come from the same copy (a folder holding only some of them is passed over):
  1. the `root` argument: `root` itself, then `root/NAME` (and the aliases below);
  2. `$MINIDL_DATA`: `$MINIDL_DATA/NAME` (and aliases), then `$MINIDL_DATA` itself, which is read as NAME
     only if it is named for NAME or its label files begin as NAME's official ones do: both datasets use
     the same file names, so a bare folder holding the other dataset (or files of one's own) is passed over;
  3. well-known places: `~/.cache/minidl/NAME`, `/usr/share/datasets/NAME` (Debian's `dataset-fashion-mnist`
     package installs Fashion-MNIST there), `/usr/local/share/datasets/NAME`.
A place the user named (`root`, `$MINIDL_DATA`) that is no folder, holds only some of the files or holds
other data is never passed over in silence: the not-found error says so, and when the data comes from a
later folder a RuntimeWarning (once per process) names it and the folder read instead.
File names: `train-images-idx3-ubyte`, `train-labels-idx1-ubyte`, `t10k-images-idx3-ubyte`,
`t10k-labels-idx1-ubyte`, each optionally ending in `.gz` (also accepted: `.idx3-ubyte` with a dot).
Folders named for the dataset and `root` are taken as they are.
Both datasets: 60,000 training and 10,000 test images, 28x28 uint8, labels 0-9 (LeCun et al. 1998;
Xiao, Rasul & Vollgraf 2017).
"""
from __future__ import annotations

import errno
import gzip
import hashlib
import os
import stat
import warnings
import zlib
from pathlib import Path

import numpy as np

from minidl.data.idx import read_idx

__all__ = ["load_mnist", "load_fashion_mnist", "find_dataset", "DatasetNotFoundError", "SPLIT_SIZES",
           "dataset_files", "load_split", "fingerprint"]

SPLIT_SIZES = {"train": 60_000, "test": 10_000}
_PREFIX = {"train": "train", "test": "t10k"}
_ALIASES = {
    "mnist": ("mnist", "MNIST", "MNIST/raw"),
    "fashion-mnist": ("fashion-mnist", "fashion_mnist", "FashionMNIST", "FashionMNIST/raw"),
}
_HOW_TO_GET = {
    "mnist": (
        "Get the four files (train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz,\n"
        "t10k-labels-idx1-ubyte.gz) from https://ossci-datasets.s3.amazonaws.com/mnist/ (a mirror of\n"
        "http://yann.lecun.com/exdb/mnist/) into $MINIDL_DATA/mnist/ or pass their folder as root= / --data-dir."
    ),
    "fashion-mnist": (
        "On Debian/Ubuntu: sudo apt-get install dataset-fashion-mnist (files go to /usr/share/datasets/fashion-mnist/).\n"
        "Elsewhere: download the four .gz files from https://github.com/zalandoresearch/fashion-mnist (data/fashion)\n"
        "into $MINIDL_DATA/fashion-mnist/ or pass their folder as root= / --data-dir."
    ),
}


#: Searched last, each as BASE/NAME (Debian's dataset-fashion-mnist installs /usr/share/datasets/fashion-mnist).
WELL_KNOWN_ROOTS = [
    Path.home() / ".cache" / "minidl",
    Path("/usr/share/datasets"),
    Path("/usr/local/share/datasets"),
]


class DatasetNotFoundError(FileNotFoundError):
    """No folder holds the dataset's files; the message lists where minidl looked and how to get them.

    `notes`: why places the user named (`root`, $MINIDL_DATA) were passed over; empty when none was.
    """
    notes: tuple[str, ...] = ()


#: How the official label files begin: the IDX header (uint8, one dimension of 60,000 or 10,000) and the first
#: ten labels, by dataset and split. MNIST: LeCun's files (train 5 0 4 1 9 ..., test 7 2 1 0 4 ...);
#: Fashion-MNIST: Zalando's, as Debian's dataset-fashion-mnist installs them. They tell which dataset a bare
#: $MINIDL_DATA folder holds: both datasets use the same four file names.
_LABELS_BEGIN = {
    name: {split: b"\x00\x00\x08\x01" + count.to_bytes(4, "big") + bytes(first)
           for split, count, first in (("train", 60_000, train), ("test", 10_000, test))}
    for name, train, test in (("mnist", (5, 0, 4, 1, 9, 2, 1, 3, 1, 4), (7, 2, 1, 0, 4, 1, 4, 9, 5, 9)),
                              ("fashion-mnist", (9, 0, 0, 3, 0, 2, 7, 2, 5, 5), (9, 2, 1, 1, 6, 1, 4, 6, 5, 7)))
}
_TITLE = {"mnist": "MNIST", "fashion-mnist": "Fashion-MNIST"}


def _candidate_folders(name: str, root: str | os.PathLike | None) -> list[tuple[Path, str]]:
    """(folder, role) in the documented order. Roles: "given" (`root` and its dataset subfolders), "env"
    ($MINIDL_DATA/NAME and aliases, or $MINIDL_DATA named for NAME), "bare" ($MINIDL_DATA itself, which may
    hold either dataset: `_bare_folder_problem`), "known" (the well-known places)."""
    folders = _given_folders(name, Path(root).expanduser()) if root is not None else []
    env = os.environ.get("MINIDL_DATA")
    if env:
        base = Path(env).expanduser()
        folders += [(base / alias, "env") for alias in _ALIASES[name]]
        folders += [(base, "env" if _named_for(base, name) else "bare")]
    folders += [(base / name, "known") for base in WELL_KNOWN_ROOTS]
    unique: dict[Path, str] = {}
    for folder, role in folders:
        unique.setdefault(folder, role)       # a folder met twice keeps its first place and role
    return list(unique.items())


def _given_folders(name: str, root: Path) -> list[tuple[Path, str]]:
    """`root` itself, then its subfolders named for dataset `name`: the folders a given root stands for."""
    return [(folder, "given") for folder in [root] + [root / alias for alias in _ALIASES[name]]]


def _no_such_folders(root) -> list[str]:
    """"root=... does not exist", "MINIDL_DATA=... is not a folder": the places named that are no folder."""
    notes = []
    for label, value in (("root", root), ("MINIDL_DATA", os.environ.get("MINIDL_DATA") or None)):
        if value is not None and not Path(value).expanduser().is_dir():
            what = "is not a folder" if Path(value).expanduser().exists() else "does not exist"
            notes.append(f"{label}={value} {what}")
    return notes


def _named_for(folder: Path, name: str) -> bool:
    """Whether `folder` is named for dataset `name` (ends in one of its folder names, e.g. .../fashion-mnist)."""
    return any(folder.parts[-len(Path(alias).parts):] == Path(alias).parts for alias in _ALIASES[name])


def _head(path: Path, size: int) -> bytes:
    """The first `size` bytes of a file's content (gunzipped if it is gzip); b"" if it cannot be read."""
    try:
        with open(path, "rb") as raw:
            if raw.read(2) != b"\x1f\x8b":
                raw.seek(0)
                return raw.read(size)
            raw.seek(0)
            with gzip.GzipFile(fileobj=raw) as stream:
                return stream.read(size)
    except (OSError, EOFError, zlib.error):
        return b""


def _holds(found: dict[str, tuple[Path, Path]]) -> str | None:
    """The dataset whose official label files (both splits) these are, by their first bytes; None if neither."""
    heads = {split: _head(found[split][1], len(_LABELS_BEGIN["mnist"][split])) for split in _PREFIX}
    return next((name for name, begin in _LABELS_BEGIN.items() if heads == begin), None)


def _bare_folder_problem(name: str, folder: Path, found: dict[str, tuple[Path, Path]]) -> str | None:
    """Why the bare $MINIDL_DATA folder, which holds four files, is not read as `name`; None if it is.

    Both datasets use the same file names, so a folder not named for one is read as `name` only if its
    label files are `name`'s official ones: never one dataset for the other, nor other files for either.
    """
    holds = _holds(found)
    if holds == name:
        return None
    if holds is not None:
        return (f"MINIDL_DATA={folder} holds {_TITLE[holds]}, not {_TITLE[name]} (its label files are "
                f"{_TITLE[holds]}'s), so it is not read as {name}")
    return (f"MINIDL_DATA={folder} holds IDX files that are not the official {_TITLE[name]} (their labels begin "
            f"otherwise), so they are not read as {name}: files of your own go in {folder / name}/")


_WARNED: set[str] = set()


def _warn_once(message: str) -> None:
    """A RuntimeWarning, once per process for a given message (a script loads both splits, a study twice)."""
    if message not in _WARNED:
        _WARNED.add(message)
        warnings.warn(message, RuntimeWarning, stacklevel=3)


def _what_is(path: Path) -> str | None:
    """None when `path` is a regular file (symbolic links followed), "" when nothing is there, else what it
    is instead ("is a folder, not a file", "is a symbolic link loop", ...): said rather than "missing"."""
    try:
        mode = path.stat().st_mode
    except (FileNotFoundError, NotADirectoryError):
        return "is a broken symbolic link" if path.is_symlink() else ""
    except OSError as error:
        if error.errno == errno.ELOOP:
            return "is a symbolic link loop"
        return f"cannot be read ({error.strerror or error})"
    if stat.S_ISREG(mode):
        return None
    return "is a folder, not a file" if stat.S_ISDIR(mode) else "is not a regular file"


def _find_file(folder: Path, stem: str, ndim: int) -> tuple[Path | None, str | None]:
    """(path, None) for the first accepted name that is a regular file; else (None, what is wrong with the
    first name present, e.g. "t10k-images-idx3-ubyte.gz is a folder, not a file"), (None, None) if none is."""
    problem = None
    for base in (f"{stem}-idx{ndim}-ubyte", f"{stem}.idx{ndim}-ubyte"):
        for suffix in (".gz", ""):
            path = folder / (base + suffix)
            what = _what_is(path)
            if what is None:
                return path, None
            if what and problem is None:
                problem = f"{path.name} {what}"
    return None, problem


_NEEDED = [(split, kind, ndim) for split in _PREFIX for kind, ndim in (("images", 3), ("labels", 1))]
_NEEDED_NAMES = [f"{_PREFIX[split]}-{kind}-idx{ndim}-ubyte[.gz]" for split, kind, ndim in _NEEDED]   # as said


def _folder_files(folder: Path) -> tuple[dict[str, tuple[Path | None, Path | None]], list[str], list[str]]:
    """(files found by split, names missing, what is wrong with the entries present that are not files)."""
    paths, missing, problems = {}, [], []
    if folder.is_dir():
        for (split, kind, ndim), said in zip(_NEEDED, _NEEDED_NAMES):
            path, problem = _find_file(folder, f"{_PREFIX[split]}-{kind}", ndim)
            paths[split, kind] = path
            if path is None and problem is None:
                missing.append(said)
            elif problem is not None:
                problems.append(problem)
    else:
        missing = list(_NEEDED_NAMES)
    found = {split: (paths.get((split, "images")), paths.get((split, "labels"))) for split in _PREFIX}
    return found, missing, problems


def _partial(name: str, folder: Path, missing: list[str], problems: list[str]) -> str:
    parts = ([f"{', '.join(missing)} missing"] if missing else []) + problems
    return f"{folder} holds only some of the {name} files: {'; '.join(parts)}"


def find_dataset(name: str, split: str = "train", root: str | os.PathLike | None = None) -> tuple[Path, Path]:
    """Return the (images, labels) file paths of `split` for dataset `name`, searched in the documented order.

    The folder is the first holding all four files (`dataset_files`), whichever split is asked for, so the
    train and test files of a dataset always come from the same copy. Raises DatasetNotFoundError listing
    every folder searched and how to get the files.
    """
    if not isinstance(name, str) or name not in _ALIASES:      # a list is unhashable: no TypeError from `in`
        raise ValueError(f"unknown dataset {name!r}; expected one of {sorted(_ALIASES)}")
    if not isinstance(split, str) or split not in _PREFIX:
        raise ValueError(f"unknown split {split!r}; expected 'train' or 'test'")
    return dataset_files(name, root)[split]


def dataset_files(name: str, root: str | os.PathLike | None = None, *,
                  search: bool = True) -> dict[str, tuple[Path, Path]]:
    """The four files of dataset `name`, all from one folder: {"train": (images, labels), "test": (...)}.

    Folders are tried in the documented order (only `root` and its dataset subfolders when `search` is
    False: an explicit folder is used or refused, never mixed with another); the first holding all four
    wins, so the two splits always come from the same copy. DatasetNotFoundError otherwise: with
    search=False a one-line message naming `root` and the files missing there, or what an entry bearing a
    file's name is instead (a folder, a symbolic link loop, ...).
    """
    if not isinstance(name, str) or name not in _ALIASES:
        raise ValueError(f"unknown dataset {name!r}; expected one of {sorted(_ALIASES)}")
    if not search:
        if root is None:
            raise ValueError("dataset_files: search=False needs a root folder")
        root = Path(root).expanduser()
        if not root.is_dir():
            raise DatasetNotFoundError(f"{root}: no such folder")
        folders = _given_folders(name, root)
    else:
        folders = _candidate_folders(name, root)
    # notes: why `root` or $MINIDL_DATA was not used, said in the not-found error and (with `passed`: those of
    # their folders holding only some files) in a warning when the data comes from a folder after them
    partial, passed = None, []
    notes = _no_such_folders(root) if search else []
    for folder, role in folders:
        found, missing, problems = _folder_files(folder)
        if not missing and not problems:
            note = _bare_folder_problem(name, folder, found) if role == "bare" else None
            if note is None:
                if (notes or passed) and role != "given":
                    _warn_once(f"{'; '.join(notes + passed)}; reading {name} from {folder}")
                return found
            notes.append(note)
            continue
        some = len(missing) < len(_NEEDED) or problems
        if some and role != "known":
            passed.append(("MINIDL_DATA: " if role != "given" else "") + _partial(name, folder, missing, problems))
        if some and partial is None:
            partial = (folder, missing, problems)
    if partial is not None:
        problem = _partial(name, *partial)
    else:
        problem = f"no folder holds the {name} files ({', '.join(_NEEDED_NAMES)})"
    problem = "; ".join([problem] + notes)
    if not search:
        looked = ", ".join(str(folder) for folder, _ in folders)
        raise DatasetNotFoundError(f"{problem}; looked in {looked} and nowhere else")
    where = "\n".join(f"  {folder}" for folder, _ in folders)
    error = DatasetNotFoundError(f"{problem}.\nSearched, in order:\n{where}\n{_HOW_TO_GET[name]}")
    error.notes = tuple(notes + passed)
    raise error


def fingerprint(path: str | os.PathLike) -> dict:
    """{"path": resolved absolute path, "bytes": size, "sha256": hex digest} of a file, to record what a
    run read."""
    path = Path(path).resolve()
    digest = hashlib.sha256()
    with open(path, "rb") as data:
        while chunk := data.read(1 << 20):
            digest.update(chunk)
    return {"path": str(path), "bytes": path.stat().st_size, "sha256": digest.hexdigest()}


def load_split(name: str, split: str, images_path: Path, labels_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read and check one split of `name` from its two IDX files: (images uint8 (N, 28, 28), labels int64)."""
    images = read_idx(images_path)
    labels = read_idx(labels_path)
    expected = SPLIT_SIZES[split]
    if images.dtype != np.uint8 or images.shape != (expected, 28, 28):
        raise ValueError(f"{images_path}: expected {expected} 28x28 uint8 images for the {name} {split} split, "
                         f"found {images.dtype} of shape {images.shape}")
    if labels.dtype != np.uint8 or labels.shape != (expected,):
        raise ValueError(f"{labels_path}: expected {expected} uint8 labels for the {name} {split} split, "
                         f"found {labels.dtype} of shape {labels.shape}")
    if labels.max() > 9:
        raise ValueError(f"{labels_path}: labels must lie in 0..9, found {int(labels.max())}")
    return images, labels.astype(np.int64)


def _load(name: str, root, split: str) -> tuple[np.ndarray, np.ndarray]:
    return load_split(name, split, *find_dataset(name, split, root))


def load_mnist(root: str | os.PathLike | None = None, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """MNIST digits: (images uint8 (N, 28, 28), labels int64 (N,)), N = 60,000 (train) or 10,000 (test).

    `root` is searched first, then $MINIDL_DATA, then well-known folders (see the module docstring); the
    first folder holding all four files is used, for either split.
    """
    return _load("mnist", root, split)


def load_fashion_mnist(root: str | os.PathLike | None = None, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """Fashion-MNIST (Zalando): (images uint8 (N, 28, 28), labels int64 (N,)), N = 60,000 or 10,000.

    `root` is searched first, then $MINIDL_DATA, then well-known folders including Debian's
    /usr/share/datasets/fashion-mnist/ (package `dataset-fashion-mnist`); the first folder holding all four
    files is used, for either split.
    """
    return _load("fashion-mnist", root, split)
