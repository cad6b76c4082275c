"""Weight initializers, each filling a Tensor in place and returning it.

Weights are laid out (fan_in, fan_out) — ``nn.Linear.weight`` is (in_features, out_features) — so for a
2-D shape fan_in = shape[0], fan_out = shape[1]; for more dims (Keras' kernel layout
(..., in, out)) both are multiplied by the receptive field prod(shape[:-2]).
Formulas and sources: Glorot & Bengio (2010) "Understanding the difficulty of training deep
feedforward neural networks"; LeCun et al. (1998) "Efficient BackProp"; He et al. (2015) "Delving
Deep into Rectifiers"; PyTorch ``torch/nn/init.py`` (gains); Caffe ``filler.hpp``.

Randomness: every initializer takes ``generator=`` (a ``numpy.random.Generator``); by default it
draws from ``minidl.random.generator()``, which ``minidl.manual_seed`` reseeds.

Scheme names (``SCHEMES`` / ``get(name)``), used by ``nn.Linear(init=...)`` and the CLI:
    xavier_uniform   U[±√6/√(fan_in+fan_out)]          Glorot & Bengio's normalized init (Eq. 16)
    xavier_normal    N(0, 2/(fan_in+fan_out))
    standard         U[±1/√fan_in]                      the paper's "standard" init (Eq. 1)
    lecun_normal     N(0, 1/fan_in)                     Caffe / classic Xavier-article Gaussian
    lecun_uniform    U[±√(3/fan_in)]                    Caffe "xavier" filler (variance 1/fan_in)
    kaiming_uniform  U[±√(6/fan_in)]                    He et al., ReLU gain √2
    kaiming_normal   N(0, 2/fan_in)
    normal_0.01      N(0, 0.01²)   fixed Gaussian: "too small" (signals vanish with depth)
    normal_1         N(0, 1)       fixed Gaussian: "too large" (sigmoid/tanh units saturate)
    normal_<std>     any fixed Gaussian, e.g. "normal_0.1" (parsed by ``get``)
    zeros            all zeros (the symmetric failure case)
"""
from __future__ import annotations

import math

import numpy as np

from minidl import random as _random
from minidl.tensor import Tensor

__all__ = ["calculate_gain", "fan_in_and_fan_out", "uniform_", "normal_", "zeros_", "constant_",
           "xavier_uniform_", "xavier_normal_", "standard_", "lecun_normal_", "lecun_uniform_",
           "kaiming_uniform_", "kaiming_normal_", "SCHEMES", "get"]


def _array(t) -> np.ndarray:
    if isinstance(t, Tensor):
        return t.data
    if isinstance(t, np.ndarray):
        return t
    raise TypeError(f"initializers fill a Tensor (or ndarray) in place, got {type(t).__name__}")


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


def _fill_uniform(t, bound: float, generator):
    a = _array(t)
    a[...] = _rng(generator).uniform(-bound, bound, size=a.shape)
    return t


def _fill_normal(t, std: float, generator, mean: float = 0.0):
    a = _array(t)
    a[...] = _rng(generator).normal(mean, std, size=a.shape)
    return t


def uniform_(t, a: float = 0.0, b: float = 1.0, generator=None):
    """Fill with U[a, b)."""
    arr = _array(t)
    arr[...] = _rng(generator).uniform(a, b, size=arr.shape)
    return t


def normal_(t, mean: float = 0.0, std: float = 1.0, generator=None):
    """Fill with N(mean, std²)."""
    return _fill_normal(t, std, generator, mean)


def zeros_(t):
    """Fill with 0."""
    _array(t).fill(0)
    return t


def constant_(t, value: float):
    """Fill with ``value``."""
    _array(t).fill(value)
    return t


def xavier_uniform_(t, gain: float = 1.0, mode: str = "fan_avg", generator=None):
    """Glorot & Bengio (2010) normalized init, Eq. 16: U[-b, b], b = gain·√(3/fan).

    fan = (fan_in+fan_out)/2 for mode "fan_avg" (b = gain·√6/√(fan_in+fan_out), Var = gain²·2/(fan_in+fan_out));
    fan_in or fan_out for the other modes (mode="fan_in" is Caffe's "xavier" filler).
    Example: ``init.xavier_uniform_(layer.weight, gain=init.calculate_gain("tanh"))``.
    """
    return _fill_uniform(t, gain * math.sqrt(3.0 / _fan(_array(t).shape, mode)), generator)


