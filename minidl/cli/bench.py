"""`minidl bench <name>`: the microbenchmarks in minidl/bench/ (gemm, sigmoid, and train when present)."""
from __future__ import annotations

import importlib
import importlib.util

from minidl.argtypes import one_line_errors

BENCHMARKS = ("gemm", "sigmoid", "train")


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "bench", help="kernel and training-step benchmarks against NumPy",
        description="Benchmarks: minidl and NumPy side by side in one process (interleaved, verified).")
    one_line_errors(parser)
    group = parser.add_subparsers(dest="benchmark", metavar="BENCHMARK")
    for name in BENCHMARKS:
        if importlib.util.find_spec(f"minidl.bench.{name}") is None:
            continue
        module = importlib.import_module(f"minidl.bench.{name}")  # cheap: heavy imports live in run()
        sub = group.add_parser(name, help=module.DESCRIPTION, description=module.__doc__)
        module.add_arguments(sub)
        one_line_errors(sub)
        sub.set_defaults(func=module.run)
    parser.set_defaults(func=lambda args: _missing_benchmark(parser))


def _missing_benchmark(parser) -> int:
    parser.print_help()
    return 2
