"""Timing script (not a test): the Python layer's per-op overhead and the share of a training step
spent outside the compiled kernels.

    python tests/framework/bench_overhead.py [--threads N] [--batch 64] [--steps 30]

Prints µs per op for tiny tensors (forward only, and forward+backward through a one-op graph) beside
the bare NumPy/core call, then times the 784-1000×5-10 sigmoid MLP step (zero_grad, forward,
cross-entropy, backward, SGD) and the time spent inside minidl._core kernels during it.
"""
import argparse
import time
import timeit

import numpy as np

import minidl as mdl
from minidl import _core, nn, ops, optim


def per_call_us(fn, number=2000, repeat=25):
    """Best CPU time per call (process time: not inflated when other processes share the cores)."""
    return min(timeit.repeat(fn, number=number, repeat=repeat, timer=time.process_time)) / number * 1e6


def tiny_ops():
    a_np = np.ones((2, 2), dtype=np.float32)
    b_np = np.full((2, 2), 2.0, dtype=np.float32)
    a, b = mdl.Tensor(a_np), mdl.Tensor(b_np)
    ag, bg = mdl.Tensor(a_np.copy(), requires_grad=True), mdl.Tensor(b_np.copy(), requires_grad=True)
    rows = [
        ("add", lambda: a_np + b_np, lambda: a + b, lambda: ag + bg),
        ("mul", lambda: a_np * b_np, lambda: a * b, lambda: ag * bg),
        ("matmul", lambda: _core.matmul(a_np, b_np), lambda: a @ b, lambda: ag @ bg),
        ("sigmoid", lambda: _core.sigmoid_forward(a_np), lambda: a.sigmoid(), lambda: ag.sigmoid()),
    ]
    seed = np.ones((2, 2), dtype=np.float32)

    def fwd_bwd(op):
        def run():
            op().backward(seed)
        return run
    print("tiny (2x2 float32) op, µs of CPU per call [best of 25 x 2000]")
    print(f"{'op':>8} {'bare kernel':>12} {'Tensor fwd':>11} {'fwd, grad':>10} {'fwd+bwd':>8} {'overhead':>9}")
    for name, bare, fwd, fwd_grad in rows:
        t_bare, t_fwd, t_grad = per_call_us(bare), per_call_us(fwd), per_call_us(fwd_grad)
        t_fb = per_call_us(fwd_bwd(fwd_grad), number=500)
        print(f"{name:>8} {t_bare:12.2f} {t_fwd:11.2f} {t_grad:10.2f} {t_fb:8.2f} {t_grad - t_bare:9.2f}")


class KernelTimer:
    """Sums the time spent inside the minidl._core kernels (through the hook ``ops.wrap_kernels``).

    ``clock`` is time.perf_counter (wall) or time.process_time (CPU of all threads: with one thread,
    immune to other processes sharing the cores)."""

    def __init__(self, clock=time.perf_counter):
        self.clock = clock
        self.total = 0.0
        self._hook = None

    def _wrap(self, name, fn):
        clock = self.clock

        def timed(*args, **kwargs):
            t0 = clock()
            try:
                return fn(*args, **kwargs)
            finally:
                self.total += clock() - t0
        return timed

    def __enter__(self):
        self._hook = ops.wrap_kernels(self._wrap)
        self._hook.__enter__()
        return self

    def __exit__(self, *exc):
        return self._hook.__exit__(*exc)


def training_step(batch, steps):
    mdl.manual_seed(0)
    model = nn.MLP([784] + [1000] * 5 + [10], activation="sigmoid")
    opt = optim.SGD(model.parameters(), lr=0.01)
    rng = np.random.default_rng(0)
    x = mdl.Tensor(rng.random((batch, 784), dtype=np.float32))
    y = rng.integers(0, 10, size=batch)

    def step():
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
    for _ in range(3):
        step()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    med = float(np.median(times))
    print(f"\n784-1000x5-10 sigmoid MLP, batch {batch}, threads {_core.get_num_threads()}: "
          f"step wall median {med * 1e3:.2f} ms, best {min(times) * 1e3:.2f} ms")
    for label, clock in (("wall", time.perf_counter), ("CPU", time.process_time)):
        with KernelTimer(clock) as kt:
            t0 = clock()
            for _ in range(steps):
                step()
            total = clock() - t0
        print(f"  {label:>4}: {total / steps * 1e3:7.2f} ms/step, in minidl._core kernels "
              f"{kt.total / steps * 1e3:7.2f}, outside (Python + NumPy) {(total - kt.total) / steps * 1e3:6.2f} "
              f"= {(total - kt.total) / total:.1%}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--batch", type=int, nargs="+", default=[64])
    parser.add_argument("--steps", type=int, default=30)
    args = parser.parse_args()
    if args.threads:
        _core.set_num_threads(args.threads)
    tiny_ops()
    for b in args.batch:
        training_step(b, args.steps)


if __name__ == "__main__":
    main()
