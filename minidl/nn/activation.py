"""Activation modules: ``Activation(name)`` for any entry of the activation registry, and PyTorch's
names for the classic ones (Sigmoid, Tanh, ReLU, Softsign, LeakyReLU, ELU, GELU, Identity), plus
``Softmax`` and ``LogSoftmax`` (not elementwise, so no registry entry).

A new entry in ``minidl.activations`` is usable at once as ``nn.Activation("name")`` and in
``nn.MLP(activation="name")``; a class here only gives it a PyTorch-style name. LeakyReLU and ELU
with a parameter other than the registry's default carry an entry of their own, derived from the
registry's (same name, the parameter's forward, derivative and moments), so diagnostics read them too.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np

from minidl import activations, ops
from minidl.nn import functional as F
from minidl.nn.module import Module

__all__ = ["Activation", "Sigmoid", "Tanh", "ReLU", "Softsign", "LeakyReLU", "ELU", "GELU", "Identity",
           "Softmax", "LogSoftmax", "make_activation"]


class Activation(Module):
    """z = f(x) elementwise, for ``f`` a name (or entry) of ``minidl.activations``; ``.activation`` is
    the registry entry (formula, derivative, range: what the diagnostics read)."""

    name: str | None = None      # set by the named subclasses below
    #: the attributes a subclass derives its entry from (``_entry``): assigning one derives it again, as
    #: PyTorch's modules read theirs at every call (``m.negative_slope = 0.5`` had kept the old slope)
    entry_parameters: tuple = ()

    def __init__(self, activation=None):
        super().__init__()
        if self.name is not None and activation is not None:
            raise TypeError(f"{type(self).__name__}() takes no activation name (it is {self.name!r})")
        self.activation = activations.get(activation if activation is not None else self.name)

    def forward(self, x):
        return ops.activation(x, self.activation)

    def __setattr__(self, name, value):
        if name not in self.entry_parameters:
            super().__setattr__(name, value)
            return
        missing = object()
        old = self.__dict__.get(name, missing)
        super().__setattr__(name, value)
        try:
            entry = self._entry()
        except ValueError:                  # a value the constructor refuses: the module stays as it was
            if old is not missing:
                super().__setattr__(name, old)
            raise
        object.__setattr__(self, "activation", entry)

    def extra_repr(self) -> str:
        return "" if self.name is not None else repr(self.activation.name)

    def __getstate__(self):
        """Pickled without a derived entry (LeakyReLU's and ELU's own parameter: lambdas), rebuilt on load."""
        state = dict(self.__dict__)
        if hasattr(self, "_entry") and state["activation"] is not activations.REGISTRY.get(self.name):
            del state["activation"]
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        if "activation" not in state:
            object.__setattr__(self, "activation", self._entry())


def _inplace(inplace) -> bool:
    """PyTorch's ``inplace=`` flag, taken so that PyTorch code (``nn.ReLU(inplace=True)``) runs: minidl
    always computes out of place, which gives the same values and gradients (the input is left as it was)."""
    return bool(inplace)


class Sigmoid(Activation):
    """σ(x) = 1/(1+e⁻ˣ), computed by minidl._core."""

    name = "sigmoid"


class Tanh(Activation):
    """tanh x."""

    name = "tanh"


class ReLU(Activation):
    """max(x, 0). ``inplace`` as PyTorch's, computed out of place (``_inplace``)."""

    name = "relu"

    def __init__(self, inplace: bool = False):
        super().__init__()
        self.inplace = _inplace(inplace)

    def extra_repr(self) -> str:
        return "inplace=True" if self.inplace else ""


class Softsign(Activation):
    """x / (1 + |x|) (Glorot & Bengio 2010)."""

    name = "softsign"


class LeakyReLU(Activation):
    """x where x > 0, else negative_slope·x (slope at 0: negative_slope, as PyTorch).

    The default slope 0.01 is the registry's "leaky_relu"; another slope a gets an entry with the
    exact Gaussian moments E[z²] = (1+a²)v/2, E[z] = (1-a)√(v/2π).
    """

    name = "leaky_relu"
    entry_parameters = ("negative_slope",)

    def __init__(self, negative_slope: float = 0.01, inplace: bool = False):
        Module.__init__(self)
        self.negative_slope = float(negative_slope)
        self.inplace = _inplace(inplace)

    def _entry(self) -> activations.Activation:
        a = self.negative_slope
        entry = activations.get(self.name)
        if a != float(entry.derivative(-1.0)):        # the registry's own slope
            entry = dataclasses.replace(
                entry, formula=f"s where s > 0, else {a:g}·s", derivative_formula=f"1 where s > 0, else {a:g}",
                forward=lambda s: np.where(s > 0, s, s * a), backward=lambda g, s, z: np.where(s > 0, g, g * a),
                moments=activations._leaky_moments(a))
        return entry

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}" + (", inplace=True" if self.inplace else "")


