"""`minidl reproduce`: the Glorot & Bengio (2010) study end to end (see minidl.experiments)."""
from __future__ import annotations

from minidl.argtypes import comma_list, integer, nonempty_path, one_line_errors, real
from minidl.cli.registry_args import activation_help, activation_name, scheme_help, scheme_name


def _listed(kind):
    """A comma-separated list of ``kind``; a value listed twice is refused by StudyConfig.validate, which
    names the part of the study (it checks a resumed study's settings too)."""
    parse = comma_list(kind, distinct=False)
    return lambda text: tuple(parse(text))


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "reproduce",
        help="reproduce Glorot & Bengio (2010): what initialization does to deep nets",
        description=(
            "Run the Glorot & Bengio (2010) study and write report.md, figures/*.png, results.json and CSVs "
            "into one folder. Presets: the default finishes within 10 minutes on 2 cores (1000-unit nets: "
            "at-init study on 5- and 10-layer nets of {sigmoid,tanh,softsign,relu} x 6 schemes; training of the "
            "paper's 5x1000 nets for {sigmoid,tanh,softsign} x {standard,xavier_uniform} x 2 seeds, sigmoid "
            "6000 updates, tanh and softsign 1000, batch 64; if the measured speed does not fit 570 s, tanh "
            "and softsign are cut first, to 300, then every run by its share; the shorter runs go first and "
            "the sigmoid runs are re-planned from the pace their updates kept); --extensions adds ReLU/He, "
            "depth and batch-norm studies beyond the paper (a few minutes more, outside the budget); --quick "
            "within a minute (small nets); --full at the "
            "paper's scale (batch 10, 5 million updates per run, lr search, 3 seeds: days of CPU time; the "
            "progress bar gives the estimate). Options below override the preset; unset, they take the "
            "preset's value."))
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="shrunk study that finishes within a minute")
    mode.add_argument("--full", action="store_true", help="the paper's scale (many hours)")
    parser.add_argument("--extensions", action="store_true",
                        help="also run the studies beyond the paper: ReLU under Xavier vs He at init (depths 5-30) "
                             "and a 30x256 ReLU net trained under both, a depth sweep (2-20) of every activation x "
                             "scheme, the standard-init 5x1000 sigmoid net with and without batch norm; a few more "
                             "minutes (the progress bar gives the estimate); with --quick at toy size")
    parser.add_argument("--out", type=nonempty_path, default=None,
                        help="output folder, new or empty (default: a new folder under runs/); an existing study "
                             "is never overwritten")
    parser.add_argument("--resume", action="store_true",
                        help="continue the unfinished study in --out with its own settings: finished parts are "
                             "kept, unfinished runs continue from their checkpoints")
    parser.add_argument("--dataset", default=None, choices=("auto", "fashion-mnist", "mnist", "shapeset"),
                        help="auto (default) = Fashion-MNIST when installed, else the built-in Shapeset-3x2")
    parser.add_argument("--data-dir", type=nonempty_path, default=None,
                        help="folder holding the dataset's IDX files")
    parser.add_argument("--skip-at-init", action="store_true", help="skip the at-initialization study")
    parser.add_argument("--skip-training", action="store_true", help="skip the training study")
    parser.add_argument("--depth", type=integer(1), default=None, help="hidden layers of the trained nets")
    parser.add_argument("--width", type=integer(1), default=None, help="units per hidden layer (both studies)")
    parser.add_argument("--init-depths", type=_listed(integer(2)), default=None,
                        help="depths of the at-init nets, e.g. 5,10")
    parser.add_argument("--activations", type=_listed(activation_name), default=None, metavar="NAMES",
                        help="activations of the training study, e.g. sigmoid,tanh,softsign; any of: "
                             + activation_help())
    parser.add_argument("--init-activations", type=_listed(activation_name), default=None, metavar="NAMES",
                        help="activations of the at-init study, e.g. sigmoid,tanh,softsign,relu (names as for "
                             "--activations)")
    parser.add_argument("--schemes", type=_listed(scheme_name), default=None, metavar="SCHEMES",
                        help="init schemes of the training study, e.g. standard,xavier_uniform; any of: "
                             + scheme_help())
    parser.add_argument("--init-schemes", type=_listed(scheme_name), default=None, metavar="SCHEMES",
                        help="init schemes of the at-init study (names as for --schemes)")
    parser.add_argument("--seeds", type=_listed(integer(0)), default=None, help="training seeds, e.g. 0,1")
    parser.add_argument("--updates", type=integer(1), default=None,
                        help="SGD updates of every training run (default: sigmoid 6000, tanh and softsign "
                             "1000, cut to fit the time budget)")
    parser.add_argument("--batch-size", type=integer(1), default=None, help="minibatch size")
    parser.add_argument("--lr", type=real(0, low_open=True), default=None,
                        help="one learning rate for every training run")
    parser.add_argument("--lr-search", action="store_true",
                        help="choose each configuration's lr on validation error (short runs over a grid)")
    parser.add_argument("--lr-grid", type=_listed(real(0, low_open=True)), default=None,
                        help="learning rates tried by --lr-search (default 0.01,0.03,0.1,0.3,1)")
    parser.add_argument("--lr-search-updates", type=integer(1), default=None,
                        help="updates per trial of --lr-search")
    parser.add_argument("--time-budget", type=real(0), default=None,
                        help="seconds the whole study may take: training updates per run are cut to fit, from the "
                             "measured speed (the activations with fewer updates first, down to 300; default "
                             "preset: 570; 0 = no limit)")
    parser.add_argument("--checkpoint-every", type=integer(1), default=None, metavar="UPDATES",
                        help="updates between a run's checkpoints in OUT/checkpoints/ (default 2000)")
    parser.add_argument("--workers", type=integer(1), default=None, metavar="N",
                        help="run the training runs on a Dask LocalCluster of N single-run processes, at most "
                             "one per core (needs pip install 'minidl[dask]')")
    parser.add_argument("--scheduler", type=scheduler_address, default=None, metavar="ADDRESS",
                        help="run the training runs on an existing Dask cluster, e.g. tcp://host:8786; --out must "
                             "be on a file system every worker shares")
    parser.add_argument("--threads-per-run", type=integer(1), default=None, metavar="T",
                        help="kernel threads of each training run (default: serial all cores, Dask 1)")
    parser.add_argument("--max-attempts", type=integer(1), default=None, metavar="N",
                        help="failed starts of one run (its worker died or it raised; not those stopped by Ctrl-C, "
                             "SIGTERM or a lost scheduler) before the study fails (Dask; default 3)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    one_line_errors(parser)
    parser.set_defaults(func=run)


# Options that shape what the study computes (all default to None or False): a resumed study keeps
# those it was started with.
STUDY_OPTIONS = ("quick", "full", "dataset", "data_dir", "skip_at_init", "skip_training", "depth", "width",
                 "init_depths", "activations", "init_activations", "schemes", "init_schemes", "seeds", "updates",
                 "batch_size", "lr", "lr_search", "lr_grid", "lr_search_updates", "time_budget", "extensions")


# Options of one part of the study: given with that part skipped they would be ignored (and never checked).
TRAINING_OPTIONS = ("depth", "activations", "schemes", "seeds", "updates", "batch_size", "lr", "lr_search", "lr_grid",
                    "lr_search_updates")
AT_INIT_OPTIONS = ("init_depths", "init_activations", "init_schemes")


def _refuse_options_without_effect(args) -> None:
    """ValueError for an option that would change nothing: one of a skipped part, a learning-rate search's
    without --lr-search, or both parts skipped."""
    if args.skip_at_init and args.skip_training:
        raise ValueError("--skip-at-init with --skip-training leaves nothing to run")
    for skipped, flag, options in ((args.skip_training, "--skip-training", TRAINING_OPTIONS),
                                   (args.skip_at_init, "--skip-at-init", AT_INIT_OPTIONS)):
        given = [name for name in options if getattr(args, name) not in (None, False)]
        if skipped and given:
            raise ValueError(f"--{given[0].replace('_', '-')} does not apply with {flag} (that part is not run)")
    for name in ("lr_grid", "lr_search_updates"):
        if getattr(args, name) is not None and not args.lr_search:
            raise ValueError(f"--{name.replace('_', '-')} applies to the learning-rate search: add --lr-search")


def build_config(args):
    """The StudyConfig that `args` describe: a preset, then the overrides."""
    import dataclasses

    from minidl.experiments.config import preset

    config = preset("quick" if args.quick else "full" if args.full else "default")
    config.dataset, config.data_dir = args.dataset or "auto", args.data_dir
    if config.dataset == "shapeset" and args.data_dir is not None:
        raise ValueError("--data-dir does not apply to shapeset (it is generated: no files are read)")
    _refuse_options_without_effect(args)
    if args.skip_at_init:
        config.at_init = None
    if args.skip_training:
        config.training = None
    if config.at_init is not None:
        a = config.at_init
        overrides = {"width": args.width, "depths": args.init_depths, "activations": args.init_activations,
                     "schemes": args.init_schemes}
        config.at_init = dataclasses.replace(a, **{k: v for k, v in overrides.items() if v is not None})
    if config.training is not None:
        t = config.training
        overrides = {"width": args.width, "depth": args.depth, "activations": args.activations,
                     "schemes": args.schemes, "seeds": args.seeds, "updates": args.updates,
                     "batch_size": args.batch_size}
        t = dataclasses.replace(t, **{k: v for k, v in overrides.items() if v is not None})
        if args.lr is not None:
            t.learning_rates = {a: args.lr for a in t.activations}
            t.learning_rates.update({(a, s): args.lr for a in t.activations for s in t.schemes})
        if args.lr_search:
            t.lr_search = True
        if args.lr_grid is not None:
            t.lr_search_grid = args.lr_grid
        if args.lr_search_updates is not None:
            t.lr_search_updates = args.lr_search_updates
        if args.updates is not None:
            t.update_shares, t.update_share_reason = {}, ""    # an explicit length applies to every run
            t.eval_every = min(t.eval_every, max(1, args.updates // 5))
            t.monitor_every = min(t.monitor_every, max(1, args.updates // 10))
        config.training = t
    if args.extensions:
        from minidl.experiments import extensions

        config.extensions = extensions.quick() if args.quick else extensions.ExtensionsConfig()
    if args.time_budget is not None:
        if not args.time_budget >= 0 or args.time_budget == float("inf"):
            raise ValueError(f"--time-budget must be a number of seconds >= 0 (0: no limit), got {args.time_budget}")
        config.time_budget = args.time_budget if args.time_budget > 0 else None
    elif args.updates is not None:
        config.time_budget = None            # an explicit training length is taken as asked
    return config.validate()


def build_execution(args):
    """The Execution (how the study runs) that `args` describe; ValueError for bad values."""
    from minidl.experiments.study import CHECKPOINT_EVERY, Execution

    execution = Execution(workers=args.workers, scheduler=args.scheduler, threads_per_run=args.threads_per_run,
                          checkpoint_every=CHECKPOINT_EVERY if args.checkpoint_every is None else args.checkpoint_every,
                          max_attempts=args.max_attempts if args.max_attempts is not None else 3).validate()
    if (args.workers is not None or args.scheduler is not None) and not _dask_installed():
        raise ValueError("--workers and --scheduler need Dask: pip install 'minidl[dask]'")
    return execution


def _dask_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("distributed") is not None


def _resume_command(args, out) -> str:
    """The command that continues the study in `out`, with the options that put it on Dask (without them it
    would run serially)."""
    import shlex

    where = (f" --scheduler {shlex.quote(args.scheduler)}" if args.scheduler else
             f" --workers {args.workers}" if args.workers else "")
    return f"minidl reproduce --out {shlex.quote(str(out))} --resume{where}"


def _written_since(path, started: float) -> bool:
    """Whether `path` was written at or after `started` (a resumed study's report.md may be the last run's)."""
    try:
        return path.stat().st_mtime >= started - 1.0      # a coarse file-system clock rounds down
    except OSError:
        return False


def scheduler_address(text: str) -> str:
    """argparse type of --scheduler: an address of the form distributed connects to (without Dask installed,
    unchecked: build_execution then says Dask is needed)."""
    import argparse

    if not _dask_installed():
        return text
    from minidl.experiments.dask_runner import check_address

    try:
        return check_address(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _check_fits_in_memory(config) -> None:
    """ValueError where the nets' weights alone (float64, as the at-init study measures them) exceed this
    machine's memory: --width 10000000000 passed every check, then the study "failed" with a MemoryError."""
    import os

    try:
        physical = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return
    for part, depth in ((config.at_init, max(config.at_init.depths) if config.at_init else 0),
                        (config.training, config.training.depth if config.training else 0)):
        if part is not None and 8 * part.width ** 2 * depth > physical:
            raise ValueError(f"--width {part.width} with depth {depth}: the weights alone need "
                             f"{8 * part.width ** 2 * depth / 1e9:,.0f} GB, more than this machine's "
                             f"{physical / 1e9:.0f} GB of memory")


def _check(args):
    """(config or None, execution, out): every check made before any work, raising ValueError/OSError with
    one line for bad options, a missing dataset or a damaged data file (the files are read in full), an --out
    that cannot be used or a --scheduler that does not answer (asked last: it may take
    dask_runner.CONNECT_SECONDS)."""
    from minidl.experiments.data import check_dataset
    from minidl.experiments.study import check_out, default_out_dir

    execution = build_execution(args)
    if args.resume:
        if args.out is None:
            raise ValueError("--resume needs --out: the folder of the study to continue")
        given = [name for name in STUDY_OPTIONS if getattr(args, name) not in (None, False)]   # defaults
        if given:
            raise ValueError("--resume continues the study with the settings it was started with; drop "
                             + ", ".join("--" + name.replace("_", "-") for name in given))
        resumed = check_out(args.out, resume=True)
        config = None
        dataset = resumed.get("config", {}).get("dataset", "auto")
        data_dir = resumed.get("config", {}).get("data_dir")
    else:
        config = build_config(args)
        _check_fits_in_memory(config)
        dataset, data_dir = config.dataset, config.data_dir
    check_dataset(dataset, data_dir)
    out = args.out or default_out_dir()
    if not args.resume:
        check_out(out, resume=False)
    if execution.scheduler is not None:
        from minidl.experiments.dask_runner import check_scheduler

        check_scheduler(execution.scheduler)
    return config, execution, out


def run(args) -> int:
    import shlex
    import sys
    import time
    from pathlib import Path

    from minidl.experiments.runners import SchedulerLost
    from minidl.experiments.study import StudyFolderError, run_study
    from minidl.interrupts import sigterm_as_ctrl_c
    from minidl.training.run_lock import FolderLocked

    try:
        config, execution, out = _check(args)
    except (ValueError, OSError) as error:
        print(f"minidl reproduce: {error}", file=sys.stderr)
        return 2
    command = "minidl " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:] else "minidl reproduce"
    # SIGTERM as Ctrl-C: the study records `interrupted`; inside a run the trainer's own handler stops it
    # after its current update and saves a checkpoint
    started = time.time()
    if execution.dask:      # this process is ours: Dask's INFO lines (its workers reaped at exit), and the
        import importlib    # asyncio errors of a cluster stopped as it started, stay out of its one-line messages
        import logging

        importlib.import_module("distributed")      # its import sets its loggers' levels: these come after
        logging.getLogger("distributed").setLevel(logging.ERROR)
        logging.getLogger("asyncio").setLevel(logging.CRITICAL)
    with sigterm_as_ctrl_c():
        try:
            study = run_study(config, out, command=command, progress=not args.no_progress, execution=execution,
                              resume=args.resume)
        except (FolderLocked, StudyFolderError) as error:     # another process got there first
            print(f"minidl reproduce: {error}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            written = "report.md, results.json" if _written_since(Path(out, "report.md"), started) else \
                "results.json; report.md was not written"
            print(f"\ninterrupted: what finished is in {out} ({written}); continue with: "
                  f"{_resume_command(args, out)}", file=sys.stderr)
            return 130
        except SchedulerLost as error:         # the study is fine, its cluster went away: say how to go on
            print(f"minidl reproduce: {error} ({_resume_command(args, out)}); what finished is in {out}",
                  file=sys.stderr)
            return 1
        except Exception as error:             # a run failed for good: the study says so in its files
            again = ""
            if isinstance(error, OSError):     # a full disk, a read-only folder: once fixed, the study goes on
                again = (f"; fix this, then continue with: {_resume_command(args, out)}"
                         if Path(out, "results.json").is_file() else "; fix this, then run the same command again")
            print(f"minidl reproduce: the study failed ({type(error).__name__}: {error}); what finished is in "
                  f"{out}{again}", file=sys.stderr)
            return 1
    try:
        print(f"wrote {study.out / 'report.md'} ({study.results['status']}, "
              f"{study.results['wall_seconds']:.0f} s)", flush=True)
    except OSError as error:                   # standard output into a full disk: the study itself is written
        print(f"minidl reproduce: {error.filename or 'standard output'}: {error.strerror}; the study finished: "
              f"{study.out / 'report.md'} ({study.results['status']})", file=sys.stderr)
        return 1
    return 0
