"""Checkpoints: a nested state (dicts, lists, arrays, numbers, strings) in one .npz file, written atomically.

Arrays become the archive's members; everything else becomes a JSON description of the tree stored as
one uint8 member (`__tree__`), so no pickle is ever written or read (`mdl.save` / `mdl.load`).
`mdl.save` writes atomically (temporary file in the same folder, fsync, `os.replace`), so a crash leaves
either the old checkpoint or the new one, never a torn file.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from minidl.serialization import member_name_problem

__all__ = ["save_checkpoint", "load_checkpoint", "pack_checkpoint", "write_checkpoint", "CheckpointError"]

_TREE_KEY = "__tree__"
FORMAT = "minidl-checkpoint-1"


class CheckpointError(ValueError):
    """A checkpoint file is unreadable or not a minidl checkpoint; the message names the file."""


def _check_keys(node: dict, key: str) -> None:
    """Refuse the keys of `node` that would not come back as they were: a key that is not a string, number,
    boolean or None (JSON's scalars), a string holding "/" (it separates the levels of an array's stored
    name), and two keys stored under one name (1 and "1", None and "None")."""
    stored = {}
    for name in node:
        if not isinstance(name, (str, int, float, type(None))):    # bool is an int
            raise TypeError(f"checkpoint: key {name!r} at {key or '/'} has type {type(name).__name__}; keys must "
                            f"be strings, numbers, booleans or None")
        if isinstance(name, str) and "/" in name:
            raise ValueError(f"checkpoint: key {name!r} at {key or '/'} contains '/', which separates the levels "
                             f"of a stored name")
        if str(name) in stored:
            raise ValueError(f"checkpoint: keys {stored[str(name)]!r} and {name!r} at {key or '/'} would both be "
                             f"stored as {str(name)!r}")
        stored[str(name)] = name


def _pack(node, key: str, arrays: dict):
    """JSON-able description of `node`; arrays are moved into `arrays` under unique keys."""
    if isinstance(node, np.ndarray):
        problem = member_name_problem(key)     # what save() would refuse, refused while packing: before any write
        if problem:
            raise ValueError(f"checkpoint: the array at {key!r} cannot be stored: its name {problem}")
        if node.dtype.hasobject:
            raise ValueError(f"checkpoint: the array at {key!r} holds objects (dtype {node.dtype}), which would need "
                             f"pickle")
        arrays[key] = np.asarray(node)
        return {"array": key}
    if isinstance(node, np.generic):
        node = node.item()
    if node is None or isinstance(node, (bool, int, float, str)):
        return node
    if isinstance(node, dict):
        _check_keys(node, key)
        return {"dict": [[name, _pack(value, f"{key}/{name}", arrays)] for name, value in node.items()]}
    if isinstance(node, (list, tuple)):
        kind = "list" if isinstance(node, list) else "tuple"
        return {kind: [_pack(value, f"{key}/{i}", arrays) for i, value in enumerate(node)]}
    raise TypeError(f"checkpoint: cannot store a {type(node).__name__} at {key or '/'}")


def _unpack(node, arrays):
    if isinstance(node, dict):
        if "array" in node:
            return arrays[node["array"]]
        if "dict" in node:
            return {name: _unpack(value, arrays) for name, value in node["dict"]}
        if "list" in node:
            return [_unpack(value, arrays) for value in node["list"]]
        if "tuple" in node:
            return tuple(_unpack(value, arrays) for value in node["tuple"])
    return node


def save_checkpoint(state: dict, path: str | os.PathLike) -> Path:
    """Write the nested `state` to `path` (.npz) atomically; returns the path. Its dicts' keys are strings
    without "/", numbers, booleans or None, distinct as strings within a dict, and an array's path of keys
    must name an archive member (no NUL, no lone surrogate); else nothing is written."""
    return write_checkpoint(pack_checkpoint(state), path)


def pack_checkpoint(state: dict) -> dict[str, np.ndarray]:
    """The archive members `save_checkpoint` writes for `state`, every key and value checked (TypeError or
    ValueError naming the first that cannot be stored). A caller that writes other files with a checkpoint
    packs it first, so that a state which cannot be stored is refused before anything is written."""
    arrays: dict[str, np.ndarray] = {}
    tree = {"format": FORMAT, "state": _pack(state, "", arrays)}
    arrays[_TREE_KEY] = np.frombuffer(json.dumps(tree).encode("utf-8"), dtype=np.uint8)
    return arrays


def write_checkpoint(members: dict[str, np.ndarray], path: str | os.PathLike) -> Path:
    """Write `pack_checkpoint`'s members to `path` atomically, making its folder; returns the path."""
    from minidl import save

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save(members, path)
    return path


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Read a checkpoint written by `save_checkpoint` (never unpickles anything)."""
    from minidl import load

    path = Path(path)
    arrays = load(path)
    if _TREE_KEY not in arrays:
        raise CheckpointError(f"{path}: not a minidl checkpoint (no {_TREE_KEY} member)")
    try:
        tree = json.loads(bytes(np.asarray(arrays[_TREE_KEY], dtype=np.uint8)).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
        raise CheckpointError(f"{path}: damaged checkpoint description ({error})") from None
    if not isinstance(tree, dict) or tree.get("format") != FORMAT:
        found = tree.get("format") if isinstance(tree, dict) else None
        raise CheckpointError(f"{path}: unknown checkpoint format {found!r}, expected {FORMAT!r}")
    try:
        return _unpack(tree.get("state"), arrays)
    except (KeyError, TypeError, ValueError, RecursionError) as error:
        raise CheckpointError(f"{path}: damaged checkpoint description ({type(error).__name__}: {error})") from None
