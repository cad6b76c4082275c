"""Keep glibc from returning the training step's large buffers to the OS after every step.

A training step allocates and frees the same set of multi-megabyte arrays each iteration (weight
gradients, optimizer temporaries). With glibc's defaults, freeing them shrinks the heap (or unmaps
them), and the next step pays a page fault for every 4 KiB page it writes again — measured here as
≈30% of a 784-1000×5-10 step at batch 64. Raising malloc's mmap and trim thresholds keeps those
pages in the process for reuse, the way PyTorch's allocators do.

A process-wide setting, so a library never makes it behind its user's back: ``import minidl`` leaves
malloc alone. The ``minidl`` command (train, reproduce, bench), which owns its process, calls
``minidl.tune_malloc()`` at start; a script of your own may call it too (Linux/glibc only). It leaves the
process alone when the user chose their own settings (any ``MALLOC_*_`` environment variable) or set
``MINIDL_MALLOC_TUNING=0``. Cost: up to ``trim_threshold`` bytes of freed memory stay mapped.
"""
from __future__ import annotations

import ctypes
import os
import sys

__all__ = ["tune_malloc", "malloc_tuned"]

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3

_tuned = False


def malloc_tuned() -> bool:
    """True once ``tune_malloc`` has changed this process's malloc settings."""
    return _tuned


def tune_malloc(mmap_threshold: int = 32 << 20, trim_threshold: int = 128 << 20) -> bool:
    """Set glibc's M_MMAP_THRESHOLD / M_TRIM_THRESHOLD (bytes); True if applied."""
    global _tuned
    if not sys.platform.startswith("linux") or os.environ.get("MINIDL_MALLOC_TUNING", "1") == "0":
        return False
    if any(key.startswith("MALLOC_") and key.endswith("_") for key in os.environ):
        return False
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version          # glibc only: musl's mallopt is a no-op stub
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    ok = mallopt(_M_MMAP_THRESHOLD, int(mmap_threshold)) == 1
    ok = mallopt(_M_TRIM_THRESHOLD, int(trim_threshold)) == 1 and ok
    _tuned = _tuned or ok
    return ok
