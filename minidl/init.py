"""Weight initializers, each filling a Tensor in place and returning it.

Weights are laid out (fan_in, fan_out) — ``nn.Linear.weight`` is (in_features, out_features) — so for a
2-D shape fan_in = shape[0], fan_out = shape[1]; for more dims (Keras' kernel layout
(..., in, out)) both are multiplied by the receptive field prod(shape[:-2]).
Formulas and sources: Glorot & Bengio (2010) "Understanding the difficulty of training deep
feedforward neural networks"; LeCun et al. (1998) "Efficient BackProp"; He et al. (2015) "Delving
Deep into Rectifiers"; Saxe, McClelland & Ganguli (2014) "Exact solutions to the nonlinear dynamics of
learning in deep linear neural networks" (orthogonal); PyTorch ``torch/nn/init.py`` (gains); Caffe
``filler.hpp``.

Randomness: every initializer takes ``generator=`` (a ``numpy.random.Generator``); by default it
draws from ``minidl.random.generator()``, which ``minidl.manual_seed`` reseeds.

Scheme names: the registry ``SCHEMES`` at the end of this file gives each scheme's filler, weight
variance Var(W)(fan_in, fan_out), formula, label and source; ``get(name)`` also parses ``normal_<std>``
(any fixed Gaussian). ``nn.Linear(init=...)``, the study and both CLIs accept exactly these names.
"""
from __future__ import annotations

import functools
import math
import numbers
import re
import warnings
from dataclasses import dataclass
from typing import Callable

import numpy as np

from minidl import random as _random
from minidl.autograd import note_in_place
from minidl.tensor import Tensor

__all__ = ["calculate_gain", "fan_in_and_fan_out", "uniform_", "normal_", "trunc_normal_", "zeros_", "ones_",
           "constant_", "eye_", "xavier_uniform_", "xavier_normal_", "standard_", "lecun_normal_", "lecun_uniform_",
           "kaiming_uniform_", "kaiming_normal_", "orthogonal_", "Scheme", "SCHEMES", "FIXED_NORMAL", "get",
           "names"]


def _array(t) -> np.ndarray:
    if isinstance(t, Tensor):
        return t.data
    if isinstance(t, np.ndarray):
        return t
    raise TypeError(f"initializers fill a Tensor (or ndarray) in place, got {type(t).__name__}")


def _logs_its_write(fill):
    """An initializer that also logs its write (``minidl.autograd.note_in_place``), as every in-place change
    of a tensor's values is: a graph that saved the old values then refuses ``backward()`` (PyTorch's
    version counter) instead of computing gradients from the new ones."""
    @functools.wraps(fill)
    def logged(t, *args, **kwargs):
        result = fill(t, *args, **kwargs)
        note_in_place((_array(t),), f"init.{fill.__name__}")
        return result
    return logged


def _rng(generator) -> np.random.Generator:
    if generator is None:
        return _random.generator()
    if not isinstance(generator, np.random.Generator):
        raise TypeError(f"generator must be a numpy.random.Generator, got {type(generator).__name__}")
    return generator


def calculate_gain(nonlinearity: str, param=None) -> float:
    """The recommended gain for a nonlinearity (PyTorch's table).

    linear/identity/conv: 1; sigmoid: 1; tanh: 5/3; relu: √2; leaky_relu: √(2/(1+slope²)) with
    slope = param (default 0.01); selu: 3/4. Unknown names raise ValueError.
    """
    linear_fns = ("linear", "identity", "conv1d", "conv2d", "conv3d", "conv_transpose1d",
                  "conv_transpose2d", "conv_transpose3d")
    if nonlinearity in linear_fns or nonlinearity == "sigmoid":
        return 1
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            slope = 0.01
        elif isinstance(param, (int, float)) and not isinstance(param, bool):
            slope = param
        else:
            raise ValueError(f"negative_slope {param!r} is not a valid number")
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"unsupported nonlinearity {nonlinearity!r}")