def xavier_normal_(t, gain: float = 1.0, mode: str = "fan_avg", generator=None):
    """Gaussian Glorot init (PyTorch ``xavier_normal_``, not truncated): N(0, gain²/fan), fan as in
    ``xavier_uniform_`` (fan_avg: Var = 2/(fan_in+fan_out))."""
    return _fill_normal(t, gain * math.sqrt(1.0 / _fan(_array(t).shape, mode)), generator)


def standard_(t, generator=None):
    """Glorot & Bengio (2010) "standard" init, Eq. 1: U[-1/√fan_in, 1/√fan_in] (Var = 1/(3·fan_in)).

    Also PyTorch's ``nn.Linear`` default weight (which, unlike here, draws the bias from it too).
    """
    fan_in, _ = fan_in_and_fan_out(_array(t).shape)
    return _fill_uniform(t, 1.0 / math.sqrt(fan_in), generator)


def lecun_normal_(t, generator=None):
    """LeCun et al. (1998) / Caffe's Gaussian "variance 1/N" init: N(0, 1/fan_in), not truncated."""
    fan_in, _ = fan_in_and_fan_out(_array(t).shape)
    return _fill_normal(t, math.sqrt(1.0 / fan_in), generator)


def lecun_uniform_(t, generator=None):
    """U[-√(3/fan_in), √(3/fan_in)] (Var = 1/fan_in): Caffe's default "xavier" filler and Keras'
    ``lecun_uniform`` — 3× the variance of the paper's standard init."""
    fan_in, _ = fan_in_and_fan_out(_array(t).shape)
    return _fill_uniform(t, math.sqrt(3.0 / fan_in), generator)


def kaiming_uniform_(t, a: float = 0, mode: str = "fan_in", nonlinearity: str = "leaky_relu",
                     generator=None):
    """He et al. (2015): U[-b, b], b = gain·√(3/fan), gain = calculate_gain(nonlinearity, a).

    Defaults (leaky_relu with a = 0, i.e. ReLU) give b = √(6/fan_in), Var = 2/fan_in.
    """
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"kaiming mode must be 'fan_in' or 'fan_out', got {mode!r}")
    std = calculate_gain(nonlinearity, a) / math.sqrt(_fan(_array(t).shape, mode))
    return _fill_uniform(t, math.sqrt(3.0) * std, generator)


def kaiming_normal_(t, a: float = 0, mode: str = "fan_in", nonlinearity: str = "leaky_relu",
                    generator=None):
    """He et al. (2015): N(0, gain²/fan); defaults give N(0, 2/fan_in)."""
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"kaiming mode must be 'fan_in' or 'fan_out', got {mode!r}")
    std = calculate_gain(nonlinearity, a) / math.sqrt(_fan(_array(t).shape, mode))
    return _fill_normal(t, std, generator)


def _fixed_normal(std: float):
    def init(t, generator=None):
        return _fill_normal(t, std, generator)
    init.__name__ = f"normal_{std:g}"
    init.__doc__ = f"Fixed Gaussian N(0, {std:g}²), independent of the layer's size."
    return init


def _zeros(t, generator=None):
    return zeros_(t)


SCHEMES = {
    "xavier_uniform": xavier_uniform_,
    "xavier_normal": xavier_normal_,
    "standard": standard_,
    "lecun_normal": lecun_normal_,
    "lecun_uniform": lecun_uniform_,
    "kaiming_uniform": kaiming_uniform_,
    "kaiming_normal": kaiming_normal_,
    "normal_0.01": _fixed_normal(0.01),
    "normal_1": _fixed_normal(1.0),
    "zeros": _zeros,
}


def get(name: str):
    """The in-place initializer ``fn(t, generator=None)`` for a scheme name (see module docstring)."""
    if callable(name):
        return name
    if name in SCHEMES:
        return SCHEMES[name]
    if isinstance(name, str) and name.startswith("normal_"):
        try:
            std = float(name[len("normal_"):])
        except ValueError:
            std = -1.0
        if std > 0 and math.isfinite(std):
            return _fixed_normal(std)
    raise ValueError(f"unknown init scheme {name!r}; choose one of {sorted(SCHEMES)} or 'normal_<std>'")
