"""PyTorch's in-place methods: ``t.add_(x, alpha=a)``, ``sub_``, ``mul_``, ``div_``, ``clamp_``, ``zero_``,
``fill_``, ``copy_`` — what hand-written training loops use (``with mdl.no_grad(): p.add_(p.grad, alpha=-lr)``).

Each changes ``t`` itself (same object, same buffer) and returns it, with the rules of ``t += x``
(``minidl.ops._in_place``): the result cast to t's dtype where NumPy's same-kind rule allows (``fill_``,
``zero_`` and ``copy_`` cast any value, as PyTorch's: an int tensor's ``fill_(2.7)`` holds 2), the write
logged so that a graph that saved those values refuses ``backward()``, a leaf that requires grad refused
while grad mode is on, and a plain tensor taking a gradient-requiring operand joins the graph. One
difference from ``+=``: on a non-leaf in a graph, ``+=`` rebinds the name to an out-of-place result, which a
method call cannot do (``h.add_(b)`` would leave h as it was, silently), so there it raises.
"""
from __future__ import annotations

import numpy as np

from minidl import ops
from minidl.autograd import _grad_mode, note_in_place
from minidl.tensor import Tensor

__all__ = ["add_", "sub_", "mul_", "div_", "clamp_", "zero_", "fill_", "copy_"]


def _refuse_a_graph_node(t: Tensor, name: str, grad_operand: bool = False) -> None:
    if not _grad_mode.enabled:
        return
    if t.requires_grad and t._backward is None:
        raise RuntimeError(f"{name}(): a leaf tensor that requires grad (shape {t.shape}) is being used in an "
                           f"in-place operation; wrap the update in `with mdl.no_grad():`")
    if t.requires_grad:
        raise RuntimeError(f"{name}() on a tensor of shape {t.shape} that is part of a graph: minidl records no "
                           f"in-place change of a graph's tensors; write the result out of place (t = t + x)")
    if grad_operand:
        raise RuntimeError(f"{name}() with an operand that requires grad is not recorded; write it out of place "
                           f"or under `with mdl.no_grad():`")


def _arithmetic(operator_method, name: str, takes_alpha: bool):
    def method(self: Tensor, other, *, alpha=None) -> Tensor:
        _refuse_a_graph_node(self, name)
        if alpha is not None:
            other = other * alpha if isinstance(other, Tensor) else np.multiply(other, alpha)
        if operator_method(self, other) is NotImplemented:
            raise TypeError(f"{name}(): unsupported operand of type {type(other).__name__}")
        return self                     # a non-leaf in a graph was refused above, so `op=` changed self
    method.__name__ = name
    symbol = {"add_": "+", "sub_": "-", "mul_": "*", "div_": "/"}[name]
    method.__doc__ = (f"``t {symbol}= other{' · alpha' if takes_alpha else ''}`` in place (PyTorch's "
                      f"``{name}``); returns t.")
    if not takes_alpha:
        def method_without_alpha(self: Tensor, other) -> Tensor:
            return method(self, other)
        method_without_alpha.__name__, method_without_alpha.__doc__ = name, method.__doc__
        return method_without_alpha
    return method


add_ = _arithmetic(Tensor.__iadd__, "add_", takes_alpha=True)
sub_ = _arithmetic(Tensor.__isub__, "sub_", takes_alpha=True)
mul_ = _arithmetic(Tensor.__imul__, "mul_", takes_alpha=False)
div_ = _arithmetic(Tensor.__itruediv__, "div_", takes_alpha=False)


def clamp_(self: Tensor, min=None, max=None) -> Tensor:
    """``clamp`` in place (PyTorch's ``clamp_``); returns t."""
    _refuse_a_graph_node(self, "clamp_")
    _write(self, ops.clamp(self, min=min, max=max).data, "clamp_()")
    return self


def zero_(self: Tensor) -> Tensor:
    """Every element 0, in place (PyTorch's ``zero_``); returns t."""
    return _assign(self, 0, "zero_")


def fill_(self: Tensor, value) -> Tensor:
    """Every element ``value`` (a number, or anything that broadcasts to t's shape), in place; returns t."""
    return _assign(self, value, "fill_")


def copy_(self: Tensor, src) -> Tensor:
    """t's values replaced by ``src``'s (broadcast to t's shape, cast to t's dtype), in place (PyTorch's
    ``copy_``, e.g. a target network's ``p_target.copy_(p)`` under no_grad); returns t."""
    return _assign(self, src, "copy_")


def _assign(t: Tensor, value, name: str) -> Tensor:
    _refuse_a_graph_node(t, name, isinstance(value, Tensor) and value.requires_grad)
    _write(t, value.data if isinstance(value, Tensor) else np.asarray(value), f"{name}()")
    return t


def _write(t: Tensor, array: np.ndarray, what: str) -> None:
    """t's buffer ← ``array`` (broadcast, cast to t's dtype as PyTorch's fill_/copy_ do: an int tensor's
    ``fill_(2.7)`` is 2, a bool tensor's ``zero_()`` False), logged as an in-place write."""
    buffer = t.data
    try:
        np.copyto(buffer, array, casting="unsafe")
    except ValueError:
        raise ValueError(f"{what}: values of shape {array.shape} do not broadcast to the tensor's shape "
                         f"{buffer.shape}") from None
    note_in_place((buffer,), what)


for _name in __all__:
    setattr(Tensor, _name, globals()[_name])
del _name
