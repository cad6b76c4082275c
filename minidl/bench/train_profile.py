"""`minidl bench train --profile`: where minidl's training step spends its time, in this process, beside the
time the machine needs at least for the same work.

Every compiled kernel call of the step (minidl._core matmul and sigmoid, through ``minidl.ops.wrap_kernels``;
SGD's axpby) is timed and filed under a part of the step: the forward GEMMs X·W, those that apply the last
step's SGD update W ← W − lr·XᵀdY in their pass over W or just before it, whichever was timed faster here
(``minidl.deferred_update``), the input gradients dY·Wᵀ, the weight gradients XᵀdY materialized in backward,
the GEMMs inside SGD.step (pending weight gradients applied in the epilogue), sigmoid forward and backward,
SGD's axpby (biases, momentum);
what remains is Python and NumPy (graph building, the backward sweep, loss, bias sums). Each kernel call
also counts the bytes it must move (every operand read once, its output written once; read too when
accumulated into) and its flops, and its bound is max(bytes ÷ bandwidth, flops ÷ GEMM peak), both measured
here first: axpby y ← x + y/2 streaming over two arrays the size of the model's parameters (2 × 19 MB,
3 × 19 MB moved: x read, y read and written; the weights the step reads and writes are 19 MB, which stays in
a large L3), and a 1000³ float32 GEMM. The "x bound" column is measured ms ÷ bound ms; the rows (kernels,
SGD.step's own Python, the rest) add up to the step. Then prints cProfile's top functions by own time.
"""
from __future__ import annotations

import time

PARTS = {
    "forward": "forward GEMM X·W",
    "forward_update": "X·W applying the last SGD update",
    "input_gradient": "input gradient dY·Wᵀ",
    "weight_gradient": "weight gradient XᵀdY (materialized)",
    "update_gemm": "SGD: W −= lr·XᵀdY (GEMM epilogue)",
    "sigmoid_forward": "sigmoid forward",
    "sigmoid_backward": "sigmoid backward",
    "axpby": "SGD: axpby (biases, momentum)",
}


class _Ledger:
    """Per part: calls, seconds, bytes, flops and bound seconds, summed over the timed calls."""

    def __init__(self, bandwidth: float, peak: float):
        self.bandwidth, self.peak = bandwidth, peak
        self.parts = {key: dict(calls=0, seconds=0.0, bytes=0, flops=0, bound=0.0) for key in PARTS}
        self.in_update = False

    def add(self, part: str, seconds: float, nbytes: int, flops: int = 0) -> None:
        entry = self.parts[part]
        entry["calls"] += 1
        entry["seconds"] += seconds
        entry["bytes"] += nbytes
        entry["flops"] += flops
        entry["bound"] += max(nbytes / self.bandwidth, flops / self.peak)

    def kernel_wrapper(self, name, kernel):
        """For ``ops.wrap_kernels``: time each call and file it under its part."""
        def timed(*args, **kwargs):
            start = time.perf_counter()
            result = kernel(*args, **kwargs)
            seconds = time.perf_counter() - start
            if name == "matmul":
                self.add(self._gemm_part(kwargs), seconds, *_gemm_cost(*args[:2], **kwargs))
            elif name == "matmul_after_update":
                self.add("forward_update", seconds, *_fused_update_cost(*args[:4]))
            else:
                operands = 2 if name == "sigmoid_forward" else 3
                self.add(name, seconds, operands * args[0].nbytes)
            return result
        return timed

    def _gemm_part(self, kwargs) -> str:
        if self.in_update:
            return "update_gemm"
        if kwargs.get("trans_a"):
            return "weight_gradient"
        return "input_gradient" if kwargs.get("trans_b") else "forward"

    def axpby_wrapper(self, axpby):
        def timed(alpha, x, beta, y):
            start = time.perf_counter()
            result = axpby(alpha, x, beta, y)
            self.add("axpby", time.perf_counter() - start, 3 * y.nbytes)
            return result
        return timed

    def step_wrapper(self, step):
        def timed(optimizer):
            start = time.perf_counter()
            self.in_update = True
            try:
                return step(optimizer)
            finally:
                self.in_update = False
                self.update_seconds += time.perf_counter() - start
        self.update_seconds = 0.0
        return timed


def _gemm_cost(a, b, trans_a=False, trans_b=False, out=None, alpha=1.0, beta=0.0, bias=None) -> tuple[int, int]:
    """(bytes, flops) of alpha·op(a)·op(b) + beta·out + bias: a, b (and bias) read, the output written (and
    read if beta ≠ 0)."""
    m, k = (a.shape[1], a.shape[0]) if trans_a else a.shape
    n = b.shape[0] if trans_b else b.shape[1]
    outputs = 2 if beta else 1
    return a.itemsize * (m * k + k * n + outputs * m * n + (0 if bias is None else n)), 2 * m * n * k


def _fused_update_cost(x, w, u, v) -> tuple[int, int]:
    """(bytes, flops) of x·w after w ← β·w + α·uᵀv in one pass: x, u, v read, w read and written, the
    product written."""
    (m, k), n, r = x.shape, w.shape[1], u.shape[0]
    return w.itemsize * (m * k + r * (k + n) + 2 * k * n + m * n), 2 * (m + r) * k * n