def fan_in_and_fan_out(shape) -> tuple:
    """(fan_in, fan_out) of a weight shape laid out (..., in, out); < 2 dims raise ValueError."""
    shape = tuple(shape.shape if isinstance(shape, (Tensor, np.ndarray)) else shape)
    if len(shape) < 2:
        raise ValueError(f"fan in and fan out need a tensor with at least 2 dimensions, got shape {shape}")
    receptive = 1
    for n in shape[:-2]:
        receptive *= n
    return shape[-2] * receptive, shape[-1] * receptive


def _fan(shape, mode: str) -> float:
    fan_in, fan_out = fan_in_and_fan_out(shape)
    if mode == "fan_in":
        return fan_in
    if mode == "fan_out":
        return fan_out
    if mode == "fan_avg":
        return (fan_in + fan_out) / 2
    raise ValueError(f"mode must be 'fan_in', 'fan_out' or 'fan_avg', got {mode!r}")


def _float_array(t) -> np.ndarray:
    """The array a random initializer fills: floating point only (an integer array would silently
    keep the draws' truncations, mostly zeros)."""
    a = _array(t)
    if a.dtype.kind != "f":
        raise TypeError(f"random initializers fill floating-point tensors, got dtype {a.dtype} "
                        f"(shape {a.shape})")
    return a


def _empty(t) -> bool:
    """True (with PyTorch's warning) for a zero-element tensor: nothing to fill, and no fan to divide by."""
    if _array(t).size == 0:
        # 4 = the caller of the initializer (here < initializer < its _logs_its_write wrapper < caller)
        warnings.warn("Initializing zero-element tensors is a no-op", stacklevel=4)
        return True
    return False


def _check_uniform(low, high, what: str) -> None:
    """PyTorch's rule for U[low, high): finite bounds, low <= high. NumPy would draw from U(high, low] for
    low > high and answer NaN or inf with an OverflowError about "high - low"."""
    if not (math.isfinite(low) and math.isfinite(high) and low <= high):
        raise ValueError(f"{what}: U[a, b) needs finite a <= b, got a={low}, b={high}")


def _check_std(std, what: str) -> None:
    """PyTorch's rule for N(mean, std²): std >= 0 (a NaN std would fill NaN; NumPy says only "scale < 0")."""
    if not std >= 0:
        raise ValueError(f"{what}: std must be >= 0, got {std}")


def _fill_uniform(t, bound: float, generator, what: str):
    """U[-bound, bound] for a bound computed from a gain or slope (``what`` names them for the error)."""
    a = _float_array(t)
    if not (math.isfinite(bound) and bound >= 0):
        raise ValueError(f"{what}: the bound of U[-bound, bound] must be finite and >= 0, got {bound}")
    a[...] = _rng(generator).uniform(-bound, bound, size=a.shape)
    return t


def _fill_normal(t, std: float, generator, what: str, mean: float = 0.0):
    """N(mean, std²); ``what`` names the initializer and its arguments for the error."""
    a = _float_array(t)
    _check_std(std, what)
    a[...] = _rng(generator).normal(mean, std, size=a.shape)
    return t


@_logs_its_write
def uniform_(t, a: float = 0.0, b: float = 1.0, generator=None):
    """Fill with U[a, b); a and b finite, a <= b (ValueError otherwise, as PyTorch refuses them)."""
    arr = _float_array(t)
    _check_uniform(a, b, "uniform_")
    arr[...] = _rng(generator).uniform(a, b, size=arr.shape)
    if a < b:   # a float64 draw just below b can round to b in float32: keep b out, as PyTorch does
        top = arr.dtype.type(b)
        if top >= b:
            top = np.nextafter(top, arr.dtype.type(a))
        np.minimum(arr, top, out=arr)
    return t


@_logs_its_write
def normal_(t, mean: float = 0.0, std: float = 1.0, generator=None):
    """Fill with N(mean, std²); std >= 0 (ValueError otherwise, as PyTorch refuses it)."""
    return _fill_normal(t, std, generator, "normal_", mean)


def _normal_mass(mean: float, std: float, a: float, b: float) -> float:
    """P(a <= X <= b) for X ~ N(mean, std²), by erfc on the far side of the mean so tails keep their digits."""
    lo, hi = (a - mean) / (std * math.sqrt(2)), (b - mean) / (std * math.sqrt(2))
    if lo >= 0:
        return 0.5 * (math.erfc(lo) - math.erfc(hi))
    if hi <= 0:
        return 0.5 * (math.erfc(-hi) - math.erfc(-lo))
    return 1.0 - 0.5 * (math.erfc(-lo) + math.erfc(hi))


