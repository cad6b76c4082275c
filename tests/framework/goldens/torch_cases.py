"""The golden cases: one program, run on PyTorch and on minidl through a thin adapter (``Torch``,
``Minidl``: how to make a float64 tensor, set a parameter, hand over a gradient), so that both
frameworks make exactly the same calls.

``python tests/framework/goldens/torch_cases.py`` (in an environment with torch) prints
``torch_values.py``, the frozen PyTorch results that ``test_torch_goldens.py`` compares minidl with
everywhere; where torch is importable, that test also compares with PyTorch live. Every input is a
deterministic formula (``data``), so both sides see the same float64 numbers. PyTorch is never needed
to run the tests.
"""
from __future__ import annotations

import math
import sys

import numpy as np

STEP_LR = dict(lr=(0.1, 0.03), step_size=3, gamma=0.5, epochs=10)
COSINE = dict(lr=(0.1, 0.05), T_max=4, eta_min=0.01, epochs=13)
MULTISTEP = dict(lr=(0.1, 0.03), milestones=[2, 5, 5, 8], gamma=0.5, epochs=10)
EXPONENTIAL = dict(lr=(0.1, 0.03), gamma=0.8, epochs=6)
PLATEAU_METRICS = [1.0, 0.9, 0.95, 0.9, 0.91, 0.89, 0.9, 0.9, 0.5, 0.6, 0.7, 0.8, 0.5, 0.5, 0.5, 0.4]
LAMBDA = dict(lr=(0.1, 0.03), lr_lambda=lambda epoch: min(1.0, (epoch + 1) / 4) * 0.9 ** epoch, epochs=8)
CE_TARGETS = np.array([3, 0, 1, 1, 2])
BCE_X = np.array([[-100.0, -3.0, -0.5, 0.0, 0.5], [3.0, 100.0, 1.2, -2.0, 7.0]])
BCE_Y = np.array([[0.0, 1.0, 0.3, 1.0, 0.0], [1.0, 0.0, 0.5, 0.7, 1.0]])
ACT_X = np.linspace(-3, 3, 13)
BN_WEIGHT, BN_BIAS = np.array([1.5, -0.5, 2.0]), np.array([0.1, 0.2, -0.3])
PARAM0 = np.array([1.0, -2.0, 0.5])


def data(shape, k: int) -> np.ndarray:
    """A fixed float64 array of ``shape``: 2·sin(0.37·(k+1)·i + k), i = 1, 2, ..."""
    n = math.prod(shape)
    return (2 * np.sin(np.arange(1, n + 1) * 0.37 * (k + 1) + k)).reshape(shape)


GRADS = [data((3,), 20 + i) for i in range(5)]


class Torch:
    """PyTorch behind the adapter."""

    def __init__(self):
        import torch
        self.torch, self.nn, self.F, self.optim = torch, torch.nn, torch.nn.functional, torch.optim
        self.float64 = torch.float64

    def tensor(self, a, grad=False):
        return self.torch.tensor(np.asarray(a, dtype=np.float64), dtype=self.torch.float64, requires_grad=grad)

    def targets(self, a):
        return self.torch.tensor(a)

    def set_(self, param, values):
        with self.torch.no_grad():
            param.copy_(self.tensor(values))

    grad = tensor                          # what to assign to a parameter's .grad

    def has_activation(self, cls) -> bool:
        return True

    @staticmethod
    def numpy(t):
        return t.detach().numpy()


class Minidl:
    """minidl behind the adapter."""

    def __init__(self):
        import minidl
        from minidl import activations
        self.mdl, self.activations = minidl, activations
        self.nn, self.F, self.optim = minidl.nn, minidl.nn.functional, minidl.optim
        self.float64 = np.float64

    def tensor(self, a, grad=False):
        return self.mdl.tensor(np.asarray(a, dtype=np.float64), requires_grad=grad)

    def targets(self, a):
        return np.asarray(a)

    def set_(self, param, values):
        param.data[...] = values

    def grad(self, a):
        return np.array(a, dtype=np.float64)

    def has_activation(self, cls) -> bool:
        """False for an activation the registry lacks here (its keys are then skipped)."""
        return cls.name in self.activations.names()

    @staticmethod
    def numpy(t):
        return t.data


