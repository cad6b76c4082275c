"""Adam (Kingma & Ba, 2015) with PyTorch's L2 ``weight_decay`` (added to the gradient, not AdamW)."""
from __future__ import annotations

import math

import numpy as np

from minidl._core import axpby
from minidl.optim.optimizer import Optimizer

__all__ = ["Adam"]


class Adam(Optimizer):
    """For each parameter p with gradient g, at step t = 1, 2, … (PyTorch ``torch.optim.Adam``):

        g ← g + weight_decay · p
        m ← β₁ m + (1 − β₁) g          v ← β₂ v + (1 − β₂) g²
        m̂ = m / (1 − β₁ᵗ)              v̂ = v / (1 − β₂ᵗ)
        p ← p − lr · m̂ / (√v̂ + eps)
    """

    hyper = {"lr": float, "betas": tuple, "eps": float, "weight_decay": float}

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0):
        super().__init__(params, dict(lr=float(lr), betas=(float(betas[0]), float(betas[1])),
                                      eps=float(eps), weight_decay=float(weight_decay)))

    def _check_group(self, group: dict) -> None:
        super()._check_group(group)
        b1, b2 = group["betas"]
        if not (0 <= b1 < 1 and 0 <= b2 < 1):
            raise ValueError(f"invalid betas {group['betas']}: each must be in [0, 1)")
        if group["eps"] < 0:
            raise ValueError(f"invalid eps {group['eps']}")
        if group["weight_decay"] < 0:
            raise ValueError(f"invalid weight_decay {group['weight_decay']}")

    def step(self) -> None:
        for group, p, g in self._gradients():
            lr, (b1, b2), eps = group["lr"], group["betas"], group["eps"]
            state = self.state.setdefault(id(p), {})
            if "step" not in state:
                state["step"] = 0
                state["exp_avg"] = np.zeros_like(p.data)
                state["exp_avg_sq"] = np.zeros_like(p.data)
            state["step"] += 1
            t = state["step"]
            m, v = state["exp_avg"], state["exp_avg_sq"]
            axpby(1 - b1, g, b1, m)
            axpby(1 - b2, g * g, b2, v)
            bias1 = 1 - b1 ** t
            bias2 = 1 - b2 ** t
            update = np.sqrt(v)
            update /= math.sqrt(bias2)
            update += eps
            np.divide(m, update, out=update)          # m / (√v̂ + eps)
            axpby(-lr / bias1, update, 1.0, p.data)
