"""One contender of `minidl bench train` in a process of its own, driven over stdin/stdout (JSON lines).

Run by path (``python .../minidl/bench/train_worker.py CONTENDER THREADS BATCH``) so that the NumPy,
PyTorch and JAX contenders never import minidl: their memory and thread pools are their own. The parent sets
OMP_NUM_THREADS / OPENBLAS_NUM_THREADS / MKL_NUM_THREADS before the start; each step class also sets its
library's thread count. Commands (one JSON object per line, one JSON reply per line):

    {"cmd": "verify", "steps": k}   k steps on the first batch: losses and per-layer Σ(W - W₀) (float64)
    {"cmd": "run", "steps": n}      n untimed steps: resident memory before and after (MB)
    {"cmd": "time", "steps": n}     n timed steps cycling through the batches: seconds per step, and how many
                                    times minidl's kernels backed off to one thread meanwhile (None: not minidl)
    {"cmd": "memory"}               peak and current resident memory of this process (MB)
    {"cmd": "quit"}
"""
from __future__ import annotations

import importlib
import json
import os
import resource
import sys
import time

if __package__:
    from minidl.bench import train_problem
else:                                   # run by path: siblings are top-level modules
    import train_problem  # type: ignore[no-redef]


def memory_mb() -> dict:
    """Peak (VmHWM) and current (VmRSS) resident set of this process in MB (10⁶ bytes), from /proc/self/status
    (in KiB); ru_maxrss (the peak: KiB, on macOS bytes) where /proc is missing."""
    found = {}
    try:
        with open("/proc/self/status") as status:
            for line in status:
                key, _, value = line.partition(":")
                if key in ("VmHWM", "VmRSS"):
                    found[key] = int(value.split()[0]) * 1024 / 1e6
    except OSError:
        pass
    if "VmHWM" not in found:
        peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (1024 if sys.platform == "darwin" else 1)
        found = {"VmHWM": peak_kb * 1024 / 1e6, "VmRSS": peak_kb * 1024 / 1e6}
    return {"peak_mb": round(found["VmHWM"], 1), "rss_mb": round(found["VmRSS"], 1)}


def probes(arrays) -> list[list[float]]:
    """[Σ p, Σ p·R] for each array p, in float64, R uniform in [-1, 1) from a generator seeded by p's
    position, drawn 64 rows at a time (no copy of a weight is kept or made: peak memory is measured). The
    plain sum cannot see a permutation, and is about 0 for the last layer's change (softmax gradients sum to
    0 over the classes); the weighted sum sees both."""
    import numpy as np

    out = []
    for position, array in enumerate(arrays):
        rows = np.asarray(array).reshape(len(array) if np.ndim(array) else 1, -1)
        generator = np.random.default_rng(1000 + position)
        weighted = 0.0
        for start in range(0, rows.shape[0], 64):
            block = rows[start:start + 64]
            weighted += float(np.sum(block * generator.uniform(-1.0, 1.0, size=block.shape)))
        out.append([float(np.sum(rows, dtype=np.float64)), weighted])
    return out


STEP_CLASSES = {"numpy": "NumpyStep", "minidl": "MinidlStep", "torch": "TorchStep", "jax": "JaxStep"}


def load_step_class(contender: str):
    """The step class of a contender, from step_<contender>.py beside this file."""
    module_name = f"step_{contender}"
    module = importlib.import_module(f"minidl.bench.{module_name}" if __package__ else module_name)
    return getattr(module, STEP_CLASSES[contender])


class Worker:
    def __init__(self, contender: str, threads: int, batch: int, seed: int, lr: float):
        import numpy as np

        self.np = np
        step_class = load_step_class(contender)
        if hasattr(step_class, "import_library"):   # JAX imports its library only after limiting its threads
            step_class.import_library(threads)
        self.import_memory = memory_mb()
        layers = train_problem.initial_weights(seed)
        self.initial_probes = probes([a for layer in layers for a in layer])
        self.step = step_class(layers, train_problem.LEARNING_RATE, threads)
        del layers
        self.batches = [self.step.prepare(x, y) for x, y in train_problem.batches(batch, seed + 1)]
        self.next_batch = 0

    def verify(self, steps: int) -> dict:
        """The losses of ``steps`` steps on one batch, and each parameter's change (W₁, b₁, W₂, ...) seen
        through its probes: [Δ Σ p, Δ Σ p·R]."""
        x, y = self.batches[0]
        losses = [float(self.step(x, y)) for _ in range(steps)]   # a 0-d tensor or a number
        after = probes(self.step.parameters())
        changes = [[a - b for a, b in zip(now, before)] for now, before in zip(after, self.initial_probes)]
        return {"losses": losses, "parameter_changes": changes}

    def _steps(self, n: int, timed: bool) -> list[float]:
        step, batches, count = self.step, self.batches, len(self.batches)
        times = []
        clock = time.perf_counter
        for _ in range(n):
            x, y = batches[self.next_batch]
            self.next_batch = (self.next_batch + 1) % count
            start = clock()
            step(x, y)
            if timed:
                times.append(clock() - start)
        return times

    def handle(self, command: dict) -> dict:
        cmd = command["cmd"]
        if cmd == "verify":
            return self.verify(int(command["steps"]))
        if cmd == "run":
            before = memory_mb()["rss_mb"]
            self._steps(int(command["steps"]), timed=False)
            return {"rss_before_mb": before, "rss_after_mb": memory_mb()["rss_mb"]}
        if cmd == "time":
            backoffs = getattr(self.step, "contention_backoffs", lambda: None)
            before = backoffs()
            seconds = self._steps(int(command["steps"]), timed=True)
            return {"seconds": seconds, "backoffs": None if before is None else backoffs() - before}
        if cmd == "memory":
            return {**memory_mb(), "after_imports": self.import_memory}
        raise ValueError(f"unknown command {cmd!r}")


def main(argv: list[str]) -> int:
    contender, threads, batch = argv[0], int(argv[1]), int(argv[2])
    seed = int(argv[3]) if len(argv) > 3 else 0
    out = sys.stdout
    try:
        worker = Worker(contender, threads, batch, seed, train_problem.LEARNING_RATE)
    except Exception as exc:  # reported to the parent, which prints it
        out.write(json.dumps({"error": f"{type(exc).__name__}: {exc}"}) + "\n")
        out.flush()
        return 1
    out.write(json.dumps({"ready": True, "pid": os.getpid()}) + "\n")
    out.flush()
    for line in sys.stdin:
        command = json.loads(line)
        if command["cmd"] == "quit":
            break
        try:
            reply = worker.handle(command)
        except Exception as exc:
            reply = {"error": f"{type(exc).__name__}: {exc}"}
        out.write(json.dumps(reply) + "\n")
        out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
