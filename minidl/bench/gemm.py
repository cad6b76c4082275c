"""`minidl bench gemm`: minidl.matmul against NumPy's `@` (its BLAS) on squares and MLP products.

Per case: median and best time of each library (interleaved, see timing.py), GFLOP/s = 2mnk/t from the
median, and ratio = NumPy median / minidl median (> 1: minidl is faster). Every result is checked against
NumPy's. The target set: squares 256-1024 and the MLP products (--quick: squares 256 and 512, the 784x1000
layer's products at batch 10 and 256); geometric mean of the ratios >= 1.0 and no case below 0.85, every
result verified; judged for each dtype and thread count measured.
"""
from __future__ import annotations

DESCRIPTION = "matrix multiply: minidl vs NumPy @ (GFLOP/s), squares and MLP forward/backward products"

SQUARES = (64, 128, 256, 512, 1024, 2048)
QUICK_SQUARES = (128, 256, 512)
BATCHES = (10, 64, 256)
LAYERS = ((784, 1000), (1000, 1000))  # (fan_in, fan_out) of the MLP's weight matrices
TARGET_RATIO, FLOOR_RATIO = 1.0, 0.85


def add_arguments(parser) -> None:
    from minidl.bench.options import add_kernel_arguments

    add_kernel_arguments(parser, quick_help="fewer cases and rounds (about 20 s)")


def cases(quick: bool) -> list[dict]:
    """Each case: name, group ('square' | 'mlp'), op(a) m x k, op(b) k x n, transposes, in target set?"""
    result = []
    for size in QUICK_SQUARES if quick else SQUARES:
        result.append(dict(name=f"square {size}", group="square", m=size, k=size, n=size,
                           trans_a=False, trans_b=False, target=256 <= size <= 1024))
    for batch in (10, 256) if quick else BATCHES:
        for fan_in, fan_out in LAYERS[:1] if quick else LAYERS:
            shape = f"b{batch} {fan_in}x{fan_out}"
            # forward X@W; weight gradient X^T@dY; input gradient dY@W^T
            result.append(dict(name=f"X@W {shape}", group="mlp", m=batch, k=fan_in, n=fan_out,
                               trans_a=False, trans_b=False, target=True))
            result.append(dict(name=f"X^T@dY {shape}", group="mlp", m=fan_in, k=batch, n=fan_out,
                               trans_a=True, trans_b=False, target=True))
            result.append(dict(name=f"dY@W^T {shape}", group="mlp", m=batch, k=fan_out, n=fan_in,
                               trans_a=False, trans_b=True, target=True))
    return result


def measure_case(case: dict, dtype, threads: int, rounds: int, pause: float) -> dict:
    import numpy as np

    from minidl import _core
    from minidl.bench import timing

    rng = np.random.default_rng(0)
    m, k, n = case["m"], case["k"], case["n"]
    # Stored as the MLP stores them: transposed operands are views of the stored arrays.
    a = rng.standard_normal((k, m) if case["trans_a"] else (m, k)).astype(dtype)
    b = rng.standard_normal((n, k) if case["trans_b"] else (k, n)).astype(dtype)
    op_a = a.T if case["trans_a"] else a
    op_b = b.T if case["trans_b"] else b
    ta, tb = case["trans_a"], case["trans_b"]

    def run_minidl():
        return _core.matmul(a, b, trans_a=ta, trans_b=tb)

    def run_numpy():
        return op_a @ op_b

    expected = run_numpy()
    got = run_minidl()
    eps = float(np.finfo(dtype).eps)
    error = float(np.max(np.abs(got.astype(np.float64) - expected))) if got.size else 0.0
    verified = error <= 4 * max(k, 1) * eps  # inputs ~ N(0, 1): rounding error grows at most ~ k eps
    backoffs_before = _core.contention_backoffs()
    times = timing.compare({"minidl": run_minidl, "numpy": run_numpy}, rounds=rounds, pause=pause)
    backoffs = _core.contention_backoffs() - backoffs_before  # minidl fell back to 1 thread (busy machine)
    flops = 2.0 * m * n * k
    mine, theirs = times["minidl"], times["numpy"]
    return dict(
        case=case["name"], group=case["group"], m=m, k=k, n=n, trans_a=ta, trans_b=tb,
        dtype=np.dtype(dtype).name, threads=threads, target=case["target"],
        minidl_ms=mine.median * 1e3, minidl_best_ms=mine.best * 1e3,
        numpy_ms=theirs.median * 1e3, numpy_best_ms=theirs.best * 1e3,
        minidl_gflops=flops / mine.median / 1e9, numpy_gflops=flops / theirs.median / 1e9,
        ratio=theirs.median / mine.median, best_ratio=theirs.best / mine.best,
        max_abs_error=error, verified=bool(verified), minidl_backoffs=backoffs,
    )