def _log_upper_tail(z: float) -> float:
    """log P(Z > z) for Z ~ N(0, 1): by erfc up to z = 8, beyond by the asymptotic series of Mills' ratio
    (Abramowitz & Stegun 26.2.12; four terms: relative error under 1e-6 there), which never underflows."""
    if z < 8:
        return math.log(0.5 * math.erfc(z / math.sqrt(2)))
    if math.isinf(z):
        return -math.inf
    w = 1 / (z * z)
    return -0.5 * z * z - math.log(z * math.sqrt(2 * math.pi)) + math.log1p(w * (-1 + w * (3 + w * (-15 + 105 * w))))


def _log_normal_mass(mean: float, std: float, a: float, b: float) -> float:
    """log P(a <= X <= b) for X ~ N(mean, std²), finite for intervals far in a tail (a = 40σ: the mass is
    below the smallest float)."""
    lo, hi = (a - mean) / std, (b - mean) / std
    if lo < 0 < hi:
        return math.log(_normal_mass(mean, std, a, b))
    if hi <= 0:
        lo, hi = -hi, -lo
    near, far = _log_upper_tail(lo), _log_upper_tail(hi)
    return near + math.log1p(-math.exp(far - near)) if far < near else -math.inf


@_logs_its_write
def trunc_normal_(t, mean: float = 0.0, std: float = 1.0, a: float = -2.0, b: float = 2.0, generator=None):
    """Fill with N(mean, std²) truncated to [a, b] (PyTorch's ``trunc_normal_``; a and b are values, not
    multiples of std). As PyTorch: where [a, b] holds over 30% of the mass, draws outside are drawn again;
    else x ~ U[a, b] is kept with probability pdf(x)/pdf(c), c the point of [a, b] nearest the mean, which
    also samples far tails (a = 10, b = 11); a == b fills a. ValueError where the chosen method would keep
    under 0.1% of its draws (it would hardly end: e.g. [5, ∞) or [10, 10⁶] for N(0, 1))."""
    arr = _float_array(t)
    if not (std > 0 and math.isfinite(std) and a <= b and math.isfinite(mean)):
        # a NaN mean passed the bounds test below (NaN < a is False) and filled NaN
        raise ValueError(f"trunc_normal_ needs 0 < std < inf, a <= b and a finite mean, got mean={mean}, "
                         f"std={std}, a={a}, b={b}")
    if a == b:
        arr[...] = a
        return t
    mass = _normal_mass(mean, std, a, b)
    by_uniform = mass <= 0.3 and math.isfinite(a) and math.isfinite(b)
    if by_uniform:      # the share of U[a, b] draws kept: mass / ((b - a)·pdf(c)), in logs (both underflow)
        c = min(max(mean, a), b)
        kept = math.exp(min(0.0, _log_normal_mass(mean, std, a, b) + math.log(std * math.sqrt(2 * math.pi) / (b - a))
                            + 0.5 * ((c - mean) / std) ** 2))
    else:
        kept = mass
    if kept < 1e-3:
        raise ValueError(f"trunc_normal_: [{a}, {b}] holds {mass:.2g} of N({mean}, {std}²), too little to sample "
                         f"(under 0.1% of the draws would be kept); choose bounds nearer the mean")
    rng = _rng(generator)
    if by_uniform:
        def draw(n):    # x ~ U[a, b], accepted with probability pdf(x)/pdf(c) <= 1
            x = rng.uniform(a, b, size=n)
            return x, rng.random(n) < np.exp(-0.5 * (((x - mean) / std) ** 2 - ((c - mean) / std) ** 2))
    else:
        def draw(n):
            x = rng.normal(mean, std, size=n)
            return x, (x >= a) & (x <= b)
    values, accepted = draw(arr.size)
    pending = np.flatnonzero(~accepted)
    while pending.size:     # redraw only the rejected (a test of the whole array per round cost ~1 min at 10⁶)
        x, accepted = draw(pending.size)
        values[pending[accepted]] = x[accepted]
        pending = pending[~accepted]
    arr[...] = values.reshape(arr.shape)
    return t


