"""``Module`` (parameters, buffers, sub-modules, hooks, state dicts) and ``Parameter``."""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import NamedTuple

import numpy as np

from minidl._core import memory_pool
from minidl.autograd import note_in_place
from minidl.tensor import Tensor, _RemovableHandle

__all__ = ["Module", "Parameter", "IncompatibleKeys"]


class Parameter(Tensor):
    """A leaf Tensor that a Module registers as trainable (requires_grad=True by default)."""

    __slots__ = ()

    def __init__(self, data, requires_grad: bool = True, dtype=None):
        super().__init__(data, requires_grad=requires_grad, dtype=dtype)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()


def parameter_dtype(dtype, device, owner: str) -> np.dtype:
    """The dtype of a layer's parameters from PyTorch's factory arguments ``dtype=``/``device=``: None is
    float32 (PyTorch's default dtype; NumPy would make float64), float32 or float64 otherwise (ValueError);
    ``device`` None or "cpu" (minidl computes on the CPU), anything else a ValueError naming it."""
    if device is not None and str(device).split(":")[0] != "cpu":
        raise ValueError(f"{owner}: minidl computes on the CPU only, got device={device!r}")
    dt = np.dtype(np.float32 if dtype is None else dtype)
    if dt not in (np.float32, np.float64):
        raise ValueError(f"{owner}: parameters are float32 or float64, got dtype={dt}")
    return dt


class IncompatibleKeys(NamedTuple):
    """What ``load_state_dict`` found: model keys absent from the state dict, and the reverse."""

    missing_keys: list
    unexpected_keys: list


def _buffer(name: str, value):
    """A buffer value as a Tensor that never requires grad (ndarrays are wrapped, not copied)."""
    if value is None:
        return None
    if isinstance(value, Tensor):
        return value if not value.requires_grad else value.detach()
    if isinstance(value, (np.ndarray, np.generic)):
        return Tensor(np.asarray(value))
    raise TypeError(f"buffer {name!r} must be an ndarray, a Tensor or None, got {type(value).__name__}")


def _check_name(name, kind: str) -> None:
    """A name for ``register_buffer``/``add_module``/``register_parameter``: a non-empty string without '.'
    (PyTorch's KeyError)."""
    if not isinstance(name, str) or not name or "." in name:
        raise KeyError(f"{kind} name must be a non-empty string without '.', got {name!r}")


_in_train: set = set()      # ids of the modules whose train() is running


_INTERNALS = ("_parameters", "_buffers", "_non_persistent", "_modules", "_forward_hooks", "training")


