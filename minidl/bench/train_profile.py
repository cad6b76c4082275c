"""`minidl bench train --profile`: where minidl's training step spends its time, in this process.

Splits the wall time of each step into: the compiled kernels (minidl._core matmul and sigmoid, timed
through ``minidl.ops.wrap_kernels``, the hook every kernel call of the step goes through), the
optimizer's update (SGD.step), and the rest (Python: graph building, the backward sweep, loss, bias
sums, allocation). Then prints cProfile's top functions by own time.
"""
from __future__ import annotations

import contextlib
import time


def _timer(totals: dict, label: str):
    """A wrapper factory ``(name, fn) -> fn'`` whose wrappers add their wall time to totals[label]."""
    def wrap(name, fn):
        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                totals[label] = totals.get(label, 0.0) + time.perf_counter() - start
        return timed
    return wrap


@contextlib.contextmanager
def _timed(owner, names: tuple[str, ...], wrap):
    """Replace owner.<name> by wrap(name, owner.<name>); restore on exit."""
    saved = {name: getattr(owner, name) for name in names}
    for name, fn in saved.items():
        setattr(owner, name, wrap(name, fn))
    try:
        yield
    finally:
        for name, fn in saved.items():
            setattr(owner, name, fn)


def profile(batch: int, threads: int, steps: int = 30, top: int = 12) -> dict:
    """Run ``steps`` minidl steps; print and return the split in ms per step."""
    import cProfile
    import io
    import pstats

    from minidl import ops, optim
    from minidl.bench import train_problem
    from minidl.bench.step_minidl import MinidlStep

    step = MinidlStep(train_problem.initial_weights(0), train_problem.LEARNING_RATE, threads)
    data = [step.prepare(x, y) for x, y in train_problem.batches(batch)]
    for i in range(5):
        step(*data[i % len(data)])
    totals: dict = {}
    with ops.wrap_kernels(_timer(totals, "kernels")), _timed(optim.SGD, ("step",), _timer(totals, "update")):
        start = time.perf_counter()
        for i in range(steps):
            step(*data[i % len(data)])
        total = time.perf_counter() - start
    split = {key: totals.get(key, 0.0) / steps * 1e3 for key in ("kernels", "update")}
    split["total"] = total / steps * 1e3
    split["rest"] = split["total"] - split["kernels"] - split["update"]
    print(f"minidl step, batch {batch}, {threads} thread(s), {steps} steps: {split['total']:.2f} ms/step = "
          f"kernels {split['kernels']:.2f} + SGD update {split['update']:.2f} + rest (Python, NumPy) "
          f"{split['rest']:.2f}")
    profiler = cProfile.Profile()
    profiler.enable()
    for i in range(steps):
        step(*data[i % len(data)])
    profiler.disable()
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(top)
    print("\n".join(line for line in text.getvalue().splitlines()[4:] if line.strip()))
    return split
