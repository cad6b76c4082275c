"""Stochastic gradient descent with momentum, Nesterov momentum and L2 weight decay (PyTorch's rule)."""
from __future__ import annotations

import numpy as np

from minidl._core import axpby
from minidl.autograd import note_in_place
from minidl.deferred_update import defer
from minidl.optim.optimizer import Optimizer
from minidl.pending_product import PendingProduct

__all__ = ["SGD"]


class SGD(Optimizer):
    """For each parameter p with gradient g (PyTorch ``torch.optim.SGD``):

        g ← g + weight_decay · p
        if momentum ≠ 0:  b ← g on the first step, else b ← momentum · b + (1 − dampening) · g
                          g ← g + momentum · b if nesterov else b
        p ← p − lr · g

    The momentum buffer and the parameter are updated in place, one pass each (``minidl._core.axpby``).
    A weight gradient g = Xᵀ·dY that backward kept pending (``minidl.pending_product``) is never
    materialized: the GEMM that forms it writes straight into p or b, its epilogue doing the rest
    (``_core.matmul(X, dY, trans_a=True, out=p, alpha=-lr, beta=1 - lr·weight_decay)``; see
    ``_step_pending``). Without momentum that update is left for the weight's next forward product,
    which applies it in its own pass over the weight (``minidl.deferred_update``); reading the parameter
    in between applies it first.
    """

    hyper = {"lr": float, "momentum": float, "dampening": float, "weight_decay": float, "nesterov": bool}

    def __init__(self, params, lr: float, momentum: float = 0.0, weight_decay: float = 0.0,
                 nesterov: bool = False, dampening: float = 0.0):
        super().__init__(params, dict(lr=float(lr), momentum=float(momentum),
                                      dampening=float(dampening), weight_decay=float(weight_decay),
                                      nesterov=bool(nesterov)))

    def _check_group(self, group: dict) -> None:
        super()._check_group(group)
        self._check_non_negative(group, ("momentum", "weight_decay"))
        if group["dampening"] != group["dampening"]:    # any other value is PyTorch's (1 - dampening) scale
            raise ValueError(f"invalid dampening {group['dampening']}")
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError("Nesterov momentum requires a momentum > 0 and zero dampening")

    def step(self) -> None:
        changed = []                        # arrays written in place now (autograd checks saved values)
        for group, p, g in self._gradients(pending=True):
            if type(g) is PendingProduct:
                if self._step_pending(group, p, g):
                    changed.append(p.data)
                continue
            lr, momentum, dampening = group["lr"], group["momentum"], group["dampening"]
            if momentum:
                state = self.state.setdefault(p, {})
                buf = state.get("momentum_buffer")
                if buf is None:
                    buf = state["momentum_buffer"] = g.copy()     # g is in p's dtype already
                else:
                    axpby(1 - dampening, g, momentum, buf)
                if group["nesterov"]:
                    ahead = np.multiply(buf, momentum, out=self._buffer(p, "nesterov"))
                    ahead += g
                    g = ahead
                else:
                    g = buf
            axpby(-lr, g, 1.0, p.data)
            changed.append(p.data)
        note_in_place(changed, "an optimizer step (SGD)")

    def _step_pending(self, group: dict, p, product: PendingProduct) -> bool:
        """The rule above for g = P + wd·p with P = Σ Xᵀ·dY pending, P applied by GEMM epilogues:
        plain:     p ← (1 − lr·wd)·p − lr·P
        momentum:  b ← P + wd·p (first step), else b ← μ·b + (1 − dampening)·(P + wd·p);
                   p ← p − lr·b, or with Nesterov p ← (1 − lr·wd)·p − lr·μ·b − lr·P.
        False when the plain update is left for p's next forward product (then no graph holds p's array)."""
        lr, momentum, dampening, wd = group["lr"], group["momentum"], group["dampening"], group["weight_decay"]
        if not momentum:
            alpha, beta = -lr, 1 - lr * wd
            if defer(p, product, alpha, beta):                  # left for the next forward product
                return False
            product.apply(p.data, alpha=alpha, beta=beta)
            return True
        w = p.data
        state = self.state.setdefault(p, {})
        buf = state.get("momentum_buffer")
        if buf is None:
            buf = state["momentum_buffer"] = product.materialize()
            if wd:
                axpby(wd, w, 1.0, buf)
        elif wd:
            axpby((1 - dampening) * wd, w, momentum, buf)
            product.apply(buf, alpha=1 - dampening, beta=1.0)
        else:
            product.apply(buf, alpha=1 - dampening, beta=momentum)
        if group["nesterov"]:
            axpby(-lr * momentum, buf, 1 - lr * wd, w)
            product.apply(w, alpha=-lr, beta=1.0)
        else:
            axpby(-lr, buf, 1.0, w)
        return True
