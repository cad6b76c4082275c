"""The GEMM calls of a small-batch training step, this minidl's compiled core against another build's, in one
process: blocks of calls alternate between the two, so a noisy machine slows both alike.

    python tools/ab_kernels.py OTHER_SO [--batch 10] [--threads 2] [--dtype float32] [--rounds 25] [--step]
                                        [--kernels avx2]

OTHER_SO is another checkout's ``minidl/_core/_kernels*.so`` (``git worktree add /tmp/base <rev>`` and
``python setup.py build_ext --inplace`` there). Per call kind of the 784-1000x5-10 MLP's 1000x1000 layers,
over five weights in turn: the forward product X·W, the input gradient dY·Wᵀ, SGD's update
W ← W − lr·XᵀdY as a GEMM, and the product after the update (``matmul_after_update``). Prints the medians
in ns per weight element and the median of the per-round ratios other/this (above 1: this build is faster).

``--step``: the whole training step of ``minidl bench train`` instead (the user's plain loop, float32), with
the other build's ``ops.KERNELS`` swapped in for its blocks (``ops.wrap_kernels``): the Python is the same,
only those compiled kernels differ (SGD's ``axpby`` for the biases and the memory pool stay this build's).
Every kernel call, in either mode, first resets its build's contention guard (``fresh``). In the step, SGD's
update is fused into the next product for both builds (``--separate``: as its own GEMM first), not chosen by
timing (``deferred_update.fusion``), which would mix the two builds' times.
``--kernels NAME``: both builds run that kernel build (``_core.use_kernels``) instead of the one the CPU
selects, e.g. avx2 on an AVX-512 machine.
Two processes, one per build, are no substitute on a shared machine: on the 2-core VM, eight pairs of
processes running the same two builds one after the other gave old/new ratios from 0.82 to 1.22 at batch 10.
"""
from __future__ import annotations

import argparse
import importlib.util
import inspect
import time

import numpy as np

from minidl import argtypes
from minidl._core import _kernels as this_build

CALLS = ("forward X·W", "input gradient dY·Wᵀ", "update W += a·XᵀdY", "update, then X·W")


def load_other(path: str):
    """Another build's extension module, under a package name of its own (its init function is the same)."""
    spec = importlib.util.spec_from_file_location("minidl_other_build._kernels", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"ab_kernels: {path} is not a loadable extension module")
    try:
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    except (ImportError, OSError) as error:
        raise SystemExit(f"ab_kernels: cannot load {path} as minidl's compiled core: {error}") from None
    return module


def fresh(core, call):
    """``call``, forgetting ``core``'s earlier stalls first: each build keeps its own back-off state (dispatch.c),
    so one build's stall on a busy machine would run it on one thread for up to 0.5 s while the other runs on
    all of them (seen on the 2-core EPYC: one build's call 1.7x slower than the other's over 151 alternating calls,
    1.0x in the next run)."""
    def run(*args, **kwargs):
        core._reset_contention_state()
        return call(*args, **kwargs)
    return run


def calls(core, x, dy, u, v):
    return {CALLS[0]: fresh(core, lambda w: core.matmul(x, w)),
            CALLS[1]: fresh(core, lambda w: core.matmul(dy, w, trans_b=True)),
            CALLS[2]: fresh(core, lambda w: core.matmul(u, v, trans_a=True, out=w, alpha=-1e-4, beta=1.0)),
            CALLS[3]: fresh(core, lambda w: core.matmul_after_update(x, w, u, v, -1e-4, 1.0))}


def block_seconds(fn, weights, count: int) -> float:
    start = time.perf_counter()
    for i in range(count):
        fn(weights[i % len(weights)])
    return (time.perf_counter() - start) / count


def step_rounds(other, batch: int, threads: int, rounds: int, steps: int, separate: bool = False):
    """(other's, this build's) seconds per training step, one pair per round (module docstring, --step)."""
    from minidl import deferred_update
    from minidl.timed_choice import FixedChoice

    chooser, deferred_update.fusion = deferred_update.fusion, FixedChoice(
        deferred_update.SEPARATE if separate else deferred_update.FUSED)
    try:
        return _step_rounds(other, batch, threads, rounds, steps)
    finally:
        deferred_update.fusion = chooser


def without_bias(kernel):
    """``kernel``, or for a build from before the GEMMs took ``bias=``, one that adds it afterwards in NumPy (as
    ``ops.linear`` did then)."""
    parameters = inspect.signature(kernel).parameters
    if "bias" in parameters or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return kernel

    def add_bias_after(*args, bias=None, **kwargs):
        out = kernel(*args, **kwargs)
        if bias is not None:
            out += bias
        return out
    return add_bias_after


