"""`minidl bench sigmoid`: the fused sigmoid kernels against the NumPy expressions.

forward: minidl.sigmoid_forward(x) vs 1/(1+np.exp(-x)); backward: minidl.sigmoid_backward(y, dy) vs
dy*y*(1-y). GB/s counts the bytes a single fused pass must move (forward: read x, write y; backward: read
y and dy, write dx), for both (NumPy's expressions make several passes). NumPy's ufuncs run on one thread
at every --threads: a ratio at 2 threads is minidl's 2 threads against NumPy's one. Targets at 1e6 float32
elements: forward >= 3x, backward >= 2x.
"""
from __future__ import annotations

DESCRIPTION = "sigmoid forward/backward: minidl fused kernels vs NumPy expressions (GB/s)"

SIZES = (10_000, 1_000_000, 10_000_000)
TARGETS = {"forward": 3.0, "backward": 2.0}
TARGET_SIZE = 1_000_000


def add_arguments(parser) -> None:
    from minidl.bench.options import add_kernel_arguments

    add_kernel_arguments(parser, quick_help="fewer rounds, no 1e7 size")


def measure(direction: str, size: int, dtype, threads: int, rounds: int, pause: float) -> dict:
    import numpy as np

    from minidl import _core
    from minidl.bench import timing

    rng = np.random.default_rng(0)
    x = rng.uniform(-8, 8, size).astype(dtype)
    if direction == "forward":
        def run_minidl():
            return _core.sigmoid_forward(x)

        def run_numpy():
            return 1 / (1 + np.exp(-x))

        moved = 2 * x.nbytes
    else:
        y = (1 / (1 + np.exp(-x))).astype(dtype)
        dy = rng.standard_normal(size).astype(dtype)

        def run_minidl():
            return _core.sigmoid_backward(y, dy)

        def run_numpy():
            return dy * y * (1 - y)

        moved = 3 * x.nbytes
    tol = 1e-6 if np.dtype(dtype) == np.float32 else 1e-13
    verified = bool(np.allclose(run_minidl(), run_numpy(), rtol=tol, atol=tol * 1e-3))
    backoffs_before = _core.contention_backoffs()
    times = timing.compare({"minidl": run_minidl, "numpy": run_numpy}, rounds=rounds, pause=pause)
    backoffs = _core.contention_backoffs() - backoffs_before  # minidl fell back to 1 thread (busy machine)
    mine, theirs = times["minidl"], times["numpy"]
    return dict(
        case=direction, size=size, dtype=np.dtype(dtype).name, threads=threads,
        minidl_ms=mine.median * 1e3, minidl_best_ms=mine.best * 1e3,
        numpy_ms=theirs.median * 1e3, numpy_best_ms=theirs.best * 1e3,
        minidl_gbs=moved / mine.median / 1e9, numpy_gbs=moved / theirs.median / 1e9,
        ratio=theirs.median / mine.median, best_ratio=theirs.best / mine.best, verified=verified,
        minidl_backoffs=backoffs,
        target=TARGETS[direction] if size == TARGET_SIZE and np.dtype(dtype) == np.float32 else None,
    )


def missed_targets(rows: list[dict]) -> list[str]:
    """The target cases that miss: too slow, or a result that differs from NumPy's (its speed meets nothing)."""
    return [f"{r['case']} {r['threads']}T " + (f"{r['ratio']:.2f}x < {r['target']}x" if r["verified"] else
                                               "result differs from NumPy's")
            for r in rows if r["target"] and (r["ratio"] < r["target"] or not r["verified"])]


def run(args) -> int:
    import sys

    from minidl import _core
    from minidl.bench import environment, report
    from minidl.bench.options import read_kernel_arguments

    try:
        thread_counts, dtypes, rounds = read_kernel_arguments(args)
    except ValueError as error:
        print(f"minidl bench sigmoid: {error}", file=sys.stderr)
        return 2
    sizes = SIZES[:2] if args.quick else SIZES
    info = environment.describe(max(thread_counts))
    rows = []
    for threads in thread_counts:
        _core.set_num_threads(threads)
        for dtype in dtypes:
            for direction in ("forward", "backward"):
                for size in sizes:
                    rows.append(measure(direction, size, dtype, threads, rounds, args.pause))
    info["minidl_thread_thresholds"] = environment.thread_thresholds(max(thread_counts))  # as measured by now
    failed = [f"{r['case']} {r['size']}" for r in rows if not r["verified"]]
    if args.json is not None:
        report.write_json(dict(benchmark="sigmoid", environment=info, rounds=rounds, pause_s=args.pause,
                               results=rows), args.json)
    else:
        print(f"minidl bench sigmoid - {environment.describe_line(info)}")
        print(environment.describe_threads(info))
        print(f"interleaved rounds: {rounds}, pause between libraries: {args.pause} s; times are medians; "
              f"ratio = NumPy time / minidl time; NumPy: 1/(1+np.exp(-x)) and dy*y*(1-y), one thread at every "
              f"thread count; GB/s: bytes of one fused pass;\nbackoffs: times "
              f"minidl fell back to one thread for 10-500 ms because a worker thread started or ran late (busy "
              f"machine)\n")
        print(report.table(rows, [
            ("case", "pass", ""), ("size", "elements", ".0e"), ("dtype", "dtype", ""),
            ("threads", "thr", "d"),
            ("minidl_ms", "minidl ms", ".3f"), ("numpy_ms", "numpy ms", ".3f"),
            ("minidl_gbs", "minidl GB/s", ".1f"), ("numpy_gbs", "numpy GB/s", ".1f"),
            ("ratio", "ratio", ".2f"), ("best_ratio", "best ratio", ".2f"), ("target", "target", ".1f"),
            ("minidl_backoffs", "backoffs", "d"), ("verified", "ok", ""),
        ]))
        missed = missed_targets(rows)
        print("\ntargets at 1e6 float32 (forward >= 3x, backward >= 2x): "
              + ("all met" if not missed else "missed: " + ", ".join(missed)))
    if failed:
        print(f"RESULT MISMATCH against NumPy: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0
