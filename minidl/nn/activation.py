"""Activation modules: ``Activation(name)`` for any entry of the activation registry, and PyTorch's
names for the classic ones (Sigmoid, Tanh, ReLU, Softsign, Identity).

A new entry in ``minidl.activations`` is usable at once as ``nn.Activation("name")`` and in
``nn.MLP(activation="name")``; a class here only gives it a PyTorch-style name.
"""
from __future__ import annotations

from minidl import activations, ops
from minidl.nn.module import Module

__all__ = ["Activation", "Sigmoid", "Tanh", "ReLU", "Softsign", "Identity", "make_activation"]


class Activation(Module):
    """z = f(x) elementwise, for ``f`` a name (or entry) of ``minidl.activations``; ``.activation`` is
    the registry entry (formula, derivative, range: what the diagnostics read)."""

    name: str | None = None      # set by the named subclasses below

    def __init__(self, activation=None):
        super().__init__()
        if self.name is not None and activation is not None:
            raise TypeError(f"{type(self).__name__}() takes no activation name (it is {self.name!r})")
        self.activation = activations.get(activation if activation is not None else self.name)

    def forward(self, x):
        return ops.activation(x, self.activation)

    def extra_repr(self) -> str:
        return "" if self.name is not None else repr(self.activation.name)


class Sigmoid(Activation):
    """σ(x) = 1/(1+e⁻ˣ), computed by minidl._core."""

    name = "sigmoid"


class Tanh(Activation):
    """tanh x."""

    name = "tanh"


class ReLU(Activation):
    """max(x, 0)."""

    name = "relu"


class Softsign(Activation):
    """x / (1 + |x|) (Glorot & Bengio 2010)."""

    name = "softsign"


class Identity(Activation):
    """Returns its input unchanged (the registry's "identity")."""

    name = "identity"

    def __init__(self, *args, **kwargs):     # PyTorch's Identity ignores its arguments
        super().__init__(None)

    def forward(self, x):
        return x


def make_activation(activation) -> Module:
    """A module for ``activation``: a registry name (the named class where there is one), a Module class,
    or a factory returning a Module."""
    if isinstance(activation, (str, activations.Activation)):
        entry = activations.get(activation)
        named = {cls.name: cls for cls in Activation.__subclasses__()}
        return named[entry.name]() if entry.name in named else Activation(entry)
    if isinstance(activation, type) and issubclass(activation, Module):
        return activation()
    if callable(activation):
        made = activation()
        if isinstance(made, Module):
            return made
    raise TypeError(f"activation must be a name of minidl.activations, a Module class or a factory returning "
                    f"a Module, got {activation!r}")
