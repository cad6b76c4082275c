"""``Dropout``: zero units at random while training (Srivastava et al. 2014), the identity in eval()."""
from __future__ import annotations

import numbers

from minidl.nn import functional as F
from minidl.nn.module import Module

__all__ = ["Dropout"]


class Dropout(Module):
    """In training mode zero each element with probability ``p`` and scale the others by 1/(1-p)
    (PyTorch's "inverted" dropout: the expected output equals the input); in eval mode return the
    input. Draws from ``minidl.random.generator()`` (``mdl.manual_seed`` makes it repeatable).
    ``inplace`` is PyTorch's flag, taken so PyTorch code runs; the result is computed out of place (the
    same values and gradients, the input left as it was)."""

    def __init__(self, p: float = 0.5, inplace: bool = False):
        super().__init__()
        if isinstance(p, bool) or not isinstance(p, numbers.Real) or not 0 <= p <= 1:
            raise ValueError(f"dropout probability has to be between 0 and 1, but got {p!r}")
        self.p = float(p)
        self.inplace = bool(inplace)

    def forward(self, x):
        return F.dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}" + (", inplace=True" if self.inplace else "")
