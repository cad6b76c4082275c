"""Learning-rate schedules with PyTorch's formulas and calling convention (``torch.optim.lr_scheduler``).

    scheduler = optim.lr_scheduler.StepLR(opt, step_size=10, gamma=0.1)
    for epoch in range(epochs):
        train_one_epoch(...)        # opt.step() for every batch
        scheduler.step()            # once per epoch, after the optimizer's steps

A scheduler writes each group's ``"lr"`` (which the optimizer's ``state_dict`` saves) and counts epochs
in ``last_epoch``; construction sets epoch 0 (the base learning rates). Each ``step()`` applies
PyTorch's recursive form to the current ``"lr"``, so the values match PyTorch's step for step and
also compose with learning rates changed by hand; ``closed_form()`` gives the textbook formula.
"""
from __future__ import annotations

import bisect
import collections
import math
import numbers
from collections.abc import Mapping

import numpy as np

from minidl.optim.optimizer import Optimizer, state_count, state_number

__all__ = ["LRScheduler", "StepLR", "MultiStepLR", "ExponentialLR", "LambdaLR", "CosineAnnealingLR",
           "ReduceLROnPlateau"]


def _count(value) -> bool:
    """Whether ``value`` is a non-negative integer (a bool is not)."""
    return not isinstance(value, bool) and isinstance(value, numbers.Integral) and value >= 0


def _state_dict_check(state, scheduler: str, keys) -> str:
    """TypeError unless ``state`` is a dict; KeyError naming the ``keys`` it lacks. Returns the prefix of the
    messages about its values."""
    if not isinstance(state, Mapping):
        raise TypeError(f"{scheduler}.load_state_dict expects a dict, got {type(state).__name__}")
    missing = [k for k in keys if k not in state]
    if missing:
        raise KeyError(f"{scheduler} state dict lacks {missing} (saved for another number of groups?)")
    return f"{scheduler} state dict:"


def _rate(state, key: str, what: str) -> float:
    """A saved learning rate: a number >= 0 (NaN is not)."""
    rate = state_number(state, key, what)
    if not rate >= 0:
        raise ValueError(f"{what} '{key}' must be a learning rate >= 0, got {rate}")
    return rate


def _positive_count(state, key: str, what: str) -> int:
    return state_count(state, key, what, minimum=1)


def _finite(state, key: str, what: str) -> float:
    number = state_number(state, key, what)
    if not math.isfinite(number):
        raise ValueError(f"{what} '{key}' must be finite, got {number}")
    return number


def _fraction(state, key: str, what: str) -> float:
    """A number in [0, 1), as ReduceLROnPlateau's constructor checks its factor."""
    number = state_number(state, key, what)
    if not 0 <= number < 1:
        raise ValueError(f"{what} '{key}' must be in [0, 1), got {number}")
    return number


class LRScheduler:
    """Base class: ``base_lrs`` (each group's ``"initial_lr"``), ``last_epoch``, ``step()``,
    ``get_last_lr()``, and a flat ``state_dict()`` of numbers (ready for ``mdl.save``)."""

    #: the schedule's own numbers, saved in the state dict and restored from it as PyTorch's are (a StepLR
    #: resumed with another step_size follows the saved one): {attribute: reads and checks a state dict's value}
    settings: dict = {}

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(optimizer).__name__} is not an Optimizer")
        self.optimizer = optimizer
        if last_epoch == -1:
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])
        else:
            for i, group in enumerate(optimizer.param_groups):
                if "initial_lr" not in group:
                    raise KeyError(f"param_groups[{i}] has no 'initial_lr': resuming with last_epoch="
                                   f"{last_epoch} needs the scheduler that was created with last_epoch=-1")
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self._step_count = 0
        self._initial = True
        self.step()
        self._initial = False

    def get_lr(self) -> list:
        """The learning rates for ``last_epoch`` (just incremented), from the groups' current ones."""
        raise NotImplementedError

    def closed_form(self) -> list:
        """The learning rates at ``last_epoch`` from ``base_lrs`` alone (the formula of the docs)."""
        raise NotImplementedError

    def step(self) -> None:
        """Advance one epoch and set every group's learning rate."""
        self._step_count += 1
        self.last_epoch += 1
        for group, lr in zip(self.optimizer.param_groups, self.get_lr()):
            group["lr"] = lr
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def get_last_lr(self) -> list:
        """The learning rates the last ``step()`` (or construction) set, one per group."""
        return list(self._last_lr)

    def state_dict(self) -> dict:
        """{"last_epoch", "_step_count", "base_lrs.<i>", "last_lr.<i>", and the ``settings``}: numbers only."""
        out = {"last_epoch": self.last_epoch, "_step_count": self._step_count}
        for i, (base, last) in enumerate(zip(self.base_lrs, self._last_lr)):
            out[f"base_lrs.{i}"] = base
            out[f"last_lr.{i}"] = last
        for name in self.settings:
            out[name] = getattr(self, name)
        return out

    def load_state_dict(self, state: dict) -> None:
        """Restore what ``state_dict`` saved (values may be 0-d arrays, as ``mdl.load`` returns them); every
        value is checked before anything changes. A state dict without the ``settings`` (saved before they
        were) keeps the constructor's."""
        n = len(self.optimizer.param_groups)
        what = _state_dict_check(state, type(self).__name__, ["last_epoch", "_step_count"]
                                 + [f"{k}.{i}" for k in ("base_lrs", "last_lr") for i in range(n)])
        last_epoch = state_count(state, "last_epoch", what)
        step_count = state_count(state, "_step_count", what, minimum=1)
        base_lrs = [_rate(state, f"base_lrs.{i}", what) for i in range(n)]
        last_lr = [_rate(state, f"last_lr.{i}", what) for i in range(n)]
        settings = {name: read(state, name, what) for name, read in self.settings.items() if name in state}
        self.last_epoch, self._step_count, self.base_lrs, self._last_lr = last_epoch, step_count, base_lrs, last_lr
        for name, value in settings.items():
            setattr(self, name, value)


