"""The same training step in JAX, jit-compiled for the CPU: XLA sees the whole step (forward, softmax
cross-entropy, ``jax.grad``, the SGD update) and fuses it. Optional: imported only when jax is.

Threads: XLA's CPU thread pool is sized from the CPUs this process may run on, so the step pins its
process to ``threads`` CPUs (``os.sched_setaffinity``) before jax is imported, and turns Eigen's
multithreading off for one thread; the other contenders set their pools' sizes the same way (OMP/BLAS).
"""
from __future__ import annotations

import importlib
import os

import numpy as np


def _limit_threads(threads: int | None) -> None:
    if not threads:
        return
    if threads == 1:
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false").strip()
    if hasattr(os, "sched_setaffinity"):
        cpus = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(0, cpus[:threads])


_imported = False      # import_library ran: the threads are limited, jax is imported


class JaxStep:
    """One SGD step of the MLP on a batch: ``loss = step(x, y)`` (waits for XLA to finish the step)."""

    name = "jax"

    @staticmethod
    def import_library(threads: int | None = None) -> None:
        """Limit the threads and import jax (once): the worker calls this before it reads the process's
        memory after imports, as torch and minidl are imported with their step modules."""
        global _imported
        if _imported:
            return
        _limit_threads(threads)
        os.environ.setdefault("JAX_PLATFORMS", "cpu")
        importlib.import_module("jax")
        _imported = True

    def __init__(self, layers, lr: float, threads: int | None = None):
        self.import_library(threads)
        import jax
        import jax.numpy as jnp

        self.jax = jax
        self.params = [(jnp.asarray(w), jnp.asarray(b)) for w, b in layers]

        def loss_fn(params, x, y):
            h = x
            for w, b in params[:-1]:
                h = jax.nn.sigmoid(h @ w + b)
            w, b = params[-1]
            log_p = jax.nn.log_softmax(h @ w + b, axis=1)
            return -jnp.mean(jnp.take_along_axis(log_p, y[:, None], axis=1))

        def step(params, x, y):
            loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
            return jax.tree_util.tree_map(lambda p, g: p - lr * g, params, grads), loss

        # The old weights are donated: XLA may update them in place, as the other contenders do.
        self._step = jax.jit(step, donate_argnums=0)

    def prepare(self, x: np.ndarray, y: np.ndarray):
        return self.jax.device_put(x), self.jax.device_put(y.astype(np.int32))

    def __call__(self, x, y):
        self.params, loss = self._step(self.params, x, y)
        return loss.block_until_ready()

    def parameters(self) -> list[np.ndarray]:
        """[W₁, b₁, W₂, ...] as ndarrays, W laid out (fan_in, fan_out) like the others."""
        return [np.asarray(a) for layer in self.params for a in layer]
