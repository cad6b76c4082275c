"""`python -m minidl._core.check_build`: what the compiled core was built with, and a check that it has what
this machine supports, for CI (.ci/run) after `pip install`.

setup.py leaves out OpenMP or a kernel build silently when the compiler cannot make it (and `pip -q` hides
its note), and the tests take their expectations from what was built; so a degraded build would pass the
suite. This prints one line and exits 1 when the build lacks OpenMP (with more than one core here) or the
fastest kernel build this CPU and OS can run.
"""
from __future__ import annotations

import os
import sys


def build_report() -> tuple[str, list[str]]:
    """(one line describing the build, the problems found: empty when the build has all this machine runs)."""
    from minidl import _core

    cores = _core.usable_cores()
    supported, compiled = _core.cpu_supported_kernels(), _core.compiled_kernels()
    line = (f"minidl._core: OpenMP {'on' if _core.openmp_enabled() else 'off'} ({_core.get_num_threads()} "
            f"threads, {cores} cores); kernel builds compiled: {', '.join(compiled)}; this CPU runs: "
            f"{', '.join(supported)}; in use: {_core.kernel_name()}")
    problems = []
    if cores > 1 and not _core.openmp_enabled():
        problems.append("built without OpenMP (MINIDL_NO_OPENMP set, or the compiler lacks -fopenmp)")
    best = supported[0]
    if best not in compiled:
        problems.append(f"the CPU runs the {best!r} kernels but they were not compiled (MINIDL_PORTABLE set, "
                        f"or the compiler lacks the flags)")
    elif _core.kernel_name() != best and not os.environ.get("MINIDL_KERNELS"):
        problems.append(f"the {best!r} kernels are compiled but {_core.kernel_name()!r} was chosen at import")
    return line, problems


def main() -> int:
    line, problems = build_report()
    print(line)
    for problem in problems:
        print(f"error: degraded build: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
