"""Timing two implementations fairly: interleaved rounds, warm-up, best and median, pauses between them.

Why the pauses: NumPy's OpenBLAS workers spin-wait for ~0.1 s after a multithreaded call, and OpenMP
workers spin after a parallel region too; on a machine with two cores a kernel started in that window
shares its cores with spinning threads of the other pool (measured here: 36 instead of 130+ GFLOP/s).
A pause longer than the spin window lets each library start from idle cores.
"""
from __future__ import annotations

import dataclasses
import statistics
import time
from typing import Callable


@dataclasses.dataclass
class Timing:
    """Per-call wall times in seconds of one implementation."""

    samples: list[float]

    @property
    def best(self) -> float:
        return min(self.samples)

    @property
    def median(self) -> float:
        return statistics.median(self.samples)


def calls_for(fn: Callable[[], object], target_seconds: float) -> int:
    """How many back-to-back calls of fn take about target_seconds (at least 1)."""
    start = time.perf_counter()
    fn()
    elapsed = time.perf_counter() - start
    return max(1, min(1000, int(target_seconds / max(elapsed, 1e-7))))


def compare(
    implementations: dict[str, Callable[[], object]],
    rounds: int = 5,
    block_seconds: float = 0.02,
    pause: float = 0.15,
) -> dict[str, Timing]:
    """Time each implementation in interleaved rounds: A-block, pause, B-block, pause, A-block, ...

    Each block is a warm-up call plus enough timed calls to last ~block_seconds; every call is one sample.
    """
    counts = {}
    for name, fn in implementations.items():
        fn()  # warm-up: page faults, packing buffers, thread start
        counts[name] = calls_for(fn, block_seconds)
        time.sleep(pause)
    samples: dict[str, list[float]] = {name: [] for name in implementations}
    for _ in range(rounds):
        for name, fn in implementations.items():
            fn()
            for _ in range(counts[name]):
                start = time.perf_counter()
                fn()
                samples[name].append(time.perf_counter() - start)
            time.sleep(pause)
    return {name: Timing(values) for name, values in samples.items()}
