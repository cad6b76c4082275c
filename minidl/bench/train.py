"""`minidl bench train`: a whole training step of the 784-1000x5-10 sigmoid MLP (softmax cross-entropy,
plain SGD, float32) in minidl, in a hand-written NumPy step, and in PyTorch CPU and JAX (jit, XLA CPU)
when they are installed.

Every contender runs in a process of its own (train_worker.py) with the same thread count in every pool,
the same initial weights and the same batches (train_problem.py). The contenders take turns: a block of
timed steps each (~``--block-seconds``), a pause so the previous one's spinning threads go idle, the order
rotated every round. Reported per contender: ms per step (median of all timed steps after warm-up; best),
samples/s = batch / median, the process's peak resident memory (VmHWM: interpreter, libraries, weights,
buffers) and its resident-memory growth from the end of warm-up to the end; for minidl, how many times its
kernels fell back to one thread on a busy machine while timed; beside each speedup, the range of its
per-round ratios (a contender's block median over minidl's in the same round, seconds apart: on a shared
machine whose speed drifts, a target inside that range is within the run's noise). Before
timing, each contender takes the same few steps on one batch from the same weights; the losses and each
parameter's change (its sum, and its sum weighted by a fixed random array, which a permutation or a
wrong sign changes) must agree with the NumPy step's within float32 tolerance.
Targets at 2 threads (minidl's throughput over each contender's, batch 10 / 64 / 256): PyTorch 3.0x /
1.7x / 1.15x; JAX's jitted step (XLA fuses the whole step) 1.5x / 1.0x / 1.0x; the NumPy step 1.2x / 1.2x
(batch 10 and 64); peak memory <= 1.3x the NumPy step's.
"""
from __future__ import annotations

from minidl._core import MAX_THREADS
from minidl.argtypes import MAX_SECONDS, choice, comma_list, integer, integers, nonempty_path, real

DESCRIPTION = ("training step of the 784-1000x5-10 sigmoid MLP: minidl vs hand-written NumPy and "
               "PyTorch / JAX (ms/step, samples/s, peak MB)")

CONTENDERS = ("minidl", "numpy", "torch", "jax")
OPTIONAL = {"torch": "torch", "jax": "jax"}     # contenders that need a package: contender -> package
# minidl's throughput over each contender's, by batch, at TARGET_THREADS threads (issues 14 and 16)
TARGETS = {"torch": {10: 3.0, 64: 1.7, 256: 1.15}, "jax": {10: 1.5, 64: 1.0, 256: 1.0},
           "numpy": {10: 1.2, 64: 1.2}}
NAMES = {"torch": "PyTorch", "jax": "JAX", "numpy": "NumPy"}
MEMORY_TARGET, TARGET_THREADS = 1.3, 2
# A step changes a weight of ~0.05 by ~1e-6, which float32 holds to ~4e-9: one-ulp differences between two
# correct implementations (summation order, one rounding or two) are ~3e-3 of a change; a wrong update
# (a sign, a permutation, a missing bias step) is of the order of the change itself.
LOSS_RTOL, WEIGHT_CHANGE_RTOL = 1e-4, 2e-2


def add_arguments(parser) -> None:
    parser.add_argument("--threads", type=integers(1, MAX_THREADS), default=None,
                        help="comma-separated thread counts (default 1,2; --quick: 1)")
    parser.add_argument("--batches", type=integers(1), default=None,
                        help="comma-separated batch sizes (default 10,64,256; --quick: 10)")
    parser.add_argument("--contenders", type=comma_list(choice(CONTENDERS)), default=None,
                        help="comma-separated subset of minidl,numpy,torch,jax (default all; torch and jax are "
                             "skipped when absent)")
    parser.add_argument("--rounds", type=integer(1), default=None,
                        help="rounds of alternating blocks (default 5; --quick: 2)")
    parser.add_argument("--block-seconds", type=real(0, MAX_SECONDS, low_open=True, high_open=False),
                        default=0.4,
                        help="timed steps per block: about this long, at least 3 (default 0.4)")
    parser.add_argument("--warmup", type=integer(0), default=5, help="untimed steps before timing (default 5)")
    parser.add_argument("--verify-steps", type=integer(1), default=3, help="steps compared across contenders")
    parser.add_argument("--growth-steps", type=integer(0), default=0,
                        help="extra untimed steps before the memory check, e.g. 10000 (default 0)")
    parser.add_argument("--pause", type=real(0, MAX_SECONDS, high_open=False), default=0.2,
                        help="seconds between blocks (default 0.2)")
    parser.add_argument("--quick", action="store_true",
                        help="1 thread, batch 10, 2 rounds unless given (a smoke test)")
    parser.add_argument("--profile", action="store_true",
                        help="instead: where minidl's step spends its time (kernels, update, Python), per "
                             "thread count and batch, in this process")
    parser.add_argument("--json", nargs="?", type=nonempty_path, const="-", default=None, metavar="PATH",
                        help="write JSON results to PATH (or stdout with no PATH) instead of the table")