def machine_limits(parameters: int, repeats: int = 5) -> tuple[float, float]:
    """(bytes/s that axpby streams over two float32 arrays of ``parameters`` elements, float32 GEMM
    flops/s on 1000³), best of ``repeats``, at the current thread count: each call waits out a back-off to
    one thread first (up to its 0.5 s; minidl/_core/csrc/dispatch.c), else a busy moment before the
    measurement gave the one-thread rate and a bound above the step it bounds (87 GFLOP/s on 2 threads,
    against 156-161 in the runs before and after)."""
    import numpy as np

    from minidl import _core

    x, y = np.ones(parameters, np.float32), np.ones(parameters, np.float32)
    a, b = np.ones((1000, 1000), np.float32), np.ones((1000, 1000), np.float32)
    out = np.empty_like(a)

    def best(fn):
        fn()
        times = []
        for _ in range(repeats):
            waited_until = time.perf_counter() + 1.0
            while _core.effective_num_threads() < _core.get_num_threads() and time.perf_counter() < waited_until:
                time.sleep(0.005)
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return min(times)

    bandwidth = 3 * x.nbytes / best(lambda: _core.axpby(1.0, x, 0.5, y))
    peak = 2e9 / best(lambda: _core.matmul(a, b, out=out))
    return bandwidth, peak


def profile(batch: int, threads: int, steps: int = 30, top: int = 12) -> dict:
    """Run ``steps`` minidl steps; print and return the split (ms per step) and the bound of each part."""
    import cProfile
    import io
    import pstats

    from minidl import ops, optim
    from minidl.bench import train_problem
    from minidl.bench.step_minidl import MinidlStep
    from minidl.optim import sgd

    step = MinidlStep(train_problem.initial_weights(0), train_problem.LEARNING_RATE, threads)
    data = [step.prepare(x, y) for x, y in train_problem.batches(batch)]
    for i in range(5):
        step(*data[i % len(data)])
    bandwidth, peak = machine_limits(train_problem.parameter_count())
    ledger = _Ledger(bandwidth, peak)
    original_step, original_axpby = optim.SGD.step, sgd.axpby
    optim.SGD.step, sgd.axpby = ledger.step_wrapper(original_step), ledger.axpby_wrapper(original_axpby)
    try:
        with ops.wrap_kernels(ledger.kernel_wrapper):
            start = time.perf_counter()
            for i in range(steps):
                step(*data[i % len(data)])
            total = time.perf_counter() - start
    finally:
        optim.SGD.step, sgd.axpby = original_step, original_axpby
    per_step = 1e3 / steps
    parts = {key: {k: v * per_step if k in ("seconds", "bound") else v / steps for k, v in entry.items()}
             for key, entry in ledger.parts.items()}        # seconds, bound: ms per step; the rest per step
    in_update = parts["update_gemm"]["seconds"] + parts["axpby"]["seconds"]
    split = {"total": total * per_step,
             "kernels": sum(p["seconds"] for p in parts.values()) - in_update,
             "update": ledger.update_seconds * per_step}
    split["rest"] = split["total"] - split["kernels"] - split["update"]
    split["bound"] = sum(p["bound"] for p in parts.values())
    split.update(parts=parts, bandwidth_gb_s=bandwidth / 1e9, gemm_gflop_s=peak / 1e9)
    print(f"minidl step, batch {batch}, {threads} thread(s), {steps} steps: {split['total']:.2f} ms/step = "
          f"kernels {split['kernels']:.2f} + SGD update {split['update']:.2f} + rest (Python, NumPy) "
          f"{split['rest']:.2f}; bound {split['bound']:.2f} ms")
    print(f"measured here: axpby streams {bandwidth / 1e9:.0f} GB/s over 2 x "
          f"{train_problem.parameter_count() * 4 / 1e6:.0f} MB; float32 GEMM 1000^3 {peak / 1e9:.0f} GFLOP/s")
    print(_table(parts, split))
    profiler = cProfile.Profile()
    profiler.enable()
    for i in range(steps):
        step(*data[i % len(data)])
    profiler.disable()
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(top)
    print("\n".join(line for line in text.getvalue().splitlines()[4:] if line.strip()))
    return split


def _table(parts: dict, split: dict) -> str:
    header = f"{'part':<39} {'calls':>5} {'ms':>7} {'bound ms':>8} {'x bound':>7} {'MB':>7} {'GFLOP':>7}"
    lines = [header, "-" * len(header)]
    for key, label in PARTS.items():
        p = parts[key]
        if not p["calls"]:
            continue
        ratio = p["seconds"] / p["bound"] if p["bound"] else float("nan")
        lines.append(f"{label:<39} {p['calls']:>5.0f} {p['seconds']:>7.2f} {p['bound']:>8.2f} {ratio:>7.1f} "
                     f"{p['bytes'] / 1e6:>7.1f} {p['flops'] / 1e9:>7.3f}")
    # the rows add up to the step, and "rest" is the header's: SGD.step's own Python is not in it
    in_update = parts["update_gemm"]["seconds"] + parts["axpby"]["seconds"]
    lines.append(f"{'SGD.step: Python around its kernels':<39} {'':>5} {split['update'] - in_update:>7.2f}")
    lines.append(f"{'rest: Python, NumPy (graph, loss, sums)':<39} {'':>5} {split['rest']:>7.2f}")
    lines.append(f"{'step':<39} {'':>5} {split['total']:>7.2f} {split['bound']:>8.2f} "
                 f"{split['total'] / split['bound']:>7.1f}")
    return "\n".join(lines)
