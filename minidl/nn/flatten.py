"""``Flatten``: merge a range of axes into one (images (N, 28, 28) -> (N, 784) for an MLP)."""
from __future__ import annotations

import math

from minidl.nn.module import Module
from minidl.ops import as_tensor

__all__ = ["Flatten"]


class Flatten(Module):
    """Reshape x so that axes ``start_dim`` … ``end_dim`` (inclusive, negative counts from the end)
    become one; by default every axis but the batch axis (PyTorch ``nn.Flatten``)."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        self.start_dim = int(start_dim)
        self.end_dim = int(end_dim)

    def forward(self, x):
        x = as_tensor(x)
        shape = x.shape
        ndim = max(len(shape), 1)
        start, end = self.start_dim, self.end_dim
        if not (-ndim <= start < ndim and -ndim <= end < ndim):
            raise ValueError(f"Flatten(start_dim={start}, end_dim={end}) does not fit input of shape {shape}")
        start, end = start % ndim, end % ndim
        if start > end:
            raise ValueError(f"Flatten: start_dim {self.start_dim} comes after end_dim {self.end_dim} "
                             f"for input of shape {shape}")
        if not shape:
            return x.reshape(1)
        return x.reshape(shape[:start] + (math.prod(shape[start:end + 1]),) + shape[end + 1:])

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"