def agreement(reference: dict, other: dict) -> tuple[bool, float, float]:
    """Do two contenders' verification steps agree? (ok, max relative loss error, max error of a
    parameter's change probes, relative to the larger of that parameter's reference probes)."""
    loss_err = max(abs(a - b) / abs(b) for a, b in zip(other["losses"], reference["losses"]))
    change_err = 0.0
    for ours, theirs in zip(other["parameter_changes"], reference["parameter_changes"]):
        scale = max(abs(c) for c in theirs) or 1.0
        change_err = max(change_err, max(abs(a - b) for a, b in zip(ours, theirs)) / scale)
    return loss_err <= LOSS_RTOL and change_err <= WEIGHT_CHANGE_RTOL, loss_err, change_err


def measure_config(contenders: list[str], threads: int, batch: int, args, log) -> list[dict]:
    """All contenders at one thread count and batch size, alternated; one row per contender."""
    import statistics
    import time

    from minidl.bench.train_processes import ContenderProcess

    procs, finished = {}, False
    try:
        for name in contenders:
            procs[name] = ContenderProcess(name, threads, batch)
        for proc in procs.values():
            proc.wait_ready()
        checks = {name: p.request("verify", steps=args.verify_steps) for name, p in procs.items()}
        counts, rss_warm = {}, {}
        for name, proc in procs.items():
            warm = proc.request("time", steps=max(args.warmup, 1))["seconds"]
            counts[name] = max(3, min(500, round(args.block_seconds / statistics.median(warm))))
            rss_warm[name] = proc.request("memory")["rss_mb"]
            time.sleep(args.pause)
        samples = {name: [] for name in contenders}
        round_ms = {name: [] for name in contenders}      # each round's block median, for paired ratios
        backoffs = {name: None for name in contenders}
        for r in range(args.rounds):
            order = contenders[r % len(contenders):] + contenders[:r % len(contenders)]
            for name in order:
                timed = procs[name].request("time", steps=counts[name])
                block = timed["seconds"]
                if timed.get("backoffs") is not None:
                    backoffs[name] = (backoffs[name] or 0) + timed["backoffs"]
                samples[name] += block
                round_ms[name].append(statistics.median(block) * 1e3)
                time.sleep(args.pause)
        if args.growth_steps:               # a memory check, not timed: all contenders at once
            for proc in procs.values():
                proc.send("run", steps=args.growth_steps)
            for proc in procs.values():
                proc.reply()
        memory = {name: p.request("memory") for name, p in procs.items()}
        finished = True
    finally:
        for proc in procs.values():
            proc.close(kill=not finished)       # interrupted or failed: at once, not after their block
    reference = checks["numpy"] if "numpy" in checks else checks[contenders[0]]
    rows = []
    for name in contenders:
        ok, loss_err, change_err = agreement(reference, checks[name])
        if len(contenders) == 1:
            ok = None                          # checked against nothing: said in the notes
        median = statistics.median(samples[name])
        rows.append(dict(
            threads=threads, batch=batch, contender=name, steps_timed=len(samples[name]),
            ms=median * 1e3, best_ms=min(samples[name]) * 1e3, samples_per_s=batch / median,
            peak_mb=memory[name]["peak_mb"], imports_mb=memory[name]["after_imports"]["rss_mb"],
            growth_mb=round(memory[name]["rss_mb"] - rss_warm[name], 1),
            growth_steps=len(samples[name]) + args.growth_steps, backoffs=backoffs[name],
            samples_ms=[round(t * 1e3, 3) for t in samples[name]], round_ms=[round(t, 3) for t in round_ms[name]],
            losses=checks[name]["losses"],
            loss_rel_error=loss_err, weight_change_rel_error=change_err,
            verified=ok))
    by_name = {row["contender"]: row for row in rows}
    if "minidl" in by_name:
        for row in rows:
            row["minidl_speedup"] = row["ms"] / by_name["minidl"]["ms"]
    log(f"  measured {threads} thread(s), batch {batch}: "
        + ", ".join(f"{r['contender']} {r['ms']:.2f} ms" for r in rows))
    return rows


