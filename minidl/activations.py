"""The activation registry: every fact minidl knows about a hidden-unit nonlinearity, in one table.

Each entry gives, for its name:
    forward(s) -> z          f(s) on a float ndarray (same dtype), stable for any input
    backward(g, s, z)        g·f'(s), the local chain rule (fused where a kernel exists)
    value_range              (low, high) bounds of f; None where f is unbounded on that side
    slope_at_zero            f'(0), the slope of the linear regime; None where f has a kink at 0
    moments(v)               (E[z²], Var(z), E[f'(s)²]) for zero-mean s of variance v (the variance
                             theory of Glorot & Bengio 2010, Sec. 4.2.1; He et al. 2015, Sec. 2.2)
    backward_reads           which of "s" and "z" backward reads (both unless given): changing the other
                             in place after the forward pass does not stop backward, as in PyTorch
    keeps_integers           f maps integers to integers and an integer tensor keeps its dtype (ReLU, as
                             PyTorch); else integers are computed in float32
Everything that names an activation reads this table: the tensor op (``minidl.ops.activation``), the
``nn`` modules and ``nn.MLP(activation=...)``, the diagnostics (Jacobian, variance theory, probe), the
study and both CLIs. Adding an activation is adding one ``register(...)`` below.

Moments. Linear regime (tanh, softsign, identity: f(s) ≈ s; sigmoid: f(s) ≈ 1/2 + s/4) — the regime
the Xavier derivation assumes. Exact for s ~ N(0, v) for the piecewise-linear units: ReLU gives
E[z²] = v/2, E[z] = √(v/2π); a leaky ReLU of slope a gives E[z²] = (1+a²)v/2, E[z] = (1-a)√(v/2π).
Exact closed forms for ELU and GELU too (derivations at ``_elu_moments`` and ``_gelu_moments``).
This module depends on NumPy and the compiled core only.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from minidl import _core

__all__ = ["Activation", "register", "get", "names", "passed_where", "REGISTRY"]


@dataclass(frozen=True)
class Activation:
    """One nonlinearity and its facts (see the module docstring for each field)."""

    name: str
    formula: str
    derivative_formula: str
    source: str
    forward: Callable[[np.ndarray], np.ndarray]
    backward: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
    value_range: tuple
    slope_at_zero: float | None
    moments: Callable[[float], tuple]
    backward_reads: tuple = ("s", "z")
    keeps_integers: bool = False

    def derivative(self, s) -> np.ndarray:
        """f'(s) in float64 (for the layer Jacobian diag(f'(s)) Wᵀ)."""
        s = np.asarray(s, dtype=np.float64)
        return self.backward(np.ones_like(s), s, self.forward(s))

    def histogram_range(self, arrays) -> tuple[float, float]:
        """Histogram bounds for activation values: ``value_range``, an open side taken from the
        0.1st / 99.9th percentile of ``arrays`` (and widened to a non-empty interval)."""
        low, high = self.value_range
        if low is None:
            low = min(float(np.percentile(a, 0.1)) for a in arrays)
        if high is None:
            high = max(float(np.percentile(a, 99.9)) for a in arrays)
        if not high > low:
            high = low + 1.0
        return float(low), float(high)

    def describe(self) -> str:
        """One line for help texts: 'tanh: tanh s'."""
        return f"{self.name}: {self.formula}"

    def __reduce__(self):
        """A registered entry pickles (and deep-copies) as its name, so a model that holds it pickles too
        (its functions are lambdas); another entry as its fields."""
        if REGISTRY.get(self.name) is self:
            return get, (self.name,)
        return super().__reduce__()


REGISTRY: dict[str, Activation] = {}
_ALIASES = {"linear": "identity"}


def register(activation: Activation) -> Activation:
    """Add an activation to the registry (its name must be new)."""
    if activation.name in REGISTRY:
        raise ValueError(f"activation {activation.name!r} is already registered")
    REGISTRY[activation.name] = activation
    return activation


def names() -> tuple[str, ...]:
    """Registered names, in registration order."""
    return tuple(REGISTRY)


def get(name) -> Activation:
    """The registry entry for ``name`` (case-insensitive; an ``Activation`` is returned as is)."""
    if isinstance(name, Activation):
        return name
    if isinstance(name, str):
        key = name.strip().lower()
        key = _ALIASES.get(key, key)
        if key in REGISTRY:
            return REGISTRY[key]
    raise ValueError(f"unknown activation {name!r}; choose one of {', '.join(REGISTRY)}")


# ---- the entries ------------------------------------------------------------------------------
def _sigmoid_forward(s):
    return _core.sigmoid_forward(s)      # looked up per call: tests and `bench --profile` wrap the kernels


def _sigmoid_backward(g, s, z):
    return _core.sigmoid_backward(z, g)


def _linear_regime(slope: float, offset_square: float):
    """Moments of f(s) ≈ offset + slope·s:  E[z²] = offset² + slope²v, Var z = slope²v, E[f'²] = slope²."""
    k = slope * slope
    return lambda v: (offset_square + k * v, k * v, k)


def _leaky_moments(a: float):
    """Exact moments of max(s, a·s) for s ~ N(0, v) (a = 0: ReLU)."""
    def moments(v):
        second = (1 + a * a) * v / 2
        mean = (1 - a) * math.sqrt(v / (2 * math.pi))
        return second, second - mean * mean, (1 + a * a) / 2
    return moments


register(Activation(
    "sigmoid", "σ(s) = 1/(1+e⁻ˢ)", "σ(s)(1-σ(s)) = z(1-z)", "logistic unit; Glorot & Bengio 2010, Sec. 3.1",
    forward=_sigmoid_forward, backward=_sigmoid_backward,
    value_range=(0.0, 1.0), slope_at_zero=0.25, moments=_linear_regime(0.25, 0.25), backward_reads=("z",)))

register(Activation(
    "tanh", "tanh s", "1 - tanh² s = 1 - z²", "Glorot & Bengio 2010, Sec. 3.2",
    forward=np.tanh, backward=lambda g, s, z: g * (1 - z * z), backward_reads=("z",),
    value_range=(-1.0, 1.0), slope_at_zero=1.0, moments=_linear_regime(1.0, 0.0)))

register(Activation(
    "softsign", "s/(1+|s|)", "1/(1+|s|)²", "Bergstra et al. 2009; Glorot & Bengio 2010, Sec. 3.3",
    forward=lambda s: s / (1 + np.abs(s)), backward=lambda g, s, z: g / np.square(1 + np.abs(s)),
    value_range=(-1.0, 1.0), slope_at_zero=1.0, moments=_linear_regime(1.0, 0.0), backward_reads=("s",)))

def passed_where(inside: np.ndarray, g: np.ndarray) -> np.ndarray:
    """g where ``inside``, else 0: the gradient through a cut (ReLU, clamp). 0 even where g is infinite or
    NaN, as PyTorch selects (g·0 would be NaN there: ``sqrt(relu(x))`` sends inf back where relu gave 0).
    Computed as g·inside, selecting again only when that made a NaN (np.where over a random mask took 7x
    as long: 1.8 ms against 0.25 for 256 x 1000 float32)."""
    with np.errstate(invalid="ignore"):
        out = g * inside
    if np.isnan(out).any():
        out = np.where(inside, g, 0).astype(out.dtype, copy=False)
    return out


register(Activation(
    "relu", "max(s, 0)", "1 where s > 0, else 0 (0 at s = 0, and 1 at NaN, as PyTorch)",
    "Nair & Hinton 2010; He et al. 2015",
    forward=lambda s: np.maximum(s, 0), backward=lambda g, s, z: passed_where(~(z <= 0), g),  # z > 0 iff s > 0
    value_range=(0.0, None), slope_at_zero=None, moments=_leaky_moments(0.0), backward_reads=("z",),
    keeps_integers=True))                       # reads z, as PyTorch saves relu's result: s may change after

_LEAK = 0.01
register(Activation(
    "leaky_relu", f"max(s, {_LEAK}·s)", f"1 where s > 0, else {_LEAK}", "Maas et al. 2013 (PyTorch's default slope)",
    forward=lambda s: np.where(s > 0, s, s * _LEAK), backward=lambda g, s, z: np.where(s > 0, g, g * _LEAK),
    value_range=(None, None), slope_at_zero=None, moments=_leaky_moments(_LEAK), backward_reads=("s",)))

register(Activation(
    "identity", "s", "1", "no nonlinearity (a deep linear net)",
    forward=lambda s: s, backward=lambda g, s, z: g, backward_reads=(),
    value_range=(None, None), slope_at_zero=1.0, moments=_linear_regime(1.0, 0.0)))


# ---- ELU and GELU: the Gaussian integrals behind their moments ---------------------------------------
def _erfcx(x: float) -> float:
    """e^{x²}·erfc(x) for x ≥ 0 without overflow (asymptotic series past 25: relative error < 1e-10)."""
    if x < 25.0:
        return math.exp(x * x) * math.erfc(x)
    y = 1.0 / (x * x)
    return (1.0 - y / 2 + 3 * y * y / 4 - 15 * y ** 3 / 8) / (x * math.sqrt(math.pi))


def _elu_moments(alpha: float):
    """Exact moments of ELU_α(s) = s (s > 0), α(eˢ - 1) (s ≤ 0) for s ~ N(0, v), σ = √v.

    With E[e^{ts}; s < 0] = e^{t²v/2}·Φ(-tσ) = erfcx(tσ/√2)/2 (complete the square):
    E[z] = σ/√(2π) + α(E[eˢ; s<0] - 1/2),  E[z²] = v/2 + α²(E[e²ˢ; s<0] - 2E[eˢ; s<0] + 1/2),
    E[f'(s)²] = 1/2 + α²·E[e²ˢ; s<0].
    """
    def moments(v):
        sigma = math.sqrt(v)
        e1, e2 = _erfcx(sigma / math.sqrt(2)) / 2, _erfcx(math.sqrt(2) * sigma) / 2
        mean = sigma / math.sqrt(2 * math.pi) + alpha * (e1 - 0.5)
        second = v / 2 + alpha * alpha * (e2 - 2 * e1 + 0.5)
        return second, second - mean * mean, 0.5 + alpha * alpha * e2
    return moments


def _gelu_moments(v: float) -> tuple:
    """Exact moments of GELU(s) = s·Φ(s) for s ~ N(0, v).

    Stein's lemma E[s·h(s)] = v·E[h'(s)], Sheppard's E[Φ(s)²] = 1/4 + arcsin(v/(1+v))/(2π), and products
    of Gaussian densities give E[z] = v/√(2π(1+v)), E[sΦφ] = v/(2π(1+v)√(1+2v)), E[s²φ²] = v/(2π(1+2v)^{3/2}),
    so E[z²] = v(E[Φ²] + 2E[sΦφ]) and E[f'²] = E[(Φ + sφ)²] = E[Φ²] + 2E[sΦφ] + E[s²φ²].
    """
    cdf_square = 0.25 + math.asin(v / (1 + v)) / (2 * math.pi)
    cross = v / (2 * math.pi * (1 + v) * math.sqrt(1 + 2 * v))
    second = v * (cdf_square + 2 * cross)
    mean = v / math.sqrt(2 * math.pi * (1 + v))
    return second, second - mean * mean, cdf_square + 2 * cross + v / (2 * math.pi * (1 + 2 * v) ** 1.5)


def _normal_cdf(s: np.ndarray) -> np.ndarray:
    """Φ(s) elementwise (minidl._core.normal_cdf: libm's erfc in double precision, as Python's math.erfc)."""
    return _core.normal_cdf(s)


def _gelu_backward(g, s, z):
    density = np.exp(-0.5 * s * s) / math.sqrt(2 * math.pi)
    return g * (_normal_cdf(s) + s * density)


def _elu_forward(s):
    return np.where(s > 0, s, np.expm1(np.minimum(s, 0)))


register(Activation(
    "elu", "s where s > 0, else eˢ - 1 (α = 1)", "1 where s > 0, else eˢ (1 at NaN, as PyTorch)",
    "Clevert, Unterthiner & Hochreiter 2016 (ICLR), PyTorch's default α = 1",
    forward=_elu_forward, backward=lambda g, s, z: g * np.exp(np.fmin(s, 0)),
    value_range=(-1.0, None), slope_at_zero=1.0, moments=_elu_moments(1.0), backward_reads=("s",)))

register(Activation(
    "gelu", "s·Φ(s), Φ the standard normal CDF (exact, PyTorch's default)", "Φ(s) + s·φ(s)",
    "Hendrycks & Gimpel 2016, Gaussian Error Linear Units",
    forward=lambda s: s * _normal_cdf(s), backward=_gelu_backward,
    value_range=(-0.17, None),          # the minimum is -0.16997 at s = -0.7518
    slope_at_zero=0.5, moments=_gelu_moments, backward_reads=("s",)))