def _step_rounds(other, batch: int, threads: int, rounds: int, steps: int):
    from minidl import ops
    from minidl.bench import train_problem
    from minidl.bench.step_minidl import MinidlStep

    step = MinidlStep(train_problem.initial_weights(), train_problem.LEARNING_RATE, threads=threads)
    data = [step.prepare(x, y) for x, y in train_problem.batches(batch)]

    def block(count: int) -> float:
        start = time.perf_counter()
        for i in range(count):
            step(*data[i % len(data)])
        return (time.perf_counter() - start) / count

    def theirs(name, kernel):
        theirs_kernel = without_bias(getattr(other, name))
        if name == "matmul_after_update":       # a build from before fuse= was added takes the fused path only
            def kernel_of_other(*args, fuse=True, **kwargs):
                return theirs_kernel(*args, **kwargs) if fuse else theirs_kernel(*args, fuse=False, **kwargs)
            return fresh(other, kernel_of_other)
        return fresh(other, theirs_kernel)

    def mine(name, kernel):
        return fresh(this_build, kernel)

    with ops.wrap_kernels(mine):
        block(2)                                        # warm-up: buffers, teams, the pool
    with ops.wrap_kernels(theirs):
        block(2)
    other_s, this_s = [], []
    for _ in range(rounds):
        with ops.wrap_kernels(theirs):
            other_s.append(block(steps))
        with ops.wrap_kernels(mine):
            this_s.append(block(steps))
    return other_s, this_s


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("other_so")
    parser.add_argument("--batch", type=argtypes.integer(1, 100_000), default=10)
    parser.add_argument("--threads", type=argtypes.integer(1, this_build.MAX_THREADS), default=2)
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    parser.add_argument("--rounds", type=argtypes.integer(1, 10_000), default=25)
    parser.add_argument("--calls", type=argtypes.integer(1, 10_000), default=20,
                        help="calls per block (with --step: training steps per block)")
    parser.add_argument("--size", type=argtypes.integer(1, 20_000), default=None,
                        help="the weights' fan_in = fan_out (default 1000)")
    parser.add_argument("--step", action="store_true",
                        help="time the whole training step of `minidl bench train` (784-1000x5-10, float32)")
    parser.add_argument("--kernels", default=None,
                        help="the kernel build both builds run (default: the one this CPU selects)")
    parser.add_argument("--separate", action="store_true",
                        help="with --step: SGD's update as its own GEMM before the next product (default: fused)")
    args = parser.parse_args(argv)
    if args.step and (args.size is not None or args.dtype != "float32"):
        parser.error("--step runs the benchmark's own 784-1000x5-10 float32 step: no --size or --dtype")
    if args.separate and not args.step:
        parser.error("--separate chooses how the step applies SGD's update: it needs --step")
    other = load_other(args.other_so)
    for core in (this_build, other):
        core.set_num_threads(args.threads)
        if args.kernels is not None:
            try:
                core.use_kernels(args.kernels)
            except ValueError as error:
                parser.error(f"--kernels: {error}")
    if args.step:
        other_s, this_s = step_rounds(other, args.batch, args.threads, args.rounds, args.calls,
                                      separate=args.separate)
        ratio = float(np.median(np.array(other_s) / np.array(this_s)))
        print(f"training step, batch {args.batch}, {args.threads} thread(s), {this_build.kernel_name()} kernels; "
              f"{args.rounds} rounds of {args.calls} steps each; ms per step (medians); ratio = other / this (median "
              f"of per-round ratios)")
        print(f"  {'step':24s} other {np.median(other_s) * 1e3:.3f}  this {np.median(this_s) * 1e3:.3f}"
              f"  ratio {ratio:.3f}")
        return 0
    args.size = 1000 if args.size is None else args.size
    rng = np.random.default_rng(0)
    dtype, n, b = np.dtype(args.dtype), args.size, args.batch
    weights = [(rng.standard_normal((n, n)) * 0.03).astype(dtype) for _ in range(5)]
    x, dy, u = (rng.standard_normal((b, n)).astype(dtype) for _ in range(3))
    v = (rng.standard_normal((b, n)) * 0.01).astype(dtype)
    mine, theirs = calls(this_build, x, dy, u, v), calls(other, x, dy, u, v)
    print(f"batch {b}, {args.threads} thread(s), {dtype}, {this_build.kernel_name()} kernels, {n}x{n} weights; "
          f"{args.rounds} rounds of {args.calls} calls each; ns per weight element (medians); ratio = other / this "
          f"(median of per-round ratios)")
    for name in CALLS:
        block_seconds(mine[name], weights, 2)           # warm-up: buffers, teams
        block_seconds(theirs[name], weights, 2)
        other_s, this_s = [], []
        for _ in range(args.rounds):
            other_s.append(block_seconds(theirs[name], weights, args.calls))
            this_s.append(block_seconds(mine[name], weights, args.calls))
        per_element = 1e9 / (n * n)
        ratio = float(np.median(np.array(other_s) / np.array(this_s)))
        print(f"  {name:24s} other {np.median(other_s) * per_element:.3f}  this {np.median(this_s) * per_element:.3f}"
              f"  ratio {ratio:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
