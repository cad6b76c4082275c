"""`minidl reproduce`: the Glorot & Bengio (2010) study end to end (see minidl.experiments)."""
from __future__ import annotations

from minidl.cli.registry_args import activation_help, activation_name, csv, scheme_help, scheme_name


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "reproduce",
        help="reproduce Glorot & Bengio (2010): what initialization does to deep nets",
        description=(
            "Run the Glorot & Bengio (2010) study and write report.md, figures/*.png, results.json and CSVs "
            "into one folder. Presets: the default finishes within ~10 minutes on 2 cores (1000-unit nets, "
            "at-init study on 5- and 10-layer nets, 5x1000 training of {sigmoid,tanh,softsign} x "
            "{standard,xavier_uniform} x 2 seeds); --quick within a minute (small nets); --full at the "
            "paper's scale (batch 10, 5 million updates per run, lr search, 3 seeds: days of CPU time; the "
            "progress bar gives the estimate). Options below override the preset; unset, they take the "
            "preset's value."))
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="shrunk study that finishes within a minute")
    mode.add_argument("--full", action="store_true", help="the paper's scale (many hours)")
    parser.add_argument("--out", default=None, help="output folder (default: a new folder under runs/)")
    parser.add_argument("--dataset", default="auto", choices=("auto", "fashion-mnist", "mnist", "shapeset"),
                        help="auto (default) = Fashion-MNIST when installed, else the built-in Shapeset-3x2")
    parser.add_argument("--data-dir", default=None, help="folder holding the dataset's IDX files")
    parser.add_argument("--skip-at-init", action="store_true", help="skip the at-initialization study")
    parser.add_argument("--skip-training", action="store_true", help="skip the training study")
    parser.add_argument("--depth", type=int, default=None, help="hidden layers of the trained nets")
    parser.add_argument("--width", type=int, default=None, help="units per hidden layer (both studies)")
    parser.add_argument("--init-depths", type=csv(int), default=None,
                        help="depths of the at-init nets, e.g. 5,10")
    parser.add_argument("--activations", type=csv(activation_name), default=None, metavar="NAMES",
                        help="activations of the training study, e.g. sigmoid,tanh,softsign; any of: "
                             + activation_help())
    parser.add_argument("--init-activations", type=csv(activation_name), default=None, metavar="NAMES",
                        help="activations of the at-init study, e.g. sigmoid,tanh,softsign,relu (names as for "
                             "--activations)")
    parser.add_argument("--schemes", type=csv(scheme_name), default=None, metavar="SCHEMES",
                        help="init schemes of the training study, e.g. standard,xavier_uniform; any of: "
                             + scheme_help())
    parser.add_argument("--init-schemes", type=csv(scheme_name), default=None, metavar="SCHEMES",
                        help="init schemes of the at-init study (names as for --schemes)")
    parser.add_argument("--seeds", type=csv(int), default=None, help="training seeds, e.g. 0,1")
    parser.add_argument("--updates", type=int, default=None,
                        help="SGD updates of every training run (default: fitted to the time budget, "
                             "sigmoid runs 5x the others)")
    parser.add_argument("--batch-size", type=int, default=None, help="minibatch size")
    parser.add_argument("--lr", type=float, default=None, help="one learning rate for every training run")
    parser.add_argument("--lr-search", action="store_true",
                        help="choose each configuration's lr on validation error (short runs over a grid)")
    parser.add_argument("--lr-grid", type=csv(float), default=None,
                        help="learning rates tried by --lr-search (default 0.01,0.03,0.1,0.3,1)")
    parser.add_argument("--lr-search-updates", type=int, default=None,
                        help="updates per trial of --lr-search")
    parser.add_argument("--time-budget", type=float, default=None,
                        help="seconds the whole study may take: training updates per run are cut (equally for "
                             "every run) to fit, from the measured speed (default preset: 570; 0 = no limit)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def build_config(args):
    """The StudyConfig that `args` describe: a preset, then the overrides."""
    import dataclasses

    from minidl.experiments.config import preset

    config = preset("quick" if args.quick else "full" if args.full else "default")
    config.dataset, config.data_dir = args.dataset, args.data_dir
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
    if args.time_budget is not None:
        config.time_budget = args.time_budget if args.time_budget > 0 else None
    elif args.updates is not None:
        config.time_budget = None            # an explicit training length is taken as asked
    return config.validate()


def run(args) -> int:
    import shlex
    import sys

    from minidl.experiments.study import default_out_dir, run_study

    try:
        config = build_config(args)
    except ValueError as error:
        print(f"minidl reproduce: {error}", file=sys.stderr)
        return 2
    out = args.out or default_out_dir()
    command = "minidl " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:] else "minidl reproduce"
    try:
        study = run_study(config, out, command=command, progress=not args.no_progress)
    except KeyboardInterrupt:
        print(f"\ninterrupted: what finished is in {out} (report.md, results.json)", file=sys.stderr)
        return 130
    print(f"wrote {study.out / 'report.md'} ({study.results['status']}, "
          f"{study.results['wall_seconds']:.0f} s)")
    return 0