def summarize(rows: list[dict]) -> list[dict]:
    """Per thread count and batch: minidl against each contender, with the targets at 2 threads."""
    summary = []
    for key in sorted({(r["threads"], r["batch"]) for r in rows}):
        group = {r["contender"]: r for r in rows if (r["threads"], r["batch"]) == key}
        if "minidl" not in group:
            continue
        mine = group["minidl"]
        entry = dict(threads=key[0], batch=key[1], targets=key[0] == TARGET_THREADS,
                     disagree=[name for name, r in group.items() if r.get("verified") is False])
        for name in TARGETS:
            if name in group:
                entry[f"vs_{name}"] = group[name]["ms"] / mine["ms"]
                entry[f"{name}_target"] = TARGETS[name].get(key[1]) if entry["targets"] else None
                if group[name].get("round_ms") and mine.get("round_ms"):   # one round's blocks: seconds apart
                    entry[f"vs_{name}_rounds"] = [theirs / ours for theirs, ours in
                                                  zip(group[name]["round_ms"], mine["round_ms"])]
        if "numpy" in group:
            entry["memory_vs_numpy"] = mine["peak_mb"] / group["numpy"]["peak_mb"]
        summary.append(entry)
    return summary


def memory_by_threads(rows: list[dict]) -> dict:
    """{contender: {threads: peak MB at the largest batch measured}}: memory should not grow with threads."""
    largest = max(r["batch"] for r in rows)
    peaks: dict = {}
    for r in rows:
        if r["batch"] == largest:
            peaks.setdefault(r["contender"], {})[r["threads"]] = r["peak_mb"]
    return {name: by_threads for name, by_threads in peaks.items() if len(by_threads) > 1}


def round_range(entry: dict, name: str) -> str:
    """' (rounds 1.32-1.78)': the spread of the per-round ratios, each from two blocks run seconds apart (a
    target inside it is within this run's noise); '' with fewer than two rounds."""
    ratios = entry.get(f"vs_{name}_rounds") or []
    return f" (rounds {min(ratios):.2f}-{max(ratios):.2f})" if len(ratios) > 1 else ""


def missed_targets(summary: list[dict]) -> list[str]:
    missed = []
    for s in summary:
        if not s["targets"]:
            continue
        where = f"batch {s['batch']}"
        # a step that takes other steps than the NumPy step's meets no target
        missed += [f"{where}: {NAMES.get(name, name)}'s step disagrees with the reference"
                   for name in s["disagree"]]
        for name in TARGETS:
            target = s.get(f"{name}_target")
            if target and s[f"vs_{name}"] < target:
                missed.append(f"{where}: {s[f'vs_{name}']:.2f}x {NAMES[name]} < {target}x{round_range(s, name)}")
        if "memory_vs_numpy" in s and s["memory_vs_numpy"] > MEMORY_TARGET:
            missed.append(f"{where}: peak memory {s['memory_vs_numpy']:.2f}x NumPy's > {MEMORY_TARGET}x")
    return missed


def targets_verdict(summary: list[dict], missed: list[str]) -> str | None:
    """The table's last line on the targets; None where no row is at TARGET_THREADS."""
    rows = [s for s in summary if s["targets"]]
    if not rows:
        return None
    compared = any(s.get(f"{name}_target") for s in rows for name in TARGETS) or \
        any("memory_vs_numpy" in s for s in rows)
    others = any(f"vs_{name}" in s for s in rows for name in TARGETS)
    said = ("missed: " + "; ".join(missed) if missed else "all met" if compared else
            "none at these batch sizes" if others else "none compared (minidl alone; they are ratios to others)")
    return f"targets at {TARGET_THREADS} threads: {said}"


