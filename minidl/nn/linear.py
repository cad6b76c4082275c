"""``Linear``: y = x @ W + b with W laid out (in_features, out_features), as in the paper and Keras."""
from __future__ import annotations

import numpy as np

from minidl import init as _init
from minidl._core import memory_pool
from minidl.ops import linear
from minidl.nn.module import Module, Parameter, parameter_dtype

__all__ = ["Linear"]


class Linear(Module):
    """Affine layer y = x @ W + b.

    Args:
        in_features, out_features: sizes; ``weight`` has shape (in_features, out_features).
        bias: add a bias vector of shape (out_features,), initialized to 0 (Glorot & Bengio 2010).
        init: a scheme name from ``minidl.init.SCHEMES`` (default "xavier_uniform") or a callable
            ``fn(weight_tensor)`` that fills the weight in place.
        dtype: parameter dtype, float32 (also for None, as PyTorch) or float64.
        generator: numpy Generator for the weight draw (default: ``minidl.random.generator()``).
        device: PyTorch's, None or "cpu".
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 init="xavier_uniform", dtype=np.float32, generator=None, *, device=None):
        super().__init__()
        dtype = parameter_dtype(dtype, device, "Linear")
        for size in (in_features, out_features):
            if isinstance(size, bool) or not isinstance(size, (int, np.integer)):
                raise TypeError(f"Linear sizes must be ints, got ({in_features!r}, {out_features!r})")
        if in_features <= 0 or out_features <= 0:
            raise ValueError(f"Linear needs positive sizes, got ({in_features}, {out_features})")
        self.in_features = int(in_features)
        self.out_features = int(out_features)
        self.init = init
        with memory_pool():             # a large weight on huge pages: fewer TLB misses in the GEMM
            self.weight = Parameter(np.empty((self.in_features, self.out_features), dtype=dtype))
        self.bias = Parameter(np.zeros(self.out_features, dtype=dtype)) if bias else None
        self.reset_parameters(generator)

    def reset_parameters(self, generator=None) -> None:
        """Redraw the weight with ``self.init`` and zero the bias."""
        fill = _init.get(self.init)
        if isinstance(fill, _init.Scheme):      # a name, or a registry entry passed as is: it takes generator=
            fill(self.weight, generator=generator)
        else:                                   # the user's fn(weight)
            fill(self.weight)
        if self.bias is not None:
            self.bias.data.fill(0)

    def forward(self, x):
        return linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        init = self.init if isinstance(self.init, str) else getattr(self.init, "__name__", "callable")
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}, init={init!r}")
