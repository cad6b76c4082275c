"""Microbenchmarks: minidl's kernels against NumPy, side by side in one process.

Each benchmark module (gemm, sigmoid, and later train) defines
    DESCRIPTION: str
    add_arguments(parser)   its options (cheap: no heavy imports at module level)
    run(args) -> int        does the measuring and prints a table or JSON
and `minidl bench <name>` (minidl/cli/bench.py) finds it by name.
"""
