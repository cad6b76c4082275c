"""Activation modules: Sigmoid, Tanh, ReLU, Softsign, Identity."""
from __future__ import annotations

from minidl import ops
from minidl.nn.module import Module

__all__ = ["Sigmoid", "Tanh", "ReLU", "Softsign", "Identity"]


class Sigmoid(Module):
    """σ(x) = 1/(1+e⁻ˣ), computed by minidl._core."""

    def forward(self, x):
        return ops.sigmoid(x)


class Tanh(Module):
    """tanh x."""

    def forward(self, x):
        return ops.tanh(x)


class ReLU(Module):
    """max(x, 0)."""

    def forward(self, x):
        return ops.relu(x)


class Softsign(Module):
    """x / (1 + |x|) (Glorot & Bengio 2010)."""

    def forward(self, x):
        return ops.softsign(x)


class Identity(Module):
    """Returns its input unchanged."""

    def forward(self, x):
        return x
