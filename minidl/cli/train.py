"""`minidl train`: train an MLP classifier on Fashion-MNIST, MNIST or the built-in Shapeset-3x2.

    minidl train fashion-mnist --hidden 256 256 --activation relu --optimizer adam --epochs 10 --out runs/fm
    minidl train --out runs/fm --resume          # continue an interrupted run with its saved settings

The output folder holds config.json (the settings), metrics.jsonl (one line per epoch), checkpoint.npz
(rewritten every epoch and on Ctrl-C) and model.npz (the final weights).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from minidl.cli.registry_args import activation_help, activation_name, scheme_help, scheme_name

DATASETS = ("fashion-mnist", "mnist", "shapeset")
# Test images of the built-in dataset come from this fixed seed, whatever --seed says.
SHAPESET_TEST_SEED = 2**31 - 1

DEFAULTS = dict(
    dataset="fashion-mnist", data_dir=None, hidden=[256, 256], activation="relu", init="xavier_uniform",
    optimizer="adam", lr=None, momentum=0.9, nesterov=False, weight_decay=0.0, betas=[0.9, 0.999], eps=1e-8,
    batch_size=64, epochs=10, val_size=5000, train_size=50_000, test_size=10_000, seed=0, out=None,
    resume=False, progress=True,
)
DEFAULT_LR = {"adam": 1e-3, "sgd": 0.05}
# Settings that define a run: a resumed run must not change them.
RUN_SETTINGS = ("dataset", "data_dir", "hidden", "activation", "init", "optimizer", "lr", "momentum", "nesterov",
                "weight_decay", "betas", "eps", "batch_size", "val_size", "train_size", "test_size", "seed")


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Append "(default: ...)" unless the help text already states its default."""

    def _get_help_string(self, action):
        if "default:" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def register(subparsers) -> argparse.ArgumentParser:
    d = DEFAULTS
    parser = subparsers.add_parser(
        "train", help="train an MLP on Fashion-MNIST, MNIST or Shapeset-3x2",
        description="Train an MLP classifier on Fashion-MNIST, MNIST or the built-in Shapeset-3x2. Writes "
                    "config.json, metrics.jsonl (one line per epoch), checkpoint.npz (every epoch and on Ctrl-C) "
                    "and model.npz to --out; --resume continues an interrupted run with the same numbers.",
        formatter_class=_HelpFormatter)
    data = parser.add_argument_group("data")
    data.add_argument("dataset", nargs="?", choices=DATASETS, default=d["dataset"],
                      help="dataset to train on (shapeset is generated, no files needed)")
    data.add_argument("--data-dir", default=d["data_dir"], metavar="DIR",
                      help="folder holding the IDX files (default: search $MINIDL_DATA, then "
                           "/usr/share/datasets/<dataset> and other well-known places)")
    data.add_argument("--val-size", type=int, default=d["val_size"], metavar="N",
                      help="training examples held out for validation (0: none)")
    data.add_argument("--train-size", type=int, default=d["train_size"], metavar="N",
                      help="shapeset only: number of generated training images (before the validation split)")
    data.add_argument("--test-size", type=int, default=d["test_size"], metavar="N",
                      help="shapeset only: number of generated test images")
    model = parser.add_argument_group("model")
    model.add_argument("--hidden", type=int, nargs="+", default=d["hidden"], metavar="SIZE",
                       help="hidden layer sizes")
    model.add_argument("--activation", type=activation_name, default=d["activation"], metavar="NAME",
                       help=f"hidden activation: {activation_help()}")
    model.add_argument("--init", type=scheme_name, default=d["init"], metavar="SCHEME",
                       help=f"weight init scheme: {scheme_help()}")
    opt = parser.add_argument_group("optimizer")
    opt.add_argument("--optimizer", choices=("adam", "sgd"), default=d["optimizer"], help="optimizer")
    opt.add_argument("--lr", type=float, default=d["lr"],
                     help=f"learning rate (default: {DEFAULT_LR['adam']} for adam, {DEFAULT_LR['sgd']} for sgd)")
    opt.add_argument("--momentum", type=float, default=d["momentum"], help="sgd momentum")
    opt.add_argument("--nesterov", action="store_true", default=d["nesterov"], help="sgd: Nesterov momentum")
    opt.add_argument("--weight-decay", type=float, default=d["weight_decay"], help="L2 weight decay")
    opt.add_argument("--betas", type=float, nargs=2, default=d["betas"], metavar=("B1", "B2"), help="adam betas")
    opt.add_argument("--eps", type=float, default=d["eps"], help="adam epsilon")
    run = parser.add_argument_group("run")
    run.add_argument("--batch-size", type=int, default=d["batch_size"], metavar="N", help="minibatch size")
    run.add_argument("--epochs", type=int, default=d["epochs"], metavar="N",
                     help="total epochs (with --resume: train until this many are done)")
    run.add_argument("--seed", type=int, default=d["seed"], help="seed of init, shuffling, split and shapeset")
    run.add_argument("--out", default=d["out"], metavar="DIR",
                     help="output folder (default: runs/<dataset>)")
    run.add_argument("--resume", action="store_true", default=d["resume"],
                     help="continue the run in --out from its checkpoint, with its saved settings")
    run.add_argument("--no-progress", dest="progress", action="store_false", default=d["progress"],
                     help="hide the progress bar (default: shown)")
    parser.set_defaults(func=run_command)
    return parser


