"""Stochastic gradient descent with momentum, Nesterov momentum and L2 weight decay (PyTorch's rule)."""
from __future__ import annotations

from minidl._core import axpby
from minidl.optim.optimizer import Optimizer

__all__ = ["SGD"]


class SGD(Optimizer):
    """For each parameter p with gradient g (PyTorch ``torch.optim.SGD``):

        g ← g + weight_decay · p
        if momentum ≠ 0:  b ← g on the first step, else b ← momentum · b + (1 − dampening) · g
                          g ← g + momentum · b if nesterov else b
        p ← p − lr · g

    The momentum buffer and the parameter are updated in place, one pass each (``minidl._core.axpby``).
    """

    hyper = {"lr": float, "momentum": float, "dampening": float, "weight_decay": float, "nesterov": bool}

    def __init__(self, params, lr: float, momentum: float = 0.0, weight_decay: float = 0.0,
                 nesterov: bool = False, dampening: float = 0.0):
        super().__init__(params, dict(lr=float(lr), momentum=float(momentum),
                                      dampening=float(dampening), weight_decay=float(weight_decay),
                                      nesterov=bool(nesterov)))

    def _check_group(self, group: dict) -> None:
        super()._check_group(group)
        if group["momentum"] < 0:
            raise ValueError(f"invalid momentum {group['momentum']}")
        if group["weight_decay"] < 0:
            raise ValueError(f"invalid weight_decay {group['weight_decay']}")
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError("Nesterov momentum requires a momentum > 0 and zero dampening")

    def step(self) -> None:
        for group, p, g in self._gradients():
            lr, momentum, dampening = group["lr"], group["momentum"], group["dampening"]
            if momentum:
                state = self.state.setdefault(id(p), {})
                buf = state.get("momentum_buffer")
                if buf is None:
                    buf = state["momentum_buffer"] = g.copy()     # g is in p's dtype already
                else:
                    axpby(1 - dampening, g, momentum, buf)
                g = g + momentum * buf if group["nesterov"] else buf
            axpby(-lr, g, 1.0, p.data)