def run_cases(fw) -> dict:
    """{key: float64 ndarray} of every case, computed with ``fw`` (a ``Torch`` or a ``Minidl``)."""
    nn, F, T = fw.nn, fw.F, fw.tensor
    out = {}

    def put(key, t):                       # a tensor of fw, or an ndarray / list (gradients, lrs)
        out[key] = np.asarray(t if isinstance(t, (np.ndarray, list)) else fw.numpy(t), dtype=np.float64)

    # BatchNorm1d on (N, C): two training batches, then evaluation
    bn = nn.BatchNorm1d(3, dtype=fw.float64)
    fw.set_(bn.weight, BN_WEIGHT)
    fw.set_(bn.bias, BN_BIAS)
    for step, (x, c) in enumerate([(data((4, 3), 1), data((4, 3), 2)), (data((6, 3), 3), data((6, 3), 4))]):
        xt = T(x, True)
        y = bn(xt)
        (y * T(c)).sum().backward()
        put(f"bn2d.train{step}.out", y)
        put(f"bn2d.train{step}.dx", xt.grad)
        put(f"bn2d.train{step}.dweight", bn.weight.grad)
        put(f"bn2d.train{step}.dbias", bn.bias.grad)
        bn.zero_grad()
    put("bn2d.running_mean", bn.running_mean)
    put("bn2d.running_var", bn.running_var)
    put("bn2d.num_batches_tracked", bn.num_batches_tracked)
    bn.eval()
    xt = T(data((5, 3), 5), True)
    y = bn(xt)
    (y * T(data((5, 3), 6))).sum().backward()
    put("bn2d.eval.out", y)
    put("bn2d.eval.dx", xt.grad)
    put("bn2d.eval.dweight", bn.weight.grad)

    # BatchNorm1d on (N, C, L), momentum=None (cumulative average), no affine
    bn = nn.BatchNorm1d(2, momentum=None, affine=False, dtype=fw.float64)
    for step in range(3):
        xt = T(data((3, 2, 4), 10 + step), True)
        y = bn(xt)
        (y * T(data((3, 2, 4), 20 + step))).sum().backward()
        put(f"bn3d.train{step}.out", y)
        put(f"bn3d.train{step}.dx", xt.grad)
    put("bn3d.running_mean", bn.running_mean)
    put("bn3d.running_var", bn.running_var)
    bn.eval()
    put("bn3d.eval.out", bn(T(data((2, 2, 4), 30))))

    # LayerNorm over the last axis (affine) and the last two (no affine)
    ln = nn.LayerNorm(4, dtype=fw.float64)
    fw.set_(ln.weight, data((4,), 40))
    fw.set_(ln.bias, data((4,), 41))
    xt = T(data((2, 3, 4), 42), True)
    y = ln(xt)
    (y * T(data((2, 3, 4), 43))).sum().backward()
    put("ln.out", y)
    put("ln.dx", xt.grad)
    put("ln.dweight", ln.weight.grad)
    put("ln.dbias", ln.bias.grad)
    ln = nn.LayerNorm((3, 4), elementwise_affine=False, dtype=fw.float64)
    xt = T(data((2, 3, 4), 44), True)
    y = ln(xt)
    (y * T(data((2, 3, 4), 45))).sum().backward()
    put("ln2.out", y)
    put("ln2.dx", xt.grad)

    # cross_entropy, nll_loss: every reduction, with and without label smoothing
    targets = fw.targets(CE_TARGETS)
    for reduction in ("mean", "sum", "none"):
        for smoothing in (0.0, 0.2):
            zt = T(data((5, 4), 50), True)
            loss = F.cross_entropy(zt, targets, reduction=reduction, label_smoothing=smoothing)
            (loss * T(data(tuple(loss.shape), 51))).sum().backward()
            put(f"ce.{reduction}.{smoothing}.loss", loss)
            put(f"ce.{reduction}.{smoothing}.dz", zt.grad)
        lt = T(data((5, 4), 52), True)
        loss = F.nll_loss(lt, targets, reduction=reduction)
        (loss * T(data(tuple(loss.shape), 53))).sum().backward()
        put(f"nll.{reduction}.loss", loss)
        put(f"nll.{reduction}.dlogp", lt.grad)

    # class weights and ignore_index (with and without label smoothing), every reduction
    class_weight = T([0.5, 2.0, 1.0, 3.0])
    ignored = fw.targets(np.array([3, -100, 1, 1, -100]))
    for reduction in ("mean", "sum", "none"):
        for smoothing in (0.0, 0.3):
            for variant, kwargs in (("weighted", dict(weight=class_weight)),
                                    ("ignored", dict(ignore_index=-100, weight=class_weight))):
                zt = T(data((5, 4), 54), True)
                loss = F.cross_entropy(zt, ignored if variant == "ignored" else targets, reduction=reduction,
                                       label_smoothing=smoothing, **kwargs)
                (loss * T(data(tuple(loss.shape), 55))).sum().backward()
                put(f"ce.{variant}.{reduction}.{smoothing}.loss", loss)
                put(f"ce.{variant}.{reduction}.{smoothing}.dz", zt.grad)
        lt = T(data((5, 4), 56), True)
        loss = F.nll_loss(lt, ignored, reduction=reduction, weight=class_weight, ignore_index=-100)
        (loss * T(data(tuple(loss.shape), 57))).sum().backward()
        put(f"nll.ignored.{reduction}.loss", loss)
        put(f"nll.ignored.{reduction}.dlogp", lt.grad)

    # binary_cross_entropy_with_logits: plain, and with weight and pos_weight; grads for x and y
    weighted = dict(weight=T(data((5,), 60) ** 2), pos_weight=T([0.5, 1.0, 2.0, 3.0, 0.25]))
    for variant, kwargs in (("plain", {}), ("weighted", weighted)):
        for reduction in ("mean", "sum", "none"):
            xt, yt = T(BCE_X, True), T(BCE_Y, True)
            loss = F.binary_cross_entropy_with_logits(xt, yt, reduction=reduction, **kwargs)
            (loss * T(data(tuple(loss.shape), 61))).sum().backward()
            put(f"bce.{variant}.{reduction}.loss", loss)
            put(f"bce.{variant}.{reduction}.dx", xt.grad)
            put(f"bce.{variant}.{reduction}.dy", yt.grad)

    # activations: values and derivatives (0 included)
    for key, cls, args in (("leaky0.2", nn.LeakyReLU, (0.2,)), ("leaky", nn.LeakyReLU, ()), ("elu", nn.ELU, ()),
                           ("elu0.5", nn.ELU, (0.5,)), ("gelu", nn.GELU, ())):
        if not fw.has_activation(cls):
            continue
        xt = T(ACT_X, True)
        y = cls(*args)(xt)
        y.sum().backward()
        put(f"act.{key}.out", y)
        put(f"act.{key}.grad", xt.grad)

    # AdamW (PyTorch's defaults and a custom weight decay); Adam on a 0-d parameter
    for key, cls, kwargs in (("adamw.default", "AdamW", {}),
                             ("adamw.custom", "AdamW", dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1)),
                             ("adamw.amsgrad", "AdamW", dict(lr=0.05, amsgrad=True)),
                             ("adam.amsgrad", "Adam", dict(lr=0.05, weight_decay=0.1, amsgrad=True))):
        p = T(PARAM0, True)
        opt = getattr(fw.optim, cls)([p], **kwargs)
        for i, g in enumerate(GRADS):
            p.grad = fw.grad(g)
            opt.step()
            put(f"{key}.step{i}", p)
    # RMSprop and Adagrad: defaults, and every option at once
    for key, cls, kwargs in (("rmsprop.default", "RMSprop", {}),
                             ("rmsprop.custom", "RMSprop", dict(lr=0.05, alpha=0.9, eps=1e-6, weight_decay=0.1,
                                                                momentum=0.8, centered=True)),
                             ("rmsprop.centered", "RMSprop", dict(centered=True)),
                             ("adagrad.default", "Adagrad", {}),
                             ("adagrad.custom", "Adagrad", dict(lr=0.2, lr_decay=0.3, weight_decay=0.1,
                                                                initial_accumulator_value=0.5, eps=1e-6))):
        p = T(PARAM0, True)
        opt = getattr(fw.optim, cls)([p], **kwargs)
        for i, g in enumerate(GRADS):
            p.grad = fw.grad(g)
            opt.step()
            put(f"{key}.step{i}", p)
    p = T(1.5, True)
    opt = fw.optim.Adam([p], lr=0.1, weight_decay=0.01)
    for i, g in enumerate(GRADS):
        p.grad = fw.grad(g[0])
        opt.step()
        put(f"adam0d.step{i}", p)

    # schedulers: the learning rates get_last_lr() gives after each epoch, two groups
    for key, cls, cfg in (("steplr", fw.optim.lr_scheduler.StepLR, STEP_LR),
                          ("cosine", fw.optim.lr_scheduler.CosineAnnealingLR, COSINE),
                          ("multisteplr", fw.optim.lr_scheduler.MultiStepLR, MULTISTEP),
                          ("exponentiallr", fw.optim.lr_scheduler.ExponentialLR, EXPONENTIAL),
                          ("lambdalr", fw.optim.lr_scheduler.LambdaLR, LAMBDA)):
        params = [T(1.0, True), T(2.0, True)]
        opt = fw.optim.SGD([{"params": [params[0]], "lr": cfg["lr"][0]},
                            {"params": [params[1]], "lr": cfg["lr"][1]}], lr=cfg["lr"][0])
        sched = cls(opt, **{k: v for k, v in cfg.items() if k not in ("lr", "epochs")})
        lrs = [sched.get_last_lr()]
        for _ in range(cfg["epochs"]):
            opt.step()
            sched.step()
            lrs.append(sched.get_last_lr())
        put(f"{key}.lrs", np.array(lrs))

    # ReduceLROnPlateau: the learning rates after each epoch's metric, two groups
    for key, kwargs in (("plateau.min", dict(patience=1, factor=0.5)),
                        ("plateau.max_abs", dict(mode="max", threshold_mode="abs", threshold=0.05, patience=0,
                                                 cooldown=2, factor=0.3, min_lr=[0.02, 0.0]))):
        params = [T(1.0, True), T(2.0, True)]
        opt = fw.optim.SGD([{"params": [params[0]], "lr": 0.1}, {"params": [params[1]], "lr": 0.03}], lr=0.1)
        sched = fw.optim.lr_scheduler.ReduceLROnPlateau(opt, **kwargs)
        lrs = []
        for metric in PLATEAU_METRICS:
            opt.step()
            sched.step(metric)
            lrs.append([group["lr"] for group in opt.param_groups])
        put(f"{key}.lrs", np.array(lrs))

    # clip_grad_norm_: the total norm and the clipped gradients (the third parameter has no .grad)
    for norm_type in (2.0, 1.0, math.inf, 3.0):
        for max_norm in (1.0, 100.0):
            params = [T(np.zeros((2, 3)), True), T(np.zeros(4), True), T(np.zeros(2), True)]
            params[0].grad, params[1].grad = fw.grad(data((2, 3), 70)), fw.grad(data((4,), 71))
            total = nn.utils.clip_grad_norm_(params, max_norm, norm_type=norm_type)
            key = f"clip.{norm_type}.{max_norm}"
            put(f"{key}.total", total)
            put(f"{key}.g0", params[0].grad)
            put(f"{key}.g1", params[1].grad)
    return out


def main() -> None:
    import torch
    values = run_cases(Torch())
    print(f'"""PyTorch {torch.__version__} results of the cases in torch_cases.py (float64), generated by\n'
          f'``python tests/framework/goldens/torch_cases.py > tests/framework/goldens/torch_values.py``."""')
    print("GOLDENS = {")
    for key, value in values.items():
        print(f"    {key!r}: {np.asarray(value).tolist()!r},")
    print("}")


if __name__ == "__main__":
    sys.exit(main())