def _positive_int(value, what: str) -> int:
    """``value`` as an int if it is a positive integer of any integral type (np.int64 too), else ValueError."""
    if not _count(value) or value == 0:
        raise ValueError(f"{what} must be a positive integer, got {value!r}")
    return int(value)


class StepLR(LRScheduler):
    """lr = base_lr · gamma^⌊epoch / step_size⌋: multiplied by ``gamma`` every ``step_size`` epochs."""

    settings = {"step_size": _positive_count, "gamma": _finite}

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1, last_epoch: int = -1):
        self.step_size = _positive_int(step_size, "StepLR: step_size")
        self.gamma = float(gamma)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list:
        lrs = [group["lr"] for group in self.optimizer.param_groups]
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return lrs
        return [lr * self.gamma for lr in lrs]

    def closed_form(self) -> list:
        return [base * self.gamma ** (self.last_epoch // self.step_size) for base in self.base_lrs]


class MultiStepLR(LRScheduler):
    """lr = base_lr · gamma^(number of milestones ≤ epoch): multiplied by ``gamma`` at each milestone epoch
    (a milestone listed twice multiplies twice, as PyTorch's)."""

    settings = {"gamma": _finite}

    def __init__(self, optimizer: Optimizer, milestones, gamma: float = 0.1, last_epoch: int = -1):
        milestones = list(milestones)
        for milestone in milestones:
            if not _count(milestone):
                raise ValueError(f"MultiStepLR: milestones must be non-negative integers, got {milestone!r}")
        self.milestones = collections.Counter(int(milestone) for milestone in milestones)
        self.gamma = float(gamma)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list:
        lrs = [group["lr"] for group in self.optimizer.param_groups]
        if self.last_epoch not in self.milestones:
            return lrs
        return [lr * self.gamma ** self.milestones[self.last_epoch] for lr in lrs]

    def closed_form(self) -> list:
        passed = bisect.bisect_right(sorted(self.milestones.elements()), self.last_epoch)
        return [base * self.gamma ** passed for base in self.base_lrs]

    def state_dict(self) -> dict:
        """The base class's, and "milestones": every milestone epoch, as often as it was listed."""
        milestones = np.array(sorted(self.milestones.elements()), dtype=np.int64)
        return {**super().state_dict(), "milestones": milestones}

    def load_state_dict(self, state: dict) -> None:
        milestones = None
        if isinstance(state, Mapping) and "milestones" in state:
            value = np.asarray(state["milestones"])
            if value.ndim != 1 or value.dtype.kind not in "iu" or (value < 0).any():
                raise ValueError(f"MultiStepLR state dict: 'milestones' must be non-negative integers, got {value}")
            milestones = collections.Counter(int(m) for m in value)
        super().load_state_dict(state)
        if milestones is not None:
            self.milestones = milestones


class ExponentialLR(LRScheduler):
    """lr = base_lr · gamma^epoch: multiplied by ``gamma`` every epoch."""

    settings = {"gamma": _finite}

    def __init__(self, optimizer: Optimizer, gamma: float, last_epoch: int = -1):
        self.gamma = float(gamma)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list:
        lrs = [group["lr"] for group in self.optimizer.param_groups]
        return lrs if self._initial else [lr * self.gamma for lr in lrs]     # resumed: lr is already right

    def closed_form(self) -> list:
        return [base * self.gamma ** self.last_epoch for base in self.base_lrs]


class LambdaLR(LRScheduler):
    """lr = base_lr · lr_lambda(epoch), ``lr_lambda`` a function of the epoch (or one per group), e.g. a
    linear warm-up ``lambda epoch: min(1, (epoch + 1) / 5)``. The functions are not in ``state_dict``
    (a function is code, not state): give the same ones when resuming."""

    def __init__(self, optimizer: Optimizer, lr_lambda, last_epoch: int = -1):
        groups = len(optimizer.param_groups) if isinstance(optimizer, Optimizer) else 0
        functions = list(lr_lambda) if isinstance(lr_lambda, (list, tuple)) else [lr_lambda] * groups
        if len(functions) != groups:
            raise ValueError(f"LambdaLR: {len(functions)} lr_lambda functions for {groups} parameter groups")
        if not all(callable(f) for f in functions):
            raise TypeError("LambdaLR: lr_lambda must be a function of the epoch (or a list of them)")
        self.lr_lambdas = functions
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list:
        return self.closed_form()

    def closed_form(self) -> list:
        return [base * float(f(self.last_epoch)) for base, f in zip(self.base_lrs, self.lr_lambdas)]


class CosineAnnealingLR(LRScheduler):
    """lr = eta_min + (base_lr - eta_min)·(1 + cos(π·epoch/T_max))/2 (Loshchilov & Hutter 2017, SGDR
    without restarts): from base_lr at epoch 0 down to eta_min at T_max, then back up (a cosine of
    period 2·T_max, as PyTorch's).

    ``step()`` uses PyTorch's recursive form lrₜ = eta_min + (lrₜ₋₁ - eta_min)·(1 + cos(πt/T))/(1 + cos(π(t-1)/T)),
    with the increment (base_lr - eta_min)(1 - cos(π/T))/2 where the denominator vanishes.
    """

    settings = {"T_max": _positive_count, "eta_min": _finite}

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0, last_epoch: int = -1):
        self.T_max = _positive_int(T_max, "CosineAnnealingLR: T_max")
        self.eta_min = float(eta_min)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list:
        groups = self.optimizer.param_groups
        t, period, eta_min = self.last_epoch, self.T_max, self.eta_min
        if self._initial:
            return [group["lr"] for group in groups]
        if self._step_count == 1 and t > 0:        # resumed with last_epoch >= 0: no previous lr to scale
            return self.closed_form()
        if (t - 1 - period) % (2 * period) == 0:
            return [group["lr"] + (base - eta_min) * (1 - math.cos(math.pi / period)) / 2
                    for base, group in zip(self.base_lrs, groups)]
        return [(1 + math.cos(math.pi * t / period)) / (1 + math.cos(math.pi * (t - 1) / period))
                * (group["lr"] - eta_min) + eta_min for group in groups]

    def closed_form(self) -> list:
        return [self.eta_min + (base - self.eta_min) * (1 + math.cos(math.pi * self.last_epoch / self.T_max)) / 2
                for base in self.base_lrs]


class ReduceLROnPlateau:
    """Multiply each group's lr by ``factor`` (not below its ``min_lr``) once a metric has not improved for
    more than ``patience`` epochs, then wait ``cooldown`` epochs (PyTorch's rule): ``scheduler.step(val_loss)``
    once per epoch. Improvement, for mode "min" ("max" mirrors it): below best·(1 - threshold) with
    threshold_mode "rel", below best - threshold with "abs". A reduction smaller than ``eps`` is skipped.
    """

    #: as LRScheduler.settings (mode and threshold_mode, strings, stay the constructor's)
    settings = {"factor": _fraction, "patience": state_count, "threshold": _finite, "cooldown": state_count,
                "eps": _finite}

    def __init__(self, optimizer: Optimizer, mode: str = "min", factor: float = 0.1, patience: int = 10,
                 threshold: float = 1e-4, threshold_mode: str = "rel", cooldown: int = 0, min_lr=0.0,
                 eps: float = 1e-8):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(optimizer).__name__} is not an Optimizer")
        if mode not in ("min", "max") or threshold_mode not in ("rel", "abs"):
            raise ValueError(f"ReduceLROnPlateau: mode must be 'min' or 'max' and threshold_mode 'rel' or 'abs', "
                             f"got {mode!r} and {threshold_mode!r}")
        if not 0 <= factor < 1:
            raise ValueError(f"ReduceLROnPlateau: factor must be in [0, 1), got {factor!r}")
        for name, value in (("patience", patience), ("cooldown", cooldown)):
            if not _count(value):
                raise ValueError(f"ReduceLROnPlateau: {name} must be a non-negative integer, got {value!r}")
        groups = optimizer.param_groups
        min_lrs = list(min_lr) if isinstance(min_lr, (list, tuple)) else [min_lr] * len(groups)
        if len(min_lrs) != len(groups):
            raise ValueError(f"ReduceLROnPlateau: {len(min_lrs)} min_lr values for {len(groups)} parameter groups")
        self.optimizer, self.mode, self.factor, self.patience = optimizer, mode, float(factor), int(patience)
        self.threshold, self.threshold_mode, self.cooldown = float(threshold), threshold_mode, int(cooldown)
        self.min_lrs, self.eps = [float(m) for m in min_lrs], float(eps)
        self._default_min_lr = None if isinstance(min_lr, (list, tuple)) else float(min_lr)
        self.best = math.inf if mode == "min" else -math.inf
        self.num_bad_epochs, self.cooldown_counter, self.last_epoch = 0, 0, 0
        self._last_lr = [group["lr"] for group in groups]

    def _better(self, value: float) -> bool:
        sign = 1.0 if self.mode == "min" else -1.0
        if self.threshold_mode == "rel":
            return sign * value < sign * self.best * (1 - sign * self.threshold)
        return sign * value < sign * self.best - self.threshold

    def step(self, metric) -> None:
        """One epoch's value of the watched metric (a number or a one-element tensor)."""
        value = float(metric.item() if hasattr(metric, "item") else metric)
        self.last_epoch += 1
        if self._better(value):
            self.best, self.num_bad_epochs = value, 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0
        if self.num_bad_epochs > self.patience:
            self._fit_min_lrs_to_the_groups()
            for group, low in zip(self.optimizer.param_groups, self.min_lrs):
                new = max(group["lr"] * self.factor, low)
                if group["lr"] - new > self.eps:
                    group["lr"] = new
            self.cooldown_counter, self.num_bad_epochs = self.cooldown, 0
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def _fit_min_lrs_to_the_groups(self) -> None:
        """A group added to the optimizer since (add_param_group) gets the one min_lr given, as PyTorch's;
        with one per group given, the count must still match (zip would leave the new group unreduced)."""
        groups = len(self.optimizer.param_groups)
        if groups == len(self.min_lrs):
            return
        if self._default_min_lr is None:
            raise RuntimeError(f"ReduceLROnPlateau: the optimizer has {groups} parameter groups, min_lr gave "
                             f"{len(self.min_lrs)}; set scheduler.min_lrs to one value per group")
        self.min_lrs = [self._default_min_lr] * groups

    def get_last_lr(self) -> list:
        return list(self._last_lr)

    def state_dict(self) -> dict:
        """{"best", "num_bad_epochs", "cooldown_counter", "last_epoch", and the ``settings``}: numbers only (the
        lrs live in the optimizer's state dict)."""
        return {"best": self.best, "num_bad_epochs": self.num_bad_epochs, "cooldown_counter": self.cooldown_counter,
                "last_epoch": self.last_epoch, **{name: getattr(self, name) for name in self.settings}}

    def load_state_dict(self, state: dict) -> None:
        """Restore what ``state_dict`` saved; every value is checked before anything changes."""
        what = _state_dict_check(state, "ReduceLROnPlateau", ("best", "num_bad_epochs", "cooldown_counter",
                                                               "last_epoch"))
        best = state_number(state, "best", what)
        if math.isnan(best):
            raise ValueError(f"{what} 'best' is NaN")
        counts = [state_count(state, key, what) for key in ("num_bad_epochs", "cooldown_counter", "last_epoch")]
        settings = {name: read(state, name, what) for name, read in self.settings.items() if name in state}
        self.best = best
        self.num_bad_epochs, self.cooldown_counter, self.last_epoch = counts
        for name, value in settings.items():
            setattr(self, name, value)
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]
