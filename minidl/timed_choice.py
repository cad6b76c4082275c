"""Pick the faster of two ways of doing the same work, by timing both where they run.

Some choices between two code paths that give the same results bit for bit depend on the machine more than
any rule found: SGD's update fused into the next forward product (``_core.matmul_after_update``, one pass
over the weight instead of two) against the update as a GEMM of its own, then the product. On the 2-core
Xeon (AVX-512) the fused call was the faster; on the 2-core EPYC (Zen 3, AVX2, the five 1000x1000 weights
in a 32 MiB L3) the whole 784-1000x5-10 step with the separate GEMMs was 3-6% faster at batch 10 on two
threads and 4% on one, as fast at 32 and 3% slower at 64 (a build that never fuses against one that always
does, alternating in one process: ``tools/ab_kernels.py --step``). So each kind of call (a key: shapes,
dtype, threads) times both ways:

- the first ``warmup`` calls of each way are not counted (packing buffers, page faults);
- then the two alternate until each has ``trials`` times, and the one with the smaller median runs from
  then on;
- after ``recheck`` calls both are timed again, so a choice made while the machine was busy does not last.

Both ways give the same numbers, so the choice changes only the time. Up to ``max_keys`` kinds of calls
are remembered (then all are forgotten and measured again). Against always fusing, on the EPYC (blocks of
steps alternating in one process, medians of 41-61 per-block ratios): batch 10 5-6% faster on two threads
and 9% on one, batch 32 7%, batch 64 within 1% either way (there it chose either way from run to run).
"""
from __future__ import annotations

import statistics

__all__ = ["TimedChoice", "FixedChoice"]


class _Key:
    __slots__ = ("times", "skipped", "chosen", "calls")

    def __init__(self):
        self.times = ([], [])           # the counted seconds of way 0 and way 1
        self.skipped = [0, 0]           # warm-up calls of each way
        self.chosen = None              # 0 or 1 once measured
        self.calls = 0                  # since the choice


class TimedChoice:
    """``way = choice.pick(key)``, run way 0 or 1 timing it, ``choice.took(key, way, seconds)``."""

    def __init__(self, trials: int = 16, warmup: int = 2, recheck: int = 4000, max_keys: int = 64):
        if trials < 1 or warmup < 0 or recheck < 1 or max_keys < 1:
            raise ValueError(f"TimedChoice needs trials >= 1, warmup >= 0, recheck >= 1 and max_keys >= 1, got "
                             f"{trials}, {warmup}, {recheck}, {max_keys}")
        self.trials, self.warmup, self.recheck, self.max_keys = trials, warmup, recheck, max_keys
        self._keys: dict = {}

    def pick(self, key) -> int:
        """The way to run now: the chosen one, or while measuring the one with fewer calls (way 0 first)."""
        state = self._keys.get(key)
        if state is None:
            if len(self._keys) >= self.max_keys:
                self._keys.clear()
            state = self._keys[key] = _Key()
        if state.chosen is not None:
            state.calls += 1
            if state.calls <= self.recheck:
                return state.chosen
            state = self._keys[key] = _Key()        # measure both again
        counts = [len(state.times[way]) + state.skipped[way] for way in (0, 1)]
        return 0 if counts[0] <= counts[1] else 1

    def took(self, key, way: int, seconds: float) -> None:
        """Count ``seconds`` for ``way`` while ``key`` is being measured; choose once both have their trials."""
        state = self._keys.get(key)
        if state is None or state.chosen is not None:
            return
        if state.skipped[way] < self.warmup:
            state.skipped[way] += 1
            return
        state.times[way].append(seconds)
        if min(len(t) for t in state.times) >= self.trials:
            medians = [statistics.median(t) for t in state.times]
            state.chosen, state.calls = (0 if medians[0] <= medians[1] else 1), 0

    def chosen(self, key):
        """0 or 1 once ``key`` is measured, else None (while measuring, or never seen)."""
        state = self._keys.get(key)
        return None if state is None else state.chosen


class FixedChoice:
    """Always ``way``, with TimedChoice's methods: to compare one way with another (tools/ab_kernels.py)."""

    def __init__(self, way: int):
        self.way = way

    def pick(self, key) -> int:
        return self.way

    def took(self, key, way: int, seconds: float) -> None:
        pass

    def chosen(self, key) -> int:
        return self.way
