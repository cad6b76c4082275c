"""Gradient utilities: ``clip_grad_norm_`` (PyTorch ``torch.nn.utils.clip_grad_norm_``)."""
from __future__ import annotations

import math

import numpy as np

from minidl.tensor import Tensor

__all__ = ["clip_grad_norm_"]


def clip_grad_norm_(parameters, max_norm: float, norm_type: float = 2.0,
                    error_if_nonfinite: bool = False, foreach: bool | None = None) -> Tensor:
    """Scale the gradients of ``parameters`` in place so that their joint norm is at most ``max_norm``.

    total = ‖(‖g₁‖ₚ, ‖g₂‖ₚ, …)‖ₚ over every parameter with a ``.grad`` (p = ``norm_type``, ``inf``: the
    largest |g|); each g is multiplied by min(1, max_norm/(total + 1e-6)), as PyTorch does. Returns the
    total norm *before* clipping as a 0-d Tensor (``.item()`` for a float). A NaN or infinite total
    raises RuntimeError when ``error_if_nonfinite``; else, as in PyTorch, the gradients are scaled by the
    factor it gives (NaN, or 0 for an infinite total). ``foreach``, PyTorch's choice of implementation, is
    taken and has no effect here.
    """
    params = [parameters] if isinstance(parameters, Tensor) else list(parameters)
    grads = [p.grad for p in params if p.grad is not None]
    p = float(norm_type)
    if not grads:
        return Tensor(np.zeros((), dtype=np.float32))
    dtype = np.result_type(*grads)
    if p == math.inf:
        norms = [np.abs(g).max(initial=0) for g in grads]
        total = np.max(norms)
    else:
        norms = [np.linalg.norm(g.reshape(-1), ord=p) for g in grads]
        total = np.linalg.norm(np.asarray(norms, dtype=dtype), ord=p)
    total = np.asarray(total, dtype=dtype)
    if error_if_nonfinite and not np.isfinite(total):
        raise RuntimeError(f"the total norm of order {norm_type} of the gradients is {float(total)}, so they "
                           f"cannot be clipped; pass error_if_nonfinite=False to scale them anyway")
    coef = float(max_norm) / (float(total) + 1e-6)
    if coef > 1.0:          # a NaN coefficient stays NaN, as PyTorch's clamp leaves it
        coef = 1.0
    for g in grads:
        g *= g.dtype.type(coef)
    return Tensor(total)