def summarize(rows: list[dict]) -> list[dict]:
    """Geometric mean and minimum of the ratios over the target set, per dtype and thread count."""
    from minidl.bench.report import geomean

    summary = []
    for key in sorted({(r["dtype"], r["threads"]) for r in rows}):
        group = [r for r in rows if (r["dtype"], r["threads"]) == key and r["target"]]
        if not group:
            continue
        ratios = [r["ratio"] for r in group]
        worst = min(group, key=lambda r: r["ratio"])
        entry = dict(dtype=key[0], threads=key[1], cases=len(group), geomean_ratio=geomean(ratios),
                     geomean_best_ratio=geomean([r["best_ratio"] for r in group]),
                     min_ratio=worst["ratio"], min_case=worst["case"],
                     below_floor=[r["case"] for r in group if r["ratio"] < FLOOR_RATIO],
                     unverified=[r["case"] for r in group if not r["verified"]],
                     squares=[r["m"] for r in group if r["case"].startswith("square")])   # --quick: no 1024
        # a wrong product's speed meets no target
        entry["meets_target"] = (entry["geomean_ratio"] >= TARGET_RATIO and not entry["below_floor"]
                                 and not entry["unverified"])
        summary.append(entry)
    return summary


def run(args) -> int:
    import sys

    from minidl import _core
    from minidl.bench import environment, report
    from minidl.bench.options import read_kernel_arguments

    try:
        thread_counts, dtypes, rounds = read_kernel_arguments(args)
    except ValueError as error:
        print(f"minidl bench gemm: {error}", file=sys.stderr)
        return 2
    info = environment.describe(max(thread_counts))
    rows = []
    for threads in thread_counts:
        _core.set_num_threads(threads)
        numpy_threads_set = environment.set_numpy_threads(threads)
        for dtype in dtypes:
            for case in cases(args.quick):
                row = measure_case(case, dtype, threads, rounds, args.pause)
                row["numpy_threads_set"] = numpy_threads_set
                rows.append(row)
                if args.json is None:
                    print(f"  measured {row['case']} {dtype} {threads}T: ratio {row['ratio']:.2f}",
                          file=sys.stderr, flush=True)
    summary = summarize(rows)
    info["minidl_thread_thresholds"] = environment.thread_thresholds(max(thread_counts))  # as measured by now
    failed = [r["case"] for r in rows if not r["verified"]]
    if args.json is not None:
        report.write_json(dict(benchmark="gemm", environment=info, rounds=rounds, pause_s=args.pause,
                               results=rows, summary=summary), args.json)
    else:
        print(f"minidl bench gemm - {environment.describe_line(info)}")
        print(environment.describe_blocking(info))
        print(environment.describe_threads(info))
        print(f"interleaved rounds: {rounds}, pause between libraries: {args.pause} s; times are medians; "
              f"ratio = NumPy time / minidl time (best ratio: of the best times); backoffs: times minidl fell "
              f"back to one thread for 10-500 ms because a worker thread started or ran late (busy machine)\n")
        print(report.table(rows, [
            ("case", "case", ""), ("dtype", "dtype", ""), ("threads", "thr", "d"),
            ("minidl_ms", "minidl ms", ".3f"), ("numpy_ms", "numpy ms", ".3f"),
            ("minidl_gflops", "minidl GF/s", ".1f"), ("numpy_gflops", "numpy GF/s", ".1f"),
            ("ratio", "ratio", ".2f"), ("best_ratio", "best ratio", ".2f"),
            ("minidl_backoffs", "backoffs", "d"), ("verified", "ok", ""),
        ]))
        for s in summary:
            verdict = "meets" if s["meets_target"] else "misses"
            wrong = f"; wrong results: {', '.join(s['unverified'])}" if s["unverified"] else ""
            squares = ", ".join(map(str, s["squares"]))
            print(f"\n{s['dtype']}, {s['threads']} thread(s), target set (squares {squares} + "
                  f"{s['cases'] - len(s['squares'])} MLP products): geomean ratio {s['geomean_ratio']:.2f} (of best "
                  f"times {s['geomean_best_ratio']:.2f}), min {s['min_ratio']:.2f} "
                  f"({s['min_case']}); below {FLOOR_RATIO}: {', '.join(s['below_floor']) or 'none'}{wrong} "
                  f"-> {verdict} the target (geomean >= {TARGET_RATIO}, none < {FLOOR_RATIO}, all verified)")
    if failed:
        print(f"RESULT MISMATCH against NumPy: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0