@_logs_its_write
def zeros_(t):
    """Fill with 0."""
    _array(t).fill(0)
    return t


@_logs_its_write
def ones_(t):
    """Fill with 1."""
    _array(t).fill(1)
    return t


@_logs_its_write
def eye_(t):
    """The identity matrix (ones on the diagonal of a 2-D tensor, zeros elsewhere), as PyTorch's ``eye_``."""
    arr = _array(t)
    if arr.ndim != 2:
        raise ValueError(f"eye_ fills a 2-D tensor, got shape {arr.shape}")
    arr[...] = np.eye(*arr.shape, dtype=arr.dtype)
    return t


@_logs_its_write
def constant_(t, value: float):
    """Fill with ``value``: a number, or a 0-d Tensor/ndarray (as PyTorch's ``constant_``)."""
    if isinstance(value, (Tensor, np.ndarray)) and value.ndim == 0:
        value = _array(value)[()]
    if not isinstance(value, (numbers.Real, np.bool_)):       # complex too: NumPy's error named nothing
        # NumPy's fill would take None as NaN and "1.5" as 1.5; PyTorch raises a TypeError
        shape = f" of shape {value.shape}" if isinstance(value, (Tensor, np.ndarray)) else ""
        raise TypeError(f"constant_ fills with a number or a 0-d tensor, got {type(value).__name__}{shape}")
    _array(t).fill(value)
    return t


@_logs_its_write
def xavier_uniform_(t, gain: float = 1.0, mode: str = "fan_avg", generator=None):
    """Glorot & Bengio (2010) normalized init, Eq. 16: U[-b, b], b = gain·√(3/fan).

    fan = (fan_in+fan_out)/2 for mode "fan_avg" (b = gain·√6/√(fan_in+fan_out), Var = gain²·2/(fan_in+fan_out));
    fan_in or fan_out for the other modes (mode="fan_in" is Caffe's "xavier" filler).
    Example: ``init.xavier_uniform_(layer.weight, gain=init.calculate_gain("tanh"))``.
    """
    fan = _fan(_array(t).shape, mode)   # first: < 2 dims is a ValueError even when empty (PyTorch)
    if _empty(t):
        return t
    return _fill_uniform(t, gain * math.sqrt(3.0 / fan), generator,
                         f"xavier_uniform_(gain={gain!r})")


@_logs_its_write
def xavier_normal_(t, gain: float = 1.0, mode: str = "fan_avg", generator=None):
    """Gaussian Glorot init (PyTorch ``xavier_normal_``, not truncated): N(0, gain²/fan), fan as in
    ``xavier_uniform_`` (fan_avg: Var = 2/(fan_in+fan_out))."""
    fan = _fan(_array(t).shape, mode)   # first: < 2 dims is a ValueError even when empty (PyTorch)
    if _empty(t):
        return t
    return _fill_normal(t, gain * math.sqrt(1.0 / fan), generator,
                        f"xavier_normal_(gain={gain!r})")


@_logs_its_write
def standard_(t, generator=None):
    """Glorot & Bengio (2010) "standard" init, Eq. 1: U[-1/√fan_in, 1/√fan_in] (Var = 1/(3·fan_in)).

    Also PyTorch's ``nn.Linear`` default weight (which, unlike here, draws the bias from it too).
    """
    fan_in, _ = fan_in_and_fan_out(_array(t).shape)
    if _empty(t):
        return t
    return _fill_uniform(t, 1.0 / math.sqrt(fan_in), generator, "standard_")


@_logs_its_write
def lecun_normal_(t, generator=None):
    """LeCun et al. (1998) / Caffe's Gaussian "variance 1/N" init: N(0, 1/fan_in), not truncated."""
    fan_in, _ = fan_in_and_fan_out(_array(t).shape)
    if _empty(t):
        return t
    return _fill_normal(t, math.sqrt(1.0 / fan_in), generator, "lecun_normal_")


