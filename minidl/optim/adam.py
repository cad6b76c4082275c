"""Adam (Kingma & Ba, 2015) with PyTorch's L2 ``weight_decay`` (added to the gradient), and AdamW
(Loshchilov & Hutter, 2019) whose weight decay is decoupled from the gradient."""
from __future__ import annotations

import math

import numpy as np

from minidl._core import axpby
from minidl.autograd import note_in_place
from minidl.optim.optimizer import Optimizer

__all__ = ["Adam", "AdamW"]


class Adam(Optimizer):
    """For each parameter p with gradient g, at step t = 1, 2, … (PyTorch ``torch.optim.Adam``):

        g ← g + weight_decay · p
        m ← β₁ m + (1 − β₁) g          v ← β₂ v + (1 − β₂) g²
        m̂ = m / (1 − β₁ᵗ)              v̂ = v / (1 − β₂ᵗ)
        p ← p − lr · m̂ / (√v̂ + eps)

    ``amsgrad`` (Reddi, Kale & Kumar 2018): v̂ from v_max ← max(v_max, v) instead of v, so the step size
    never grows back. Every parameter shape works, 0-d included.
    """

    #: AdamW: p ← p·(1 − lr·weight_decay) before the step, instead of adding weight_decay·p to g
    decoupled_weight_decay = False

    hyper = {"lr": float, "betas": tuple, "eps": float, "weight_decay": float, "amsgrad": bool}
    hyper_defaults = {"amsgrad": False}     # state dicts saved before the option existed load as without it

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, amsgrad: bool = False):
        super().__init__(params, dict(lr=float(lr), betas=(float(betas[0]), float(betas[1])),
                                      eps=float(eps), weight_decay=float(weight_decay), amsgrad=bool(amsgrad)))

    def _check_group(self, group: dict) -> None:
        super()._check_group(group)
        b1, b2 = group["betas"]
        if not (0 <= b1 < 1 and 0 <= b2 < 1):
            raise ValueError(f"invalid betas {group['betas']}: each must be in [0, 1)")
        self._check_non_negative(group, ("eps", "weight_decay"))

    def step(self) -> None:
        decoupled = self.decoupled_weight_decay
        changed = []                        # arrays written in place (autograd checks saved values)
        for group, p, g in self._gradients(l2=not decoupled):
            lr, (b1, b2), eps = group["lr"], group["betas"], group["eps"]
            if decoupled and group["weight_decay"]:
                p.data *= p.data.dtype.type(1 - lr * group["weight_decay"])
            state = self.state.setdefault(p, {})
            if "step" not in state:
                state["step"] = 0
                state["exp_avg"] = np.zeros_like(p.data)
                state["exp_avg_sq"] = np.zeros_like(p.data)
            state["step"] += 1
            t = state["step"]
            m, v = state["exp_avg"], state["exp_avg_sq"]
            axpby(1 - b1, g, b1, m)
            scratch = self._buffer(p, "adam")
            axpby(1 - b2, np.multiply(g, g, out=scratch), b2, v)
            if group["amsgrad"]:
                if "max_exp_avg_sq" not in state:
                    state["max_exp_avg_sq"] = np.zeros_like(p.data)
                v = np.maximum(state["max_exp_avg_sq"], v, out=state["max_exp_avg_sq"])
            bias1 = 1 - b1 ** t
            bias2 = 1 - b2 ** t
            update = np.sqrt(v, out=scratch)
            update /= math.sqrt(bias2)
            update += eps
            np.divide(m, update, out=update)          # m / (√v̂ + eps)
            axpby(-lr / bias1, update, 1.0, p.data)
            changed.append(p.data)
        note_in_place(changed, f"an optimizer step ({type(self).__name__})")


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter 2019; PyTorch ``torch.optim.AdamW``):

        p ← p · (1 − lr · weight_decay)      (not through g, so m and v never see the decay)
        then the Adam step above with the raw gradient g.

    PyTorch's defaults: lr 1e-3, betas (0.9, 0.999), eps 1e-8, weight_decay 1e-2.
    """

    decoupled_weight_decay = True

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad)
