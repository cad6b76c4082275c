"""Command-line arguments that name an activation or an init scheme: parsing, errors and help text all
come from the registries (``minidl.activations``, ``minidl.init``), so both CLIs accept exactly the names
``nn.MLP(activation=...)`` and ``nn.Linear(init=...)`` accept, with the same messages."""
from __future__ import annotations

import argparse

from minidl import activations, init


def activation_name(text: str) -> str:
    """argparse type: the registry name of an activation (case-insensitive)."""
    try:
        return activations.get(text).name
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def scheme_name(text: str) -> str:
    """argparse type: a scheme name ``minidl.init.get`` accepts."""
    try:
        init.get(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return text


def activation_help() -> str:
    """'sigmoid (σ(s) = 1/(1+e⁻ˢ)), tanh (tanh s), ...'"""
    return ", ".join(f"{a.name} ({a.formula})" for a in activations.REGISTRY.values())


def scheme_help() -> str:
    """'xavier_uniform (U[±√6/√(fan_in+fan_out)]), ..., or normal_<std>'"""
    named = ", ".join(f"{s.name} ({s.formula})" for s in init.SCHEMES.values())
    return f"{named}, or {init.FIXED_NORMAL} (any fixed Gaussian, e.g. normal_0.1)"
