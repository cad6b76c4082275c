"""``Sequential``, ``ModuleList`` and the deep ``MLP`` the Glorot & Bengio experiments build."""
from __future__ import annotations

import numpy as np

from minidl.nn.activation import make_activation
from minidl.nn.linear import Linear
from minidl.nn.module import Module

__all__ = ["Sequential", "ModuleList", "MLP"]


def _position(i: int, n: int, container: str) -> int:
    """``i`` as a position in [0, n), negative counting from the end as in a list; IndexError naming the
    ``container``."""
    if not -n <= i < n:
        raise IndexError(f"index {i} is out of range for a {container} of length {n}")
    return i % n


def _renumber(container: Module, modules) -> None:
    """Hold ``modules`` under the names "0", "1", ... (after a deletion or an insertion, as PyTorch's)."""
    for name in list(container._modules):
        delattr(container, name)
    for i, module in enumerate(modules):
        container.add_module(str(i), module)


class _ModuleSequence(Module):
    """What Sequential and ModuleList share: length, iteration, and removal by position, after which the
    modules are numbered "0", "1", ... again, as PyTorch's. ``_kind`` names the container in errors."""

    _kind = "container"

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def __delitem__(self, i) -> None:
        """Remove the i-th module (or a slice's); the others are numbered "0", "1", ... again."""
        modules = list(self._modules.values())
        del modules[i if isinstance(i, slice) else _position(i, len(modules), self._kind)]
        _renumber(self, modules)

    def pop(self, i) -> Module:
        """Remove the i-th module and return it (``del``'s renumbering)."""
        module = self[i]
        del self[i]
        return module


class Sequential(_ModuleSequence):
    """Applies its modules in order; they are registered as "0", "1", ... (parameter names "0.weight"), or
    under the keys of one dict given instead (``Sequential(OrderedDict(fc=..., act=...))``, PyTorch's)."""

    _kind = "Sequential"

    def __init__(self, *modules: Module):
        super().__init__()
        named = modules[0].items() if len(modules) == 1 and isinstance(modules[0], dict) else \
            ((str(i), m) for i, m in enumerate(modules))
        for name, m in named:
            if not isinstance(m, Module):
                raise TypeError(f"Sequential expects Modules, {name!r} is a {type(m).__name__}")
            self.add_module(name, m)

    def forward(self, x):
        for m in self._modules.values():
            x = m(x)
        return x

    def __getitem__(self, i):
        """The i-th module, or for a slice a Sequential of those modules under their names here (shared, as
        PyTorch's: ``model[:-1](x)`` runs all but the last, ``model[2:].state_dict()`` has "2.weight")."""
        if isinstance(i, slice):
            return Sequential(dict(list(self._modules.items())[i]))
        return list(self._modules.values())[i]

    def append(self, module: Module) -> "Sequential":
        """Add ``module`` at the end (as "<len>", PyTorch's; refused where a module of a slice or a dict
        holds that name: it would be replaced, not added); returns self."""
        self._check(module)
        name = str(len(self))
        if name in self._modules:
            raise ValueError(f"Sequential.append: the name {name!r} is taken by {self._modules[name]!r}; add the "
                             f"module under a name of its own with add_module")
        self.add_module(name, module)
        return self

    def __setitem__(self, i: int, module: Module) -> None:
        """Replace the i-th module, under its name (PyTorch's fine-tuning idiom ``model[-1] = nn.Linear(...)``)."""
        names = list(self._modules)
        setattr(self, names[_position(i, len(names), "Sequential")], self._check(module))

    def insert(self, index: int, module: Module) -> "Sequential":
        """Insert ``module`` before position ``index``; the modules are numbered "0", "1", ... again."""
        modules = list(self._modules.values())
        modules.insert(index, self._check(module))
        _renumber(self, modules)
        return self

    def extend(self, modules) -> "Sequential":
        """``append`` each of ``modules``; returns self."""
        for module in modules:
            self.append(module)
        return self

    def __add__(self, other: "Sequential") -> "Sequential":
        """A new Sequential of this one's modules, then ``other``'s (shared, numbered "0", "1", ...)."""
        if not isinstance(other, Sequential):
            return NotImplemented
        return Sequential(*self, *other)

    @staticmethod
    def _check(module) -> Module:
        if not isinstance(module, Module):
            raise TypeError(f"Sequential expects Modules, got a {type(module).__name__}")
        return module


class ModuleList(_ModuleSequence):
    """A list of Modules, registered as "0", "1", ... so that their parameters belong to the owner
    (a plain Python list would hide them). It has no forward: the owner decides how to call them."""

    _kind = "ModuleList"

    def __init__(self, modules=()):
        super().__init__()
        self.extend(modules)

    @staticmethod
    def _check(module, where) -> "Module":
        if not isinstance(module, Module):
            raise TypeError(f"ModuleList holds Modules, {where} is a {type(module).__name__}")
        return module

    def __getitem__(self, i):
        items = list(self._modules.values())
        if isinstance(i, slice):
            return ModuleList(items[i])
        return items[_position(i, len(items), "ModuleList")]

    def __setitem__(self, i: int, module: Module) -> None:
        setattr(self, str(_position(i, len(self), "ModuleList")), self._check(module, f"item {i}"))

    def append(self, module: Module) -> "ModuleList":
        setattr(self, str(len(self)), self._check(module, "the appended value"))
        return self

    def extend(self, modules) -> "ModuleList":
        for i, m in enumerate(modules):
            self._check(m, f"item {i}")
            setattr(self, str(len(self)), m)
        return self

    def insert(self, index: int, module: Module) -> None:
        items = list(self._modules.values())
        items.insert(index, self._check(module, "the inserted value"))
        _renumber(self, items)

    def __iadd__(self, modules) -> "ModuleList":
        return self.extend(modules)

    def __add__(self, other) -> "ModuleList":
        """A new ModuleList of this one's modules, then ``other``'s (shared)."""
        return ModuleList([*self, *other])


class MLP(Sequential):
    """Linear → activation → … → Linear, with no activation after the last Linear (logits out).

    ``MLP([784, 1000, 1000, 10])`` has 3 Linear layers and 2 activations. The layers are in
    ``self.linears`` and the activation modules in ``self.activations`` (hidden layer i is
    ``activations[i](linears[i](...))``); the whole stack is the Sequential itself, and both lists are
    read from it (a layer replaced by ``model[i] = ...`` is in them).

    Args:
        sizes: layer widths, input first, at least two.
        activation: a name of ``minidl.activations`` ("sigmoid", "tanh", ...), or a Module class/factory.
        init: a scheme name of ``minidl.init`` (``SCHEMES`` or "normal_<std>") or callable, for every Linear.
        bias, dtype: passed to each Linear.
        generator: numpy Generator for the weight draws (default: ``minidl.random.generator()``).
    """

    def __init__(self, sizes, activation="sigmoid", init="xavier_uniform", bias: bool = True,
                 dtype=np.float32, generator=None):
        sizes = [int(s) for s in sizes]
        if len(sizes) < 2:
            raise ValueError(f"MLP needs at least an input and an output size, got {sizes}")
        stack = []
        for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            stack.append(Linear(n_in, n_out, bias=bias, init=init, dtype=dtype, generator=generator))
            if i < len(sizes) - 2:
                stack.append(make_activation(activation))
        super().__init__(*stack)
        self.sizes = sizes

    @property
    def linears(self) -> list:
        return [m for m in self if isinstance(m, Linear)]

    @property
    def activations(self) -> list:
        return [m for m in self if not isinstance(m, Linear)]
