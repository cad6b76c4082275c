"""What a benchmark result depends on: CPU, load, library versions, and NumPy's BLAS thread count."""
from __future__ import annotations

import ctypes
import os
import platform

_OPENBLAS_SETTERS = ("scipy_openblas_set_num_threads64_", "scipy_openblas_set_num_threads",
                     "openblas_set_num_threads64_", "openblas_set_num_threads")


def _loaded_openblas() -> list[str]:
    """Paths of the OpenBLAS libraries mapped into this process (NumPy's BLAS)."""
    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if "openblas" in line.lower() and "/" in line}
    except OSError:
        return []
    return sorted(paths)


def set_numpy_threads(n: int) -> bool:
    """Set the thread count of NumPy's OpenBLAS (the job threadpoolctl does); False if not possible."""
    import numpy as np

    np.dot(np.ones((2, 2)), np.ones((2, 2)))  # make sure the BLAS library is loaded
    for path in _loaded_openblas():
        try:
            library = ctypes.CDLL(path)
        except OSError:
            continue
        for name in _OPENBLAS_SETTERS:
            setter = getattr(library, name, None)
            if setter is not None:
                setter(ctypes.c_int(n))
                return True
    return False


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def describe() -> dict:
    """Machine and library facts printed with (and stored in) every benchmark result."""
    import numpy as np

    from minidl import _core

    blas = "unknown"
    try:
        config = np.show_config(mode="dicts")
        dep = config["Build Dependencies"]["blas"]
        blas = f"{dep.get('name', '?')} {dep.get('version', '')}".strip()
    except Exception:
        pass
    return {
        "cpu": cpu_model(),
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "load_average_1min": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numpy_blas": blas,
        "minidl_kernels": _core.kernel_name(),
        "minidl_openmp": _core.openmp_enabled(),
    }


def describe_line(info: dict) -> str:
    return (f"{info['cpu']}, {info['cores']} cores, load {info['load_average_1min']}; "
            f"NumPy {info['numpy']} ({info['numpy_blas']}); minidl kernels: {info['minidl_kernels']}"
            f"{' + OpenMP' if info['minidl_openmp'] else ' (no OpenMP)'}")
