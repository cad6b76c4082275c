"""The command-line options the kernel benchmarks (gemm, sigmoid) share, and how they are read."""
from __future__ import annotations

from minidl._core import MAX_THREADS
from minidl.argtypes import MAX_SECONDS, integer, integers, nonempty_path, real


def add_kernel_arguments(parser, quick_help: str) -> None:
    """--threads, --dtype, --quick, --rounds, --pause and --json."""
    parser.add_argument("--threads", type=integers(1, MAX_THREADS), default=[1, 2],
                        help="comma-separated thread counts (default 1,2)")
    parser.add_argument("--dtype", choices=("float32", "float64", "both"), default="float32")
    parser.add_argument("--quick", action="store_true", help=quick_help)
    parser.add_argument("--rounds", type=integer(1), default=None, help="interleaved rounds per case (default 5)")
    parser.add_argument("--pause", type=real(0, MAX_SECONDS, high_open=False), default=0.15,
                        help="seconds between libraries (default 0.15)")
    parser.add_argument("--json", nargs="?", type=nonempty_path, const="-", default=None, metavar="PATH",
                        help="write JSON results to PATH (or stdout with no PATH) instead of the table")


def read_kernel_arguments(args) -> tuple[list[int], list[str], int]:
    """(thread counts, dtype names, interleaved rounds) from the parsed options; ValueError (one line) for a
    --json PATH that cannot be written, before anything is measured."""
    from minidl.bench.report import check_json_destination

    check_json_destination(args.json)
    thread_counts = list(args.threads)
    dtypes = ["float32", "float64"] if args.dtype == "both" else [args.dtype]
    rounds = args.rounds or (3 if args.quick else 5)
    return thread_counts, dtypes, rounds