def run(args) -> int:
    import importlib.util
    import sys

    from minidl.bench import environment, report, train_problem
    from minidl.interrupts import sigterm_as_ctrl_c

    def refuse(message: str) -> int:
        print(f"minidl bench train: {message}", file=sys.stderr)
        return 2

    args.rounds = args.rounds or (2 if args.quick else 5)
    thread_counts = args.threads or ([1] if args.quick else [1, 2])
    batch_sizes = args.batches or ([10] if args.quick else [10, 64, 256])
    if args.profile and (args.json is not None or args.contenders is not None):
        return refuse("--profile measures minidl alone and prints its table: drop --json and --contenders")
    contenders = list(args.contenders or CONTENDERS)
    try:
        report.check_json_destination(args.json)
    except ValueError as error:
        return refuse(str(error))
    notes = []
    for contender, package in OPTIONAL.items():
        if contender in contenders and importlib.util.find_spec(package) is None:
            contenders.remove(contender)
            notes.append(f"{NAMES[contender]} is not installed: its column is skipped (pip install {package} to compare).")
    if not contenders:
        return refuse(" ".join(notes) + " Nothing left to measure.")
    if len(contenders) == 1:
        notes.append(f"{contenders[0]} alone: nothing to check its steps against (add numpy to verify them).")
    if args.profile:
        from minidl.bench.train_profile import profile

        for threads in thread_counts:
            for batch in batch_sizes:
                profile(batch, threads)
                print()
        return 0
    log = (lambda text: print(text, file=sys.stderr, flush=True)) if args.json is None else (lambda text: None)
    info = environment.describe()
    from importlib.metadata import version
    for contender, package in OPTIONAL.items():
        if contender in contenders:
            info[contender] = version(package)
    rows = []
    try:
        with sigterm_as_ctrl_c():             # so the workers stop with the benchmark, not run on orphaned
            for threads in thread_counts:
                for batch in batch_sizes:
                    rows += measure_config(contenders, threads, batch, args, log)
    except KeyboardInterrupt:
        print("\nminidl bench train: interrupted; its workers stopped, nothing written", file=sys.stderr)
        return 130
    except RuntimeError as error:             # a worker failed (out of memory, a contender's error)
        print(f"minidl bench train: {str(error).splitlines()[0]}", file=sys.stderr)
        return 1
    info["load_average_1min_end"] = round(__import__("os").getloadavg()[0], 2)
    summary = summarize(rows)
    failed = [f"{r['contender']} {r['threads']}T b{r['batch']}" for r in rows if r["verified"] is False]
    missed = missed_targets(summary)
    settings = dict(rounds=args.rounds, block_seconds=args.block_seconds, warmup=args.warmup,
                    pause_s=args.pause, verify_steps=args.verify_steps, growth_steps=args.growth_steps,
                    learning_rate=train_problem.LEARNING_RATE, sizes=list(train_problem.SIZES),
                    parameters=train_problem.parameter_count())
    if args.json is not None:
        report.write_json(dict(benchmark="train", environment=info, settings=settings, results=rows,
                               summary=summary, peak_mb_by_threads=memory_by_threads(rows),
                               missed_targets=missed, notes=notes), args.json)
    else:
        print(f"minidl bench train - {environment.describe_line(info)}"
              + "".join(f"; {NAMES[c]} {info[c]}" for c in OPTIONAL if c in info))
        print(f"784-1000x5-10 sigmoid MLP, softmax cross-entropy, SGD lr {train_problem.LEARNING_RATE}, "
              f"float32; each contender in its own process; {args.rounds} alternating rounds of "
              f"~{args.block_seconds} s blocks after {max(args.warmup, 1)} warm-up steps; ms = median per step; "
              f"speedup = its ms / minidl ms (rounds: the range of the per-round ratios); peak = VmHWM of "
              f"the whole process; growth = resident MB after the last step minus after warm-up; backoffs = times "
              f"minidl's kernels fell back to one thread while timed (a busy machine); "
              f"load average {info['load_average_1min']} -> "
              f"{info['load_average_1min_end']}\n")
        print(report.table(rows, [
            ("threads", "thr", "d"), ("batch", "batch", "d"), ("contender", "contender", ""),
            ("ms", "ms/step", ".2f"), ("best_ms", "best", ".2f"), ("samples_per_s", "samples/s", ".0f"),
            ("minidl_speedup", "minidl speedup", ".2f"), ("peak_mb", "peak MB", ".0f"),
            ("imports_mb", "imports MB", ".0f"), ("growth_mb", "growth MB", ".1f"),
            ("growth_steps", "over steps", "d"), ("backoffs", "backoffs", "d"), ("verified", "agrees", ""),
        ]))
        print()
        for s in summary:
            parts = []
            for name in TARGETS:
                if f"vs_{name}" in s:
                    target = s[f"{name}_target"]
                    parts.append(f"{s[f'vs_{name}']:.2f}x {NAMES[name]}{round_range(s, name)}"
                                 + (f" (target {target}x)" if target else ""))
            if "vs_numpy" in s:
                parts.append(f"peak memory {s['memory_vs_numpy']:.2f}x NumPy's"
                             + (f" (target <= {MEMORY_TARGET}x)" if s["targets"] else ""))
            print(f"  {s['threads']} thread(s), batch {s['batch']}: " + ", ".join(parts))
        peaks = memory_by_threads(rows)
        if peaks:
            print("  peak memory by thread count (largest batch): " + "; ".join(
                f"{name} " + ", ".join(f"{t}T {mb:.0f} MB" for t, mb in sorted(by_threads.items()))
                for name, by_threads in peaks.items()))
        verdict = targets_verdict(summary, missed)
        if verdict:
            print(f"\n{verdict}")
        for note in notes:
            print(note)
    if failed:
        print(f"CONTENDERS DISAGREE (losses or weight updates): {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0
