"""RMSprop (Tieleman & Hinton 2012, lecture 6.5 of "Neural Networks for Machine Learning"), with PyTorch's
options: L2 weight decay, momentum, and the centered variant (Graves 2013)."""
from __future__ import annotations

import numpy as np

from minidl._core import axpby
from minidl.autograd import note_in_place
from minidl.optim.optimizer import Optimizer

__all__ = ["RMSprop"]


class RMSprop(Optimizer):
    """For each parameter p with gradient g (PyTorch ``torch.optim.RMSprop``):

        g ← g + weight_decay · p
        v ← α v + (1 − α) g²
        centered: ḡ ← α ḡ + (1 − α) g,  d = √(v − ḡ²) + eps;   else d = √v + eps
        momentum ≠ 0:  b ← momentum · b + g / d,  p ← p − lr · b;   else p ← p − lr · g / d

    PyTorch's defaults: lr 1e-2, alpha 0.99, eps 1e-8.
    """

    hyper = {"lr": float, "alpha": float, "eps": float, "weight_decay": float, "momentum": float,
             "centered": bool}

    def __init__(self, params, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0.0, momentum: float = 0.0, centered: bool = False):
        super().__init__(params, dict(lr=float(lr), alpha=float(alpha), eps=float(eps),
                                      weight_decay=float(weight_decay), momentum=float(momentum),
                                      centered=bool(centered)))

    def _check_group(self, group: dict) -> None:
        super()._check_group(group)
        self._check_non_negative(group, ("alpha", "eps", "weight_decay", "momentum"))
        if group["alpha"] > 1:
            raise ValueError(f"invalid alpha {group['alpha']}: it must be in [0, 1]")

    def step(self) -> None:
        changed = []
        for group, p, g in self._gradients():
            lr, alpha, eps, momentum = group["lr"], group["alpha"], group["eps"], group["momentum"]
            state = self.state.setdefault(p, {})
            if "step" not in state:
                state["step"] = 0
                state["square_avg"] = np.zeros_like(p.data)
                if momentum:
                    state["momentum_buffer"] = np.zeros_like(p.data)
                if group["centered"]:
                    state["grad_avg"] = np.zeros_like(p.data)
            state["step"] += 1
            square = self._buffer(p, "rmsprop")
            axpby(1 - alpha, np.multiply(g, g, out=square), alpha, state["square_avg"])
            denominator = square                          # reuses the scratch array
            if group["centered"]:
                mean = state.setdefault("grad_avg", np.zeros_like(p.data))
                axpby(1 - alpha, g, alpha, mean)
                np.multiply(mean, mean, out=denominator)
                np.subtract(state["square_avg"], denominator, out=denominator)
                np.sqrt(denominator, out=denominator)
            else:
                np.sqrt(state["square_avg"], out=denominator)
            denominator += eps
            step = np.divide(g, denominator, out=denominator)     # g / d
            if momentum:
                buf = state.setdefault("momentum_buffer", np.zeros_like(p.data))
                axpby(1.0, step, momentum, buf)
                step = buf
            axpby(-lr, step, 1.0, p.data)
            changed.append(p.data)
        note_in_place(changed, "an optimizer step (RMSprop)")