class Module:
    """Base class of layers and models, as in PyTorch.

    Assigning a ``Parameter`` or a ``Module`` to an attribute registers it; ``parameters()`` walks
    them in registration order, depth first. ``register_buffer`` registers state that is no
    parameter (BatchNorm's running statistics): saved in ``state_dict``, never trained.
    Subclasses implement ``forward``.
    """

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent", set())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_forward_hooks", {})
        object.__setattr__(self, "training", True)

    def __getattr__(self, name):
        """Only reached for a missing attribute: say so, and why where ``super().__init__()`` was skipped
        (else: "object has no attribute '_forward_hooks'" from inside a call)."""
        if name in _INTERNALS and "_parameters" not in self.__dict__:
            raise AttributeError(f"{type(self).__name__}.__init__ must call super().__init__() (it has no "
                                 f"{name!r})")
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"{type(self).__name__}.__init__ must call super().__init__() "
                                 f"before assigning attributes")
        if name in self._buffers and not isinstance(value, (Parameter, Module)):
            value = self._buffers[name] = _buffer(name, value)     # assigning to a buffer replaces it
            object.__setattr__(self, name, value)
            return
        params, modules = self._parameters, self._modules
        if value is not None:               # PyTorch's rule: a slot keeps its kind (else it silently unregisters)
            if name in params and not isinstance(value, Parameter):
                raise TypeError(f"cannot assign {type(value).__name__} as parameter {name!r} of "
                                f"{type(self).__name__} (a Parameter or None expected; to change the values, "
                                f"assign to .{name}.data)")
            if name in modules and not isinstance(value, Module):
                raise TypeError(f"cannot assign {type(value).__name__} as child module {name!r} of "
                                f"{type(self).__name__} (a Module or None expected)")
        if isinstance(value, Parameter) and name in params or isinstance(value, Module) and name in modules:
            (params if name in params else modules)[name] = value      # keeps its place in the order
            object.__setattr__(self, name, value)
            return
        params.pop(name, None)
        modules.pop(name, None)
        self._buffers.pop(name, None)
        self._non_persistent.discard(name)
        if isinstance(value, Parameter):
            params[name] = value
        elif isinstance(value, Module):
            modules[name] = value
        object.__setattr__(self, name, value)

    def __delattr__(self, name):
        self._parameters.pop(name, None)
        self._modules.pop(name, None)
        self._buffers.pop(name, None)
        self._non_persistent.discard(name)
        object.__delattr__(self, name)

    def register_buffer(self, name: str, array, persistent: bool = True) -> None:
        """Register ``array`` (ndarray, Tensor or None) as the buffer ``self.<name>``: a Tensor that
        never requires grad, listed by ``buffers()`` and, when ``persistent``, saved in ``state_dict``
        and restored by ``load_state_dict`` (PyTorch ``register_buffer``)."""
        if "_buffers" not in self.__dict__:
            raise AttributeError(f"{type(self).__name__}.__init__ must call super().__init__() "
                                 f"before registering buffers")
        _check_name(name, "buffer")
        if name in self._parameters or name in self._modules or (
                name in self.__dict__ and name not in self._buffers):
            raise KeyError(f"attribute {name!r} already exists on {type(self).__name__}")
        self._buffers[name] = _buffer(name, array)
        if persistent:
            self._non_persistent.discard(name)
        else:
            self._non_persistent.add(name)
        object.__setattr__(self, name, self._buffers[name])

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} does not implement forward()")

    def __call__(self, *args, **kwargs):
        with memory_pool():         # activations reuse the blocks the last step freed (minidl._core)
            out = self.forward(*args, **kwargs)
            if self._forward_hooks:
                for hook in list(self._forward_hooks.values()):
                    replaced = hook(self, args, out)
                    if replaced is not None:
                        out = replaced
        return out

    def register_forward_hook(self, fn) -> _RemovableHandle:
        """Call ``fn(module, inputs, output)`` after every forward; a non-None return replaces the
        output (as PyTorch). Returns a handle with ``.remove()``."""
        return _RemovableHandle(self._forward_hooks, fn)

    # ---- traversal ----------------------------------------------------------------------------
    def named_modules(self, prefix: str = "", remove_duplicate: bool = True):
        """Yield (name, module) for this module and every descendant, depth first; a module held twice once
        (under each of its names with ``remove_duplicate=False``, PyTorch's)."""
        seen = set()
        stack = [(prefix, self)]
        while stack:
            name, module = stack.pop()
            if id(module) in seen and remove_duplicate:
                continue
            seen.add(id(module))
            yield name, module
            children = [(f"{name}.{k}" if name else k, m) for k, m in module._modules.items()]
            stack.extend(reversed(children))

    def modules(self):
        for _, m in self.named_modules():
            yield m

    def children(self):
        for _, m in self.named_children():
            yield m

    def named_children(self):
        """Yield (name, module) for the direct sub-modules, one registered under two names once (PyTorch's)."""
        seen = set()
        for name, m in self._modules.items():
            if m is not None and id(m) not in seen:
                seen.add(id(m))
                yield name, m

    def add_module(self, name: str, module) -> None:
        """Register ``module`` (a Module or None) as ``self.<name>`` (PyTorch's; names need not be
        identifiers)."""
        _check_name(name, "module")
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"add_module: {type(module).__name__} is not a Module")
        if hasattr(self, name) and name not in self._modules:     # 'forward' would replace the method
            raise KeyError(f"add_module: attribute {name!r} already exists in {type(self).__name__}")
        setattr(self, name, module)

    def register_parameter(self, name: str, param) -> None:
        """Register ``param`` (a Parameter or None) as ``self.<name>`` (PyTorch's)."""
        _check_name(name, "parameter")
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"register_parameter: {type(param).__name__} is not a Parameter")
        setattr(self, name, param)

    def named_parameters(self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True):
        """Yield (dotted name, Parameter) in registration order; a shared Parameter appears once (under
        each of its names with ``remove_duplicate=False``, PyTorch's); ``recurse=False``: this module's own
        only."""
        seen = set()
        modules = self.named_modules(prefix, remove_duplicate) if recurse else [(prefix, self)]
        for mname, module in modules:
            for pname, p in module._parameters.items():
                if p is None or id(p) in seen and remove_duplicate:
                    continue
                seen.add(id(p))
                yield (f"{mname}.{pname}" if mname else pname), p

    def parameters(self, recurse: bool = True):
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def requires_grad_(self, requires_grad: bool = True) -> "Module":
        """Set ``requires_grad`` of every parameter (freeze with False); returns self (PyTorch's)."""
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def named_buffers(self, prefix: str = ""):
        """Yield (dotted name, buffer Tensor) for every buffer that is not None, depth first."""
        for mname, module in self.named_modules(prefix):
            for bname, b in module._buffers.items():
                if b is not None:
                    yield (f"{mname}.{bname}" if mname else bname), b

    def buffers(self):
        for _, b in self.named_buffers():
            yield b

    def apply(self, fn) -> "Module":
        """Call ``fn(module)`` on every sub-module (children first) and then on this one; returns self.
        E.g. ``model.apply(init_weights)`` (PyTorch ``Module.apply``)."""
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    # ---- modes and gradients ----------------------------------------------------------------------
    def train(self, mode: bool = True) -> "Module":
        """Set training mode here and call each child's ``train(mode)`` (PyTorch's), so a child that
        overrides train() (to keep its BatchNorm frozen, say) is obeyed; returns self."""
        if not isinstance(mode, bool):
            raise ValueError(f"train: mode is expected to be a bool, got {type(mode).__name__}")
        if id(self) in _in_train:           # a module inside itself (named_modules allows it): set once
            return self
        _in_train.add(id(self))
        try:
            object.__setattr__(self, "training", mode)
            for child in self.children():
                child.train(mode)
        finally:
            _in_train.discard(id(self))
        return self

    def eval(self) -> "Module":
        return self.train(False)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset every parameter's gradient (to None by default, as PyTorch ≥ 2.0; else zeros)."""
        for p in self.parameters():
            if set_to_none or p.grad is None:
                p.grad = None
            else:
                p.grad.fill(0)

    # ---- state ---------------------------------------------------------------------------------
    def _named_state(self) -> OrderedDict:
        """{dotted name: Tensor} of what ``state_dict`` saves: per module (depth first) its parameters,
        then its persistent buffers, as PyTorch orders them; a Parameter shared by two modules (weight
        tying) under each of its names, and so a module registered twice (``Sequential(lin, act, lin)``:
        "0.weight" and "2.weight"), as PyTorch, so that PyTorch-layout state dicts load."""
        out = OrderedDict()
        stack = [("", self, ())]
        while stack:
            mname, module, ancestors = stack.pop()
            if id(module) in ancestors:         # a module inside itself: its state is already listed
                continue
            inner = ancestors + (id(module),)
            stack.extend(reversed([(f"{mname}.{k}" if mname else k, m, inner)
                                   for k, m in module._modules.items() if m is not None]))
            prefix = f"{mname}." if mname else ""
            for pname, p in module._parameters.items():
                if p is not None:
                    out[prefix + pname] = p
            for bname, b in module._buffers.items():
                if b is not None and bname not in module._non_persistent:
                    out[prefix + bname] = b
        return out

    def state_dict(self) -> dict:
        """{dotted name: copy of its ndarray} for every parameter and persistent buffer."""
        return OrderedDict((name, t.data.copy()) for name, t in self._named_state().items())

    def load_state_dict(self, state: dict, strict: bool = True) -> IncompatibleKeys:
        """Copy arrays into the parameters and buffers in place, checking shapes and dtypes and, when
        ``strict``, keys (KeyError naming them), all before the first copy: a refused state dict changes
        nothing. Returns ``(missing_keys, unexpected_keys)`` as PyTorch."""
        if not isinstance(state, Mapping):
            raise TypeError(f"load_state_dict expects a dict of arrays, got {type(state).__name__}")
        own = self._named_state()
        given = {id(t) for name, t in own.items() if name in state}     # a shared tensor needs one of its names
        missing = [k for k in own if k not in state and id(own[k]) not in given]
        unexpected = [k for k in state if k not in own]
        if strict and (missing or unexpected):
            raise KeyError(f"load_state_dict: missing keys {missing}, unexpected keys {unexpected}")
        copies = []
        for name, t in own.items():
            if name not in state:
                continue
            value = state[name]
            value = value.data if isinstance(value, Tensor) else np.asarray(value)
            if value.shape != t.shape:
                raise ValueError(f"load_state_dict: '{name}' has shape {value.shape} in the state dict "
                                 f"but {t.shape} in the model")
            if not np.can_cast(value.dtype, t.dtype, casting="same_kind"):
                raise TypeError(f"load_state_dict: '{name}' has dtype {value.dtype} in the state dict, which "
                                f"cannot be stored in the model's {t.dtype}")
            if value.dtype.kind in "iu" and t.dtype.kind in "iu" and value.size and (
                    value.min() < np.iinfo(t.dtype).min or value.max() > np.iinfo(t.dtype).max):
                raise ValueError(f"load_state_dict: '{name}' holds {value.dtype} values from {value.min()} to "
                                 f"{value.max()}, beyond the model's {t.dtype} (they would wrap around)")
            copies.append((t, value))
        for t, value in copies:
            if t._update is not None:           # a pending SGD update of values all replaced now: dropped
                t._update.discard(t)
            np.copyto(t._data, value, casting="same_kind")
        note_in_place([t._data for t, _ in copies], "load_state_dict")
        return IncompatibleKeys(missing, unexpected)

    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__}({self.extra_repr()}"]
        for name, m in self._modules.items():
            child = repr(m).replace("\n", "\n  ")
            lines.append(f"  ({name}): {child}")
        return lines[0] + ")" if len(lines) == 1 else "\n".join(lines) + "\n)"
