"""``Optimizer`` base: parameter groups, per-parameter state, zero_grad, flat pickle-free state dicts."""
from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping

import numpy as np

from minidl.pending_product import PendingProduct
from minidl.tensor import Tensor

__all__ = ["Optimizer"]


def state_number(state: Mapping, key: str, what: str) -> float:
    """``state[key]`` as a float: a number or a 0-d array of one (as ``mdl.load`` returns it), else ValueError."""
    value = np.asarray(state[key])
    if value.ndim != 0 or value.dtype.kind not in "biuf":
        raise ValueError(f"{what} '{key}' is {value.dtype} of shape {value.shape}, not a number")
    return float(value)


def state_count(state: Mapping, key: str, what: str, minimum: int = 0) -> int:
    """``state[key]`` as an int: an integral number >= ``minimum`` (a float such as 3.0 too), else ValueError."""
    number = state_number(state, key, what)
    if math.isfinite(number) and number == int(number):
        count = int(np.asarray(state[key]))          # exact, for integers past float's 53 bits too
        if count >= minimum:
            return count
    raise ValueError(f"{what} '{key}' must be an integer >= {minimum}, got {number:g}")


class Optimizer:
    """Holds ``param_groups`` (list of dicts with "params" and hyperparameters) and ``state``.

    ``params`` is an iterable of Tensors or of dicts ``{"params": [...], "lr": ...}`` (per-group
    overrides, as PyTorch). A parameter listed more than once in a group is kept once (first
    occurrence); one in two groups is a ValueError (whose lr would it take?), as in PyTorch. Leaves that
    do not require grad (frozen layers) are accepted and, getting no ``.grad``, stay unchanged; a
    non-leaf is refused. Optimizers read ``.grad`` and never modify it; parameters whose ``.grad`` is
    None are skipped.
    A weight gradient that backward kept pending (``minidl.pending_product``) is applied as it is by
    SGD and materialized into a scratch array by the others (``_gradients``), leaving ``.grad`` pending.
    Scratch arrays (``_buffer``) persist across steps, so a step allocates none of its large arrays.
    """

    #: hyperparameter names and their types, in state-dict order (set by subclasses)
    hyper: dict = {}
    #: values for hyperparameters a state dict may lack (added after such state dicts were saved)
    hyper_defaults: dict = {}

    def __init__(self, params, defaults: dict):
        if isinstance(params, Tensor):
            raise TypeError("params must be an iterable of Tensors (e.g. model.parameters()), "
                            "not a single Tensor")
        params = list(params)
        if not params:
            raise ValueError("optimizer got an empty parameter list")
        groups = params if isinstance(params[0], dict) else [{"params": params}]
        self.defaults = dict(defaults)
        self.param_groups: list[dict] = []
        self.state = defaultdict(dict)       # param -> {"step": int, buffers...}: opt.state[p], PyTorch's
        self._scratch: dict[int, dict] = {}   # id(param) -> {name: ndarray}: not state, reused per step
        for group in groups:
            self.add_param_group(group)

    def __getstate__(self) -> dict:
        """For pickle and copy.deepcopy: ``state`` by parameter position, as ids do not survive a copy (a
        copied optimizer found no state under its new parameters' ids and restarted its momentum and
        moments, silently); scratch arrays are not state."""
        kept = dict(self.__dict__)
        kept["state"] = [self.state.get(p) for p in self._params()]
        kept["_scratch"] = {}
        return kept

    def __setstate__(self, kept: dict) -> None:
        by_position = kept.pop("state")
        self.__dict__.update(kept)
        self.state = defaultdict(dict, {p: state for p, state in zip(self._params(), by_position) if state})

    def add_param_group(self, group: dict) -> None:
        """Add a group ``{"params": [...], <hyperparameter overrides>}`` (PyTorch's: e.g. layers unfrozen
        during fine-tuning); its parameters must not be in another group."""
        if not isinstance(group, dict) or "params" not in group:
            raise TypeError("add_param_group expects a dict with a 'params' entry")
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        group = {**self.defaults, **group}
        if isinstance(group["params"], Tensor):
            group["params"] = [group["params"]]
        unique, in_group = [], set()
        for p in group["params"]:
            if not isinstance(p, Tensor):
                raise TypeError(f"optimizer params must be Tensors, got {type(p).__name__}")
            if not p.is_leaf:
                raise ValueError(f"optimizer got a non-leaf tensor (shape {p.shape}, the result of an op): "
                                 f"optimize the leaves it was computed from")
            if id(p) in in_group:
                continue
            if id(p) in seen:
                raise ValueError(f"a parameter (shape {p.shape}) appears in more than one parameter group")
            in_group.add(id(p))
            unique.append(p)
        group["params"] = unique
        self._check_group(group)
        self.param_groups.append(group)

    def _check_group(self, group: dict) -> None:
        if not group["lr"] >= 0:                   # NaN too: it would turn every weight into NaN
            raise ValueError(f"invalid learning rate {group['lr']}")

    @staticmethod
    def _check_non_negative(group: dict, names) -> None:
        """ValueError naming the first of ``names`` whose value in ``group`` is negative or NaN."""
        for name in names:
            if not group[name] >= 0:
                raise ValueError(f"invalid {name} {group[name]}")

    @property
    def lr(self) -> float:
        """Learning rate of the first group; setting it sets every group's."""
        return self.param_groups[0]["lr"]

    @lr.setter
    def lr(self, value: float) -> None:
        for group in self.param_groups:
            group["lr"] = float(value)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset the gradients of every parameter (None by default, as PyTorch ≥ 2.0; else zeros)."""
        for group in self.param_groups:
            for p in group["params"]:
                g = p._grad
                if set_to_none or g is None:
                    p._grad = None
                elif type(g) is PendingProduct:
                    p._grad = np.zeros(g.shape, dtype=g.dtype)
                else:
                    g.fill(0)

    def step(self) -> None:
        raise NotImplementedError

    def _gradients(self, l2: bool = True, pending: bool = False):
        """(group, p, g) for every parameter with a .grad: g in p's dtype (a .grad set by hand may
        differ), of p's shape, with the L2 term weight_decay · p added (in a scratch array) when ``l2``.
        A pending product is yielded as it is when ``pending`` (its L2 term is then the caller's), else
        materialized into a scratch array. Treat g as read-only: it may be ``.grad`` itself."""
        for group in self.param_groups:
            wd = group.get("weight_decay", 0.0) if l2 else 0.0
            for p in group["params"]:
                g = p._grad
                if g is None:
                    continue
                if type(g) is PendingProduct:
                    if pending:
                        yield group, p, g
                        continue
                    g = g.apply(self._buffer(p, "gradient"), beta=0.0)
                if g.shape != p.data.shape:
                    raise ValueError(f"a parameter of shape {p.data.shape} has a .grad of shape {g.shape}")
                if g.dtype != p.data.dtype:
                    g = g.astype(p.data.dtype)
                if wd:
                    with_l2 = np.multiply(p.data, wd, out=self._buffer(p, "l2"))
                    with_l2 += g
                    g = with_l2
                yield group, p, g

    def _buffer(self, p: Tensor, name: str) -> np.ndarray:
        """Scratch array ``name`` of p's shape and dtype, the same one every step (contents undefined)."""
        buffers = self._scratch.setdefault(id(p), {})
        buf = buffers.get(name)
        if buf is None or buf.shape != p.data.shape or buf.dtype != p.data.dtype:
            buf = buffers[name] = np.empty_like(p.data)
        return buf

    # ---- state dicts: flat {str: ndarray | number}, ready for mdl.save (.npz, no pickle) -----------
    def _params(self) -> list:
        return [p for group in self.param_groups for p in group["params"]]

    def state_dict(self) -> dict:
        """Flat dict: "param_groups.<g>.<hyper>" (numbers; betas as a 2-array; "initial_lr" where a
        scheduler set it, so that one can resume with ``last_epoch``, as PyTorch's),
        "state.<i>.<name>" (ndarray buffers, int "step") with i the parameter's position across groups.
        Buffers are copies."""
        out = {}
        for g, group in enumerate(self.param_groups):
            for key in self.hyper:
                value = group[key]
                out[f"param_groups.{g}.{key}"] = (np.asarray(value, dtype=np.float64)
                                                  if isinstance(value, tuple) else value)
            out[f"param_groups.{g}.size"] = len(group["params"])
            if "initial_lr" in group:       # set by an LR scheduler; resuming one with last_epoch needs it
                out[f"param_groups.{g}.initial_lr"] = group["initial_lr"]
        for i, p in enumerate(self._params()):
            for name, value in self.state.get(p, {}).items():
                out[f"state.{i}.{name}"] = value.copy() if isinstance(value, np.ndarray) else value
        return out

    def load_state_dict(self, state: dict) -> None:
        """Restore hyperparameters and buffers saved by ``state_dict`` (values may be 0-d arrays, as
        ``mdl.load`` returns them). Group count and sizes, and buffer shapes, must match; the
        hyperparameters must pass the constructor's checks (a damaged file's NaN learning rate would turn
        every weight into NaN); everything is checked before anything changes."""
        if not isinstance(state, Mapping):
            raise TypeError(f"optimizer load_state_dict expects a dict, got {type(state).__name__}")
        what = "optimizer state dict:"
        params = self._params()
        saved_groups = {key.split(".")[1] for key in state
                        if key.startswith("param_groups.") and key.endswith(".size")}
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"optimizer state dict has {len(saved_groups)} parameter groups, the optimizer "
                             f"{len(self.param_groups)}")
        hyperparameters = []
        for g, group in enumerate(self.param_groups):
            size_key = f"param_groups.{g}.size"
            if size_key not in state:
                raise KeyError(f"optimizer state dict has no '{size_key}' (saved with fewer groups?)")
            size = state_count(state, size_key, what)
            if size != len(group["params"]):
                raise ValueError(f"optimizer group {g} has {len(group['params'])} parameters, the state "
                                 f"dict has {size}")
            values = {}
            for key, kind in self.hyper.items():
                name = f"param_groups.{g}.{key}"
                if name not in state and key in self.hyper_defaults:
                    values[key] = self.hyper_defaults[key]
                    continue
                if name not in state:
                    raise KeyError(f"optimizer state dict has no '{name}'")
                values[key] = self._hyperparameter(state, name, kind, len(group[key]) if kind is tuple else None)
            if f"param_groups.{g}.initial_lr" in state:
                values["initial_lr"] = state_number(state, f"param_groups.{g}.initial_lr", what)
                if not values["initial_lr"] >= 0:
                    raise ValueError(f"{what} 'param_groups.{g}.initial_lr' must be >= 0, got {values['initial_lr']}")
            try:
                self._check_group({**group, **values})
            except ValueError as error:
                raise ValueError(f"{what} parameter group {g}: {error}") from None
            hyperparameters.append(values)
        new_state = defaultdict(dict)
        for key, value in state.items():
            if not key.startswith("state."):
                continue
            _, index, name = (key.split(".", 2) + ["", ""])[:3]
            if not (index.isascii() and index.isdigit() and name):
                raise ValueError(f"{what} key '{key}' is not 'state.<parameter position>.<buffer name>'")
            index = int(index)
            if index >= len(params):
                raise ValueError(f"optimizer state dict refers to parameter {index}, "
                                 f"the optimizer has {len(params)}")
            p = params[index]
            if name == "step":
                new_state.setdefault(p, {})[name] = state_count(state, key, what)
                continue
            value = np.asarray(value)
            if value.dtype.kind not in "biuf":
                raise ValueError(f"{what} '{key}' holds {value.dtype}, not numbers")
            if value.shape != p.data.shape:
                raise ValueError(f"optimizer state '{key}' has shape {value.shape}, "
                                 f"parameter has shape {p.data.shape}")
            new_state.setdefault(p, {})[name] = value.astype(p.data.dtype, copy=True)
        for group, values in zip(self.param_groups, hyperparameters):
            group.update(values)
        self.state = new_state

    @staticmethod
    def _hyperparameter(state: Mapping, name: str, kind: type, length: int | None):
        """A saved hyperparameter as ``kind`` (float, bool, or a tuple of ``length`` floats), else ValueError."""
        if kind is not tuple:
            number = state_number(state, name, "optimizer state dict:")
            return kind(number)
        value = np.asarray(state[name])
        if value.shape != (length,) or value.dtype.kind not in "biuf":
            raise ValueError(f"optimizer state dict: '{name}' is {value.dtype} of shape {value.shape}, not "
                             f"{length} numbers")
        return tuple(float(v) for v in value)
