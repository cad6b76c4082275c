"""What a benchmark result depends on: CPU, load, library versions, and NumPy's BLAS thread count."""
from __future__ import annotations

import os
import platform


def set_numpy_threads(n: int) -> bool:
    """Set the thread count of NumPy's BLAS (through threadpoolctl); False if no BLAS was found."""
    import numpy as np
    from threadpoolctl import threadpool_info, threadpool_limits

    np.dot(np.ones((2, 2)), np.ones((2, 2)))  # make sure the BLAS library is loaded
    threadpool_limits(limits=int(n), user_api="blas")
    return any(pool["user_api"] == "blas" for pool in threadpool_info())


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def physical_cores(cpus, root: str = "/sys/devices/system/cpu") -> int | None:
    """How many physical cores the logical CPUs ``cpus`` are on (SMT siblings share a core: the same
    package and core id in sysfs); None where the topology cannot be read."""
    cores = set()
    for cpu in cpus:
        try:
            with open(f"{root}/cpu{cpu}/topology/physical_package_id") as package, \
                    open(f"{root}/cpu{cpu}/topology/core_id") as core:
                cores.add((package.read().strip(), core.read().strip()))
        except OSError:
            return None
    return len(cores) or None


def describe(threads: int | None = None) -> dict:
    """Machine and library facts printed with (and stored in) every benchmark result; the GEMM blocking (NC
    shares L3 among the threads) and the thread thresholds are those of a team of `threads` (default:
    minidl's thread count)."""
    import numpy as np

    from minidl import _core
    from minidl.allocator import malloc_tuned

    blas = "unknown"
    try:
        config = np.show_config(mode="dicts")
        dep = config["Build Dependencies"]["blas"]
        blas = f"{dep.get('name', '?')} {dep.get('version', '')}".strip()
    except Exception:
        pass
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else range(os.cpu_count() or 1)
    return {
        "cpu": cpu_model(),
        "cores": len(cpus),                          # logical CPUs this process may run on
        "physical_cores": physical_cores(cpus),      # fewer with SMT (hyper-threads)
        "load_average_1min": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numpy_blas": blas,
        "minidl_kernels": _core.kernel_name(),
        "minidl_openmp": _core.openmp_enabled(),
        "minidl_cache_sizes": _core.cache_sizes(),
        "minidl_blocking_float32": _core.gemm_blocking("float32", threads),
        "minidl_thread_thresholds": thread_thresholds(threads),
        "minidl_malloc_tuned": malloc_tuned(),
    }


def thread_thresholds(threads: int | None = None) -> dict:
    """minidl's thread thresholds per dtype for a team of `threads` (measured at the first call that needs
    them; a measurement that a busy moment spoiled is retried a second later, so call again after a run)."""
    from minidl import _core

    return {dtype: _core.thread_thresholds(dtype, threads) for dtype in ("float32", "float64")}


def _bytes(n: int) -> str:
    return f"{n >> 20} MiB" if n >= 1 << 20 else f"{n >> 10} KiB"


def describe_line(info: dict) -> str:
    physical = info.get("physical_cores")
    cores = (f"{info['cores']} cores" if physical in (None, info["cores"]) else
             f"{info['cores']} CPUs on {physical} cores (SMT)")
    return (f"{info['cpu']}, {cores}, load {info['load_average_1min']}; "
            f"NumPy {info['numpy']} ({info['numpy_blas']}); minidl kernels: {info['minidl_kernels']}"
            f"{' + OpenMP' if info['minidl_openmp'] else ' (no OpenMP)'}"
            f"{'; glibc malloc tuned (minidl.tune_malloc)' if info.get('minidl_malloc_tuned') else ''}")


def describe_blocking(info: dict) -> str:
    """What the GEMM detected and derived: cache sizes and the float32 blocking of the kernels in use."""
    caches, b = info["minidl_cache_sizes"], info["minidl_blocking_float32"]
    team = info["minidl_thread_thresholds"]["float32"]["threads"]
    return (f"detected caches: L1d {_bytes(caches['l1d'])}, L2 {_bytes(caches['l2'])} per core, L3 "
            f"{_bytes(caches['l3'])}; float32 GEMM ({info['minidl_kernels']}): micro-tile {b['mr']}x{b['nr']}, "
            f"MC {b['mc']}, KC {b['kc']}, NC {b['nc']} (team of {team}); up to {b['skinny_m']} rows B read in place, "
            f"KC {b['skinny_kc']} up to {b['skinny_kc_m']} rows")


def _count(n: float) -> str:
    return f"{n / 1e6:.2f}M" if n >= 1e6 else f"{n / 1e3:.1f}k"


def describe_threads(info: dict) -> str:
    """What the kernels measured for their thread thresholds: the team's fork-join cost and the least work
    each kernel gives a thread."""
    thresholds = info["minidl_thread_thresholds"]
    first = thresholds["float32"]
    cost = first["fork_join_s"]
    measured = (f"fork-join {cost * 1e6:.1f} us (measured)" if cost is not None else
                "fork-join not measured (one thread, no OpenMP or a busy machine): hand-tuned fallbacks")
    least = "; ".join(
        f"{dtype}: sigmoid forward {_count(t['sigmoid_forward'])} / backward {_count(t['sigmoid_backward'])}, "
        f"axpby {_count(t['axpby'])} elements, GEMM {t['gemm'] / 1e6:.2f} MFLOP"
        for dtype, t in ((d, v["min_per_thread"]) for d, v in thresholds.items()))
    return f"threads: team of {first['threads']}, {measured}\nleast work a kernel gives a thread: {least}"