def _settings_for_resume(args, out: Path) -> dict:
    """The saved settings of the run in `out`; options given now must agree with them (except --epochs)."""
    config_path = out / "config.json"
    if not config_path.exists():
        raise SystemExit(f"error: nothing to resume in {out}: no config.json (start without --resume)")
    saved = json.loads(config_path.read_text())
    conflicts = []
    for key in RUN_SETTINGS:
        given = getattr(args, key)
        if given != saved.get(key) and given != DEFAULTS[key]:
            conflicts.append(f"--{key.replace('_', '-')} {given} (the run uses {saved.get(key)})")
    if conflicts:
        raise SystemExit(f"error: --resume continues {out} with its saved settings; these options differ: "
                         + "; ".join(conflicts) + ". Drop them, or start a new run with another --out.")
    return saved


def _datasets(settings: dict):
    """(train, val or None, test) ArrayDatasets for the settings."""
    import numpy as np

    from minidl.data import ArrayDataset, load_fashion_mnist, load_mnist, shapeset, train_val_split

    name, seed = settings["dataset"], settings["seed"]
    if name == "shapeset":
        train = ArrayDataset(*shapeset(settings["train_size"], seed=seed, dtype=np.uint8))
        test = ArrayDataset(*shapeset(settings["test_size"], seed=SHAPESET_TEST_SEED, dtype=np.uint8))
    else:
        load = load_fashion_mnist if name == "fashion-mnist" else load_mnist
        train = ArrayDataset(*load(settings["data_dir"], split="train"))
        test = ArrayDataset(*load(settings["data_dir"], split="test"))
    val = None
    if settings["val_size"] > 0:
        train, val = train_val_split(train, settings["val_size"], seed=seed)
    return train, val, test


def _optimizer(settings: dict, parameters):
    from minidl import optim

    lr = settings["lr"] if settings["lr"] is not None else DEFAULT_LR[settings["optimizer"]]
    if settings["optimizer"] == "sgd":
        return optim.SGD(parameters, lr=lr, momentum=settings["momentum"], nesterov=settings["nesterov"],
                         weight_decay=settings["weight_decay"])
    return optim.Adam(parameters, lr=lr, betas=tuple(settings["betas"]), eps=settings["eps"],
                      weight_decay=settings["weight_decay"])


def run_command(args) -> int:
    out = Path(args.out if args.out is not None else f"runs/{args.dataset}")
    if args.resume:
        settings = _settings_for_resume(args, out)
    else:
        if (out / "checkpoint.npz").exists() or (out / "config.json").exists():
            print(f"error: {out} already holds a run; pass --resume to continue it, or choose another --out",
                  file=sys.stderr)
            return 2
        settings = {key: getattr(args, key) for key in RUN_SETTINGS}
    settings["epochs"] = args.epochs

    import minidl as mdl
    from minidl import nn
    from minidl.data import DataLoader, DatasetNotFoundError
    from minidl.training import Trainer, TrainingDiverged, TrainingInterrupted

    try:
        train, val, test = _datasets(settings)
    except (DatasetNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    mdl.manual_seed(settings["seed"])
    num_classes = int(max(train.num_classes, test.num_classes))
    try:
        model = nn.MLP([train.num_features, *settings["hidden"], num_classes],
                       activation=settings["activation"], init=settings["init"])
        optimizer = _optimizer(settings, model.parameters())
        train_loader = DataLoader(train, settings["batch_size"], shuffle=True, seed=settings["seed"])
    except (ValueError, TypeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    eval_loaders = {"val": DataLoader(val, 1000, shuffle=False)} if val is not None else {}
    eval_loaders["test"] = DataLoader(test, 1000, shuffle=False)

    out.mkdir(parents=True, exist_ok=True)
    if not args.resume:
        (out / "config.json").write_text(json.dumps(settings, indent=2) + "\n")
    trainer = Trainer(model, optimizer, train_loader, eval_loaders=eval_loaders, out_dir=out,
                      progress=args.progress, resume_hint=f"minidl train --out {out} --resume")
    print(f"training {' -> '.join(map(str, model.sizes))} {settings['activation']} MLP ({settings['init']} init, "
          f"{settings['optimizer']}) on {settings['dataset']}: {len(train)} train, "
          f"{len(val) if val is not None else 0} val, {len(test)} test examples; output in {out}")
    try:
        if args.resume:
            trainer.resume()
            print(f"resumed from {trainer.last_checkpoint} after update {trainer.step} "
                  f"({trainer.epoch} epochs + {trainer.batch} batches done)")
        trainer.fit(epochs=settings["epochs"])
    except TrainingInterrupted as interrupted:
        print(interrupted.message, file=sys.stderr)
        return 130
    except TrainingDiverged as diverged:
        print(f"error: {diverged}", file=sys.stderr)
        return 1
    if trainer.history:
        last = trainer.history[-1]
        print(f"done: test error {100 * last['test_error']:.2f}% after {last['epoch']} epochs; "
              f"weights in {out / 'model.npz'}, metrics in {out / 'metrics.jsonl'}")
    return 0
