"""MNIST and Fashion-MNIST from their four standard IDX files, found without a network connection.

Lookup order for a dataset named NAME ("mnist" or "fashion-mnist"); the first folder holding all four files
wins, so both splits always come from the same copy (a folder holding only some of them is passed over):
  1. the `root` argument: `root` itself, then `root/NAME` (and the aliases below);
  2. `$MINIDL_DATA`: `$MINIDL_DATA/NAME` (and aliases), then `$MINIDL_DATA` itself;
  3. well-known places: `~/.cache/minidl/NAME`, `/usr/share/datasets/NAME` (Debian's `dataset-fashion-mnist`
     package installs Fashion-MNIST there), `/usr/local/share/datasets/NAME`.
File names: `train-images-idx3-ubyte`, `train-labels-idx1-ubyte`, `t10k-images-idx3-ubyte`,
`t10k-labels-idx1-ubyte`, each optionally ending in `.gz` (also accepted: `.idx3-ubyte` with a dot).
Both datasets: 60,000 training and 10,000 test images, 28x28 uint8, labels 0-9 (LeCun et al. 1998;
Xiao, Rasul & Vollgraf 2017).
"""
from __future__ import annotations

import errno
import hashlib
import os
import stat
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
    """No folder holds the dataset's files; the message lists where minidl looked and how to get them."""


def _candidate_folders(name: str, root: str | os.PathLike | None) -> list[Path]:
    folders: list[Path] = []
    if root is not None:
        root = Path(root).expanduser()
        folders += [root] + [root / alias for alias in _ALIASES[name]]
    env = os.environ.get("MINIDL_DATA")
    if env:
        base = Path(env).expanduser()
        folders += [base / alias for alias in _ALIASES[name]] + [base]
    folders += [base / name for base in WELL_KNOWN_ROOTS]
    return list(dict.fromkeys(folders))  # drop duplicates, keep order


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


def _folder_files(folder: Path) -> tuple[dict[str, tuple[Path | None, Path | None]], list[str], list[str]]:
    """(files found by split, names missing, what is wrong with the entries present that are not files)."""
    paths, missing, problems = {}, [], []
    if folder.is_dir():
        for split, kind, ndim in _NEEDED:
            path, problem = _find_file(folder, f"{_PREFIX[split]}-{kind}", ndim)
            paths[split, kind] = path
            if path is None and problem is None:
                missing.append(f"{_PREFIX[split]}-{kind}-idx{ndim}-ubyte[.gz]")
            elif problem is not None:
                problems.append(problem)
    else:
        missing = [f"{_PREFIX[split]}-{kind}-idx{ndim}-ubyte[.gz]" for split, kind, ndim in _NEEDED]
    found = {split: (paths.get((split, "images")), paths.get((split, "labels"))) for split in _PREFIX}
    return found, missing, problems


def find_dataset(name: str, split: str = "train", root: str | os.PathLike | None = None) -> tuple[Path, Path]:
    """Return the (images, labels) file paths of `split` for dataset `name`, searched in the documented order.

    The folder is the first holding all four files (`dataset_files`), whichever split is asked for, so the
    train and test files of a dataset always come from the same copy. Raises DatasetNotFoundError listing
    every folder searched and how to get the files.
    """
    if name not in _ALIASES:
        raise ValueError(f"unknown dataset {name!r}; expected one of {sorted(_ALIASES)}")
    if split not in _PREFIX:
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
    if name not in _ALIASES:
        raise ValueError(f"unknown dataset {name!r}; expected one of {sorted(_ALIASES)}")
    if not search:
        if root is None:
            raise ValueError("dataset_files: search=False needs a root folder")
        root = Path(root).expanduser()
        if not root.is_dir():
            raise DatasetNotFoundError(f"{root}: no such folder")
        folders = [root] + [root / alias for alias in _ALIASES[name]]
    else:
        folders = _candidate_folders(name, root)
    partial = None
    for folder in folders:
        found, missing, problems = _folder_files(folder)
        if not missing and not problems:
            return found
        if partial is None and (len(missing) < len(_NEEDED) or problems):
            partial = (folder, missing, problems)
    if partial is not None:
        folder, missing, problems = partial
        parts = ([f"{', '.join(missing)} missing"] if missing else []) + problems
        problem = f"{folder} holds only some of the {name} files: {'; '.join(parts)}"
    else:
        needed = [f"{_PREFIX[split]}-{kind}-idx{ndim}-ubyte[.gz]" for split, kind, ndim in _NEEDED]
        problem = f"no folder holds the {name} files ({', '.join(needed)})"
    if not search:
        looked = ", ".join(str(folder) for folder in folders)
        raise DatasetNotFoundError(f"{problem}; looked in {looked} and nowhere else")
    where = "\n".join(f"  {folder}" for folder in folders)
    raise DatasetNotFoundError(f"{problem}.\nSearched, in order:\n{where}\n{_HOW_TO_GET[name]}")


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