class ELU(Activation):
    """x where x > 0, else α(eˣ - 1) (Clevert et al. 2016); slope at 0: α, as PyTorch.

    α = 1 is the registry's "elu"; another α gets an entry derived from it, with the exact Gaussian
    moments for that α (the registry's ``_elu_moments``, which comes with the "elu" entry).
    """

    name = "elu"
    entry_parameters = ("alpha",)

    def __init__(self, alpha: float = 1.0, inplace: bool = False):
        Module.__init__(self)
        self.alpha = float(alpha)
        self.inplace = _inplace(inplace)

    def _entry(self) -> activations.Activation:
        alpha = self.alpha
        entry = activations.get(self.name)
        if alpha != 1.0:
            entry = dataclasses.replace(
                entry, formula=f"s where s > 0, else {alpha:g}·(eˢ - 1)",
                derivative_formula=f"1 where s > 0, else {alpha:g}·eˢ (1 at NaN, as PyTorch)",
                forward=lambda s: np.where(s > 0, s, alpha * np.expm1(np.minimum(s, 0))),
                backward=lambda g, s, z: np.where(s <= 0, g * alpha * np.exp(np.minimum(s, 0)), g),
                slope_at_zero=None, value_range=(-alpha, None), moments=activations._elu_moments(alpha))
        return entry

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}" + (", inplace=True" if self.inplace else "")


class GELU(Activation):
    """x·Φ(x), Φ the standard normal CDF (Hendrycks & Gimpel 2016), exact (erf), as PyTorch's default.

    ``approximate="tanh"``: PyTorch's tanh form ½x(1 + tanh(√(2/π)(x + 0.044715x³))) (Hendrycks & Gimpel,
    Sec. 2), an entry derived from the registry's "gelu" whose moments come from quadrature
    (``_gaussian_moments``: no closed form).
    """

    name = "gelu"
    entry_parameters = ("approximate",)

    def __init__(self, approximate: str = "none"):
        Module.__init__(self)
        self.approximate = approximate

    def _entry(self) -> activations.Activation:
        if self.approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh', got {self.approximate!r}")
        entry = activations.get(self.name)
        if self.approximate == "tanh":
            entry = dataclasses.replace(
                entry, formula="½s(1 + tanh(√(2/π)(s + 0.044715s³)))",
                derivative_formula="½(1 + t) + ½s(1 - t²)·√(2/π)(1 + 0.134145s²), t the tanh",
                forward=_gelu_tanh, backward=_gelu_tanh_backward,
                value_range=(-0.171, None),          # the minimum is -0.17004 at s = -0.7525
                moments=_gaussian_moments(_gelu_tanh, _gelu_tanh_backward))
        return entry

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"


_GELU_K = math.sqrt(2 / math.pi)


def _gelu_tanh_parts(s):
    """(c, t): s clipped to ±10, where the tanh is ±1 to the last bit in float64 (so s³ never overflows),
    and t = tanh(√(2/π)(c + 0.044715c³))."""
    c = np.clip(s, -10, 10)
    return c, np.tanh(_GELU_K * (c + 0.044715 * c * c * c))


def _gelu_tanh(s):
    return 0.5 * s * (1 + _gelu_tanh_parts(s)[1])


def _gelu_tanh_backward(g, s, z):
    c, t = _gelu_tanh_parts(s)
    return g * (0.5 * (1 + t) + 0.5 * c * (1 - t * t) * _GELU_K * (1 + 0.134145 * c * c))


def _gaussian_moments(forward, backward, scales=(1.0, 3.0, 10.0)):
    """(E[z²], Var z, E[f'(s)²]) for s ~ N(0, v), by Gauss–Legendre quadrature (32 nodes) on pieces of
    [-13σ, 13σ] (beyond it the density is below 1e-37) cut at 0, ±σ, ±2σ, ±4σ, ±8σ and at ±``scales``,
    where f itself bends: each piece then holds a smooth, well-resolved integrand for any v."""
    points, weights = np.polynomial.legendre.leggauss(32)

    def moments(v):
        sigma = math.sqrt(v)
        cuts = [k * sigma for k in (0, 1, 2, 4, 8, 13)] + [b for b in scales if b < 13 * sigma]
        edges = np.unique(np.concatenate([cuts, np.negative(cuts)]))
        half, mid = np.diff(edges)[:, None] / 2, (edges[1:] + edges[:-1])[:, None] / 2
        s = (mid + half * points).ravel()
        w = (half * weights).ravel() * np.exp(-s * s / (2 * v)) / math.sqrt(2 * math.pi * v)
        z = forward(s)
        slope = backward(np.ones_like(s), s, z)
        second, mean = float(w @ (z * z)), float(w @ z)
        return second, second - mean * mean, float(w @ (slope * slope))
    return moments


class Softmax(Module):
    """softmax along ``axis`` (``dim`` is PyTorch's name for it): e^{xᵢ - m} / Σⱼ e^{xⱼ - m}."""

    def __init__(self, axis: int = -1, dim: int | None = None):
        super().__init__()
        self.axis = F._axis(axis, dim)

    @property
    def dim(self) -> int:
        """PyTorch's name for ``axis`` (``m.dim = 0`` sets it)."""
        return self.axis

    @dim.setter
    def dim(self, value: int) -> None:
        self.axis = value

    def forward(self, x):
        return F.softmax(x, axis=self.axis)

    def extra_repr(self) -> str:
        return f"axis={self.axis}"


class LogSoftmax(Softmax):
    """log softmax along ``axis`` (``dim``): x - m - log Σⱼ e^{xⱼ - m}, stable; before ``NLLLoss`` it gives
    the cross-entropy (PyTorch ``nn.LogSoftmax``)."""

    def forward(self, x):
        return F.log_softmax(x, axis=self.axis)


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
