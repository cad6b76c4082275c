"""Weight-initialization schemes of the study, by name: how to draw them and their variance.

Variances for a weight laid out (fan_in, fan_out) (Glorot & Bengio 2010; He et al. 2015; LeCun 1998):
    standard        U[-1/sqrt(fan_in), 1/sqrt(fan_in)]       1 / (3 fan_in)        (paper Eq. 1)
    xavier_uniform  U[+-sqrt(6 / (fan_in + fan_out))]       2 / (fan_in + fan_out) (paper Eq. 16)
    xavier_normal   N(0, 2 / (fan_in + fan_out))            2 / (fan_in + fan_out)
    lecun_normal    N(0, 1 / fan_in)                        1 / fan_in  (the "variance 1/N" Gaussian)
    kaiming_normal  N(0, 2 / fan_in)                        2 / fan_in
    kaiming_uniform U[+-sqrt(6 / fan_in)]                   2 / fan_in
    normal_0.01     N(0, 0.01^2)   a fixed Gaussian far too small for 1000-unit layers
    normal_1        N(0, 1)        a fixed Gaussian far too large
"""
from __future__ import annotations

import re

NAMED_SCHEMES = ("standard", "xavier_uniform", "xavier_normal", "lecun_normal", "kaiming_normal",
                 "kaiming_uniform")
LABELS = {
    "standard": "standard U[±1/√n_in]",
    "xavier_uniform": "Xavier (normalized) uniform",
    "xavier_normal": "Xavier normal",
    "lecun_normal": "LeCun N(0, 1/n_in)",
    "kaiming_normal": "He N(0, 2/n_in)",
    "kaiming_uniform": "He uniform",
}
_FIXED_GAUSSIAN = re.compile(r"^normal_(\d+(?:\.\d*)?(?:e-?\d+)?)$")


def fixed_gaussian_std(scheme: str) -> float | None:
    """The std of a fixed-Gaussian scheme named 'normal_<std>' (e.g. 'normal_0.01'), else None."""
    match = _FIXED_GAUSSIAN.match(scheme)
    return float(match.group(1)) if match else None


def validate_scheme(scheme: str) -> str:
    if scheme in NAMED_SCHEMES or fixed_gaussian_std(scheme) is not None:
        return scheme
    raise ValueError(f"unknown init scheme {scheme!r}; choose from {', '.join(NAMED_SCHEMES)} "
                     f"or normal_<std> (e.g. normal_0.01, normal_1)")


def label(scheme: str) -> str:
    std = fixed_gaussian_std(scheme)
    return f"N(0, {std:g}²)" if std is not None else LABELS.get(scheme, scheme)


def weight_variance(scheme: str, fan_in: int, fan_out: int) -> float:
    """Var(W) that `scheme` gives a (fan_in, fan_out) weight (formulas in the module docstring)."""
    std = fixed_gaussian_std(scheme)
    if std is not None:
        return std * std
    if scheme == "standard":
        return 1.0 / (3.0 * fan_in)
    if scheme in ("xavier_uniform", "xavier_normal"):
        return 2.0 / (fan_in + fan_out)
    if scheme == "lecun_normal":
        return 1.0 / fan_in
    if scheme in ("kaiming_normal", "kaiming_uniform"):
        return 2.0 / fan_in
    raise ValueError(f"unknown init scheme {scheme!r}")


def initializer(scheme: str) -> str:
    """The name `nn.Linear(init=...)` takes for `scheme` (minidl.init parses 'normal_<std>' itself)."""
    return validate_scheme(scheme)
