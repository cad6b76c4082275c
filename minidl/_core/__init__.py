"""minidl's compiled core: GEMM and sigmoid kernels (Cython wrappers over C), and thread control.

    matmul(a, b, *, trans_a=False, trans_b=False, out=None, alpha=1.0, beta=0.0)
                                                              alpha·op(a) @ op(b) + beta·out (BLAS gemm)
    matmul_after_update(x, w, u, v, alpha, beta)              x @ w after w <- beta·w + alpha·uᵀv (one pass)
    sigmoid_forward(x, out=None)                              1 / (1 + exp(-x)), any shape
    sigmoid_backward(y, grad_y, out=None)                     grad_y * y * (1 - y)
    normal_cdf(x, out=None)                                   Φ(x) = erfc(-x/√2)/2 (GELU), any shape
    axpby(alpha, x, beta, y)                                  y <- alpha * x + beta * y, in place
    set_num_threads(n); get_num_threads()
    with memory_pool(): ...                                   NumPy arrays made inside reuse freed blocks

At import the fastest kernel build the CPU and OS support is chosen (`kernel_name()`: 'avx512', 'avx2' or
'generic'); the environment variable MINIDL_KERNELS names another (MINIDL_KERNELS=generic: the portable
one). The GEMM's block sizes come from the cache sizes read at import (`cache_sizes()`, `gemm_blocking()`);
the least work a kernel gives a thread, from the fork-join cost and the core's speed measured at the first
multithreaded call (`thread_thresholds()`). A MINIDL_KERNELS value that is unknown or not available on this
machine (see `available_kernels()`) gives a RuntimeWarning and the fastest build, never an import error. When other processes keep every core busy, the kernels briefly
fall back to one thread (`effective_num_threads()`, `contention_backoffs()`). This package imports
nothing else from minidl. `python -m minidl._core.check_build` says what was built and fails when the
build lacks what this machine supports (CI runs it).
"""
import os

from minidl._core._kernels import (
    KERNEL_BUILDS,
    MAX_THREADS,
    available_kernels,
    axpby,
    byte_range,
    cache_sizes,
    compiled_kernels,
    contention_backoffs,
    cpu_has_avx2_fma,
    cpu_supported_kernels,
    effective_num_threads,
    gemm_blocking,
    get_num_threads,
    kernel_name,
    matmul,
    matmul_after_update,
    memory_pool,
    memory_pool_stats,
    normal_cdf,
    openmp_enabled,
    release_memory_pool,
    set_memory_pool_cap,
    set_num_threads,
    sigmoid_backward,
    sigmoid_forward,
    thread_thresholds,
    use_kernels,
)

__all__ = [
    "matmul",
    "matmul_after_update",
    "sigmoid_forward",
    "sigmoid_backward",
    "normal_cdf",
    "axpby",
    "set_num_threads",
    "MAX_THREADS",
    "get_num_threads",
    "kernel_name",
    "available_kernels",
    "compiled_kernels",
    "cpu_supported_kernels",
    "KERNEL_BUILDS",
    "cache_sizes",
    "gemm_blocking",
    "thread_thresholds",
    "use_kernels",
    "cpu_has_avx2_fma",
    "openmp_enabled",
    "effective_num_threads",
    "contention_backoffs",
    "memory_pool",
    "memory_pool_stats",
    "set_memory_pool_cap",
    "release_memory_pool",
    "byte_range",
    "usable_cores",
]


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity where the OS has one, else every core)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