@_logs_its_write
def lecun_uniform_(t, generator=None):
    """U[-√(3/fan_in), √(3/fan_in)] (Var = 1/fan_in): Caffe's default "xavier" filler and Keras'
    ``lecun_uniform`` — 3× the variance of the paper's standard init."""
    fan_in, _ = fan_in_and_fan_out(_array(t).shape)
    if _empty(t):
        return t
    return _fill_uniform(t, math.sqrt(3.0 / fan_in), generator, "lecun_uniform_")


def _kaiming_mode(mode) -> str:
    """"fan_in" or "fan_out", any case (PyTorch's spelling rule); ValueError otherwise."""
    mode = mode.lower() if isinstance(mode, str) else mode
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"kaiming mode must be 'fan_in' or 'fan_out', got {mode!r}")
    return mode


@_logs_its_write
def kaiming_uniform_(t, a: float = 0, mode: str = "fan_in", nonlinearity: str = "leaky_relu",
                     generator=None):
    """He et al. (2015): U[-b, b], b = gain·√(3/fan), gain = calculate_gain(nonlinearity, a).

    Defaults (leaky_relu with a = 0, i.e. ReLU) give b = √(6/fan_in), Var = 2/fan_in.
    """
    mode = _kaiming_mode(mode)
    if _empty(t):
        return t
    std = calculate_gain(nonlinearity, a) / math.sqrt(_fan(_array(t).shape, mode))
    return _fill_uniform(t, math.sqrt(3.0) * std, generator, f"kaiming_uniform_(a={a!r}, {nonlinearity!r})")


@_logs_its_write
def kaiming_normal_(t, a: float = 0, mode: str = "fan_in", nonlinearity: str = "leaky_relu",
                    generator=None):
    """He et al. (2015): N(0, gain²/fan); defaults give N(0, 2/fan_in)."""
    mode = _kaiming_mode(mode)
    if _empty(t):
        return t
    std = calculate_gain(nonlinearity, a) / math.sqrt(_fan(_array(t).shape, mode))
    return _fill_normal(t, std, generator, f"kaiming_normal_(a={a!r}, {nonlinearity!r})")


@_logs_its_write
def orthogonal_(t, gain: float = 1.0, generator=None):
    """Saxe et al. (2014): a random (semi-)orthogonal matrix times ``gain``: the QR factor Q of a
    Gaussian matrix, its columns' signs fixed by R's diagonal so that Q is uniform over the orthogonal
    matrices (as PyTorch's ``orthogonal_``). For a weight (fan_in, fan_out): orthonormal rows if fan_in ≤
    fan_out, else orthonormal columns, so every singular value is ``gain`` and Var(W) = gain²/max(fan_in,
    fan_out). More dims are flattened to (prod(shape[:-1]), shape[-1]) (Keras' kernel layout), whose variance
    is gain²/max(prod(shape[:-1]), shape[-1]): not the registry's 1/max(fan_in, fan_out), which holds for 2-D
    weights (both fans there include the receptive field)."""
    arr = _float_array(t)
    if arr.ndim < 2:
        raise ValueError(f"orthogonal_ fills a tensor of 2 or more dimensions, got shape {arr.shape}")
    if _empty(t):
        return t
    rows, cols = arr.size // arr.shape[-1], arr.shape[-1]
    draw = _rng(generator).normal(0.0, 1.0, size=(max(rows, cols), min(rows, cols)))
    q, r = np.linalg.qr(draw)
    q *= np.sign(np.diag(r))
    arr[...] = (gain * (q if rows >= cols else q.T)).reshape(arr.shape)
    return t


# ---- the scheme registry -------------------------------------------------------------------------
@dataclass(frozen=True)
class Scheme:
    """A named weight-initialization scheme: how to fill a weight and the variance that gives it.

    Calling the scheme fills a Tensor in place (``scheme(t, generator=None)``) and returns it.
    ``variance(fan_in, fan_out)`` is Var(W) for a weight laid out (fan_in, fan_out); ``formula`` the
    distribution, ``label`` the name the study's report uses, ``source`` where it comes from.
    """

    name: str
    fill: Callable
    variance: Callable[[int, int], float]
    formula: str
    label: str
    source: str

    def __call__(self, t, generator=None):
        return self.fill(t, generator=generator)


