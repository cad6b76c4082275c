"""Adagrad (Duchi, Hazan & Singer 2011), with PyTorch's learning-rate decay and L2 weight decay."""
from __future__ import annotations

import numpy as np

from minidl._core import axpby
from minidl.autograd import note_in_place
from minidl.optim.optimizer import Optimizer

__all__ = ["Adagrad"]


class Adagrad(Optimizer):
    """For each parameter p with gradient g, at step t = 1, 2, … (PyTorch ``torch.optim.Adagrad``):

        g ← g + weight_decay · p
        s ← s + g²                      (s starts at initial_accumulator_value)
        p ← p − lr / (1 + (t − 1) · lr_decay) · g / (√s + eps)

    PyTorch's defaults: lr 1e-2, eps 1e-10.
    """

    hyper = {"lr": float, "lr_decay": float, "weight_decay": float, "initial_accumulator_value": float,
             "eps": float}

    def __init__(self, params, lr: float = 1e-2, lr_decay: float = 0.0, weight_decay: float = 0.0,
                 initial_accumulator_value: float = 0.0, eps: float = 1e-10):
        super().__init__(params, dict(lr=float(lr), lr_decay=float(lr_decay), weight_decay=float(weight_decay),
                                      initial_accumulator_value=float(initial_accumulator_value),
                                      eps=float(eps)))

    def _check_group(self, group: dict) -> None:
        super()._check_group(group)
        self._check_non_negative(group, ("lr_decay", "weight_decay", "initial_accumulator_value", "eps"))

    def step(self) -> None:
        changed = []
        for group, p, g in self._gradients():
            state = self.state.setdefault(p, {})
            if "step" not in state:
                state["step"] = 0
                state["sum"] = np.full_like(p.data, group["initial_accumulator_value"])
            state["step"] += 1
            scratch = self._buffer(p, "adagrad")
            axpby(1.0, np.multiply(g, g, out=scratch), 1.0, state["sum"])
            denominator = np.sqrt(state["sum"], out=scratch)
            denominator += group["eps"]
            step = np.divide(g, denominator, out=denominator)
            axpby(-group["lr"] / (1 + (state["step"] - 1) * group["lr_decay"]), step, 1.0, p.data)
            changed.append(p.data)
        note_in_place(changed, "an optimizer step (Adagrad)")