def _normal_scheme(std: float, name: str) -> Scheme:
    return Scheme(name, lambda t, generator=None: _fill_normal(t, std, generator, name),
                  lambda fan_in, fan_out: std * std, f"N(0, {std:g}²)", f"N(0, {std:g}²)",
                  "a fixed Gaussian, independent of the layer's size (Glorot & Bengio 2010, Sec. 4.2: "
                  "too small and signals vanish with depth; too large and sigmoid/tanh units saturate)")


SCHEMES: dict[str, Scheme] = {s.name: s for s in (
    Scheme("xavier_uniform", xavier_uniform_, lambda fi, fo: 2.0 / (fi + fo), "U[±√6/√(fan_in+fan_out)]",
           "Xavier (normalized) uniform", "Glorot & Bengio 2010, Eq. 16"),
    Scheme("xavier_normal", xavier_normal_, lambda fi, fo: 2.0 / (fi + fo), "N(0, 2/(fan_in+fan_out))",
           "Xavier normal", "Glorot & Bengio 2010 (the Gaussian with Eq. 16's variance; PyTorch)"),
    Scheme("standard", standard_, lambda fi, fo: 1.0 / (3.0 * fi), "U[±1/√fan_in]",
           "standard U[±1/√n_in]", "Glorot & Bengio 2010, Eq. 1"),
    Scheme("lecun_normal", lecun_normal_, lambda fi, fo: 1.0 / fi, "N(0, 1/fan_in)",
           "LeCun N(0, 1/n_in)", "LeCun et al. 1998; Caffe's Gaussian; the classic Xavier article"),
    Scheme("lecun_uniform", lecun_uniform_, lambda fi, fo: 1.0 / fi, "U[±√(3/fan_in)]",
           "LeCun uniform U[±√(3/n_in)]", "LeCun et al. 1998; Caffe's \"xavier\" filler; Keras"),
    Scheme("kaiming_uniform", kaiming_uniform_, lambda fi, fo: 2.0 / fi, "U[±√(6/fan_in)]",
           "He uniform", "He et al. 2015 (ReLU gain √2)"),
    Scheme("kaiming_normal", kaiming_normal_, lambda fi, fo: 2.0 / fi, "N(0, 2/fan_in)",
           "He N(0, 2/n_in)", "He et al. 2015, Eq. 10"),
    Scheme("orthogonal", orthogonal_, lambda fi, fo: 1.0 / max(fi, fo), "Q of QR(N(0, 1)): WWᵀ = I or WᵀW = I",
           "orthogonal", "Saxe et al. 2014 (every singular value 1: no direction grows or shrinks)"),
    _normal_scheme(0.01, "normal_0.01"),
    _normal_scheme(1.0, "normal_1"),
    Scheme("zeros", lambda t, generator=None: zeros_(t), lambda fi, fo: 0.0, "0",
           "zeros", "the symmetric failure case: every unit of a layer stays identical"),
)}
FIXED_NORMAL = "normal_<std>"   # any other fixed Gaussian by name, e.g. "normal_0.1" (parsed by ``get``)


def get(name) -> Scheme:
    """The scheme for a name of ``SCHEMES`` or ``normal_<std>`` (std a positive finite decimal); a callable is
    returned as is. Anything else raises ValueError listing the names."""
    if callable(name):
        return name
    if isinstance(name, str):
        if name in SCHEMES:
            return SCHEMES[name]
        # a plain decimal only: Python's float() also reads "1_0" as 10 and " 0.5" as 0.5
        number = re.fullmatch(r"normal_((\d+\.?\d*|\.\d+)([eE][-+]?\d+)?)", name, flags=re.ASCII)
        if number:
            std = float(number.group(1))
            if std > 0 and math.isfinite(std):
                return _normal_scheme(std, name)
    raise ValueError(f"unknown init scheme {name!r}; choose one of {', '.join(SCHEMES)} or {FIXED_NORMAL} "
                     f"(e.g. normal_0.1)")


def names() -> tuple[str, ...]:
    """The named schemes (``normal_<std>`` accepts any other positive std too)."""
    return tuple(SCHEMES)
