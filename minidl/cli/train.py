"""`minidl train`: train an MLP classifier on Fashion-MNIST, MNIST or the built-in Shapeset-3x2.

    minidl train fashion-mnist --hidden 256 256 --activation relu --optimizer adam --epochs 10 --out runs/fm
    minidl train --out runs/fm --resume              # continue an interrupted run with its saved settings
    minidl train --out runs/fm --resume --epochs 20  # ... and extend it to 20 epochs

The output folder holds config.json (the settings and the data files read, with their sizes and SHA-256),
metrics.jsonl (one line per epoch), checkpoint.npz (rewritten every epoch and on Ctrl-C/SIGTERM) and
model.npz (the final weights). While a run works in it, the folder is locked (`.lock`, naming the process).
config.json is the truth on --resume: options given with --resume must agree with it, except --epochs; the
checkpoint records the settings it was trained with, so a config.json edited since is refused.
Every refusal is one line on stderr and exit status 2; an interrupted run exits 130, a diverged one 1.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import sys
from pathlib import Path

from minidl.argtypes import choice, integer, nonempty_path, one_line_errors, real
from minidl.cli.registry_args import activation_help, activation_name, scheme_help, scheme_name
from minidl.interrupts import sigterm_as_ctrl_c

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
# Options only one optimizer reads: given with the other, they would be silently ignored.
OPTIMIZER_OPTIONS = {"sgd": ("momentum", "nesterov"), "adam": ("betas", "eps")}
# Settings that define a run: a resumed run must not change them (--epochs may grow).
RUN_SETTINGS = ("dataset", "data_dir", "hidden", "activation", "init", "optimizer", "lr", "momentum", "nesterov",
                "weight_decay", "betas", "eps", "batch_size", "val_size", "train_size", "test_size", "seed")
CONFIG_FILE = "config.json"
# What each checkpoint records of its run, compared with config.json on --resume: RUN_SETTINGS but the data
# folder, which may move (the data files' contents are compared by SHA-256 instead).
CHECKPOINT_SETTINGS = tuple(key for key in RUN_SETTINGS if key != "data_dir")


class Refused(Exception):
    """A one-line reason not to run (printed as "error: ...", exit status 2)."""


# ---------------------------------------------------------------------------------------- value checks
# One check per setting, shared by the command line and by config.json on --resume.
CHECKS = {
    "dataset": choice(DATASETS), "hidden": integer(1), "activation": activation_name, "init": scheme_name,
    "optimizer": choice(("adam", "sgd")), "lr": real(0, low_open=True), "momentum": real(0, 1),
    "weight_decay": real(0), "betas": real(0, 1), "eps": real(0, low_open=True), "batch_size": integer(1),
    "epochs": integer(1), "val_size": integer(0), "train_size": integer(1), "test_size": integer(1),
    "seed": integer(0),
}


# ------------------------------------------------------------------------------------------- parser
class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Append "(default: ...)" from DEFAULTS unless the help text already states its default.

    The parser's own defaults are all SUPPRESS, so that the namespace holds exactly the options given.
    """

    def _get_help_string(self, action):
        text = action.help or ""
        if "default:" in text or action.dest not in DEFAULTS:
            return text
        default = DEFAULTS[action.dest]
        shown = " ".join(map(str, default)) if isinstance(default, list) else default
        return f"{text} (default: {shown})"


def register(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "train", help="train an MLP on Fashion-MNIST, MNIST or Shapeset-3x2",
        description="Train an MLP classifier on Fashion-MNIST, MNIST or the built-in Shapeset-3x2. Writes "
                    "config.json, metrics.jsonl (one line per epoch), checkpoint.npz (every epoch and on "
                    "Ctrl-C or SIGTERM) and model.npz to --out, which is locked while the run works in it; "
                    "--resume continues an interrupted run with its saved settings and the same numbers.",
        formatter_class=_HelpFormatter, argument_default=argparse.SUPPRESS)
    one_line_errors(parser)
    data = parser.add_argument_group("data")
    data.add_argument("dataset", nargs="?", type=CHECKS["dataset"], metavar="DATASET",
                      help=f"dataset to train on: {', '.join(DATASETS)} (shapeset is generated, no files needed)")
    data.add_argument("--data-dir", type=nonempty_path, metavar="DIR",
                      help="folder holding the four IDX files, used alone (default: search $MINIDL_DATA, then "
                           "/usr/share/datasets/<dataset> and other well-known places)")
    data.add_argument("--val-size", type=CHECKS["val_size"], metavar="N",
                      help="training examples held out for validation (0: none)")
    data.add_argument("--train-size", type=CHECKS["train_size"], metavar="N",
                      help="shapeset only: number of generated training images (before the validation split)")
    data.add_argument("--test-size", type=CHECKS["test_size"], metavar="N",
                      help="shapeset only: number of generated test images")
    model = parser.add_argument_group("model")
    model.add_argument("--hidden", type=CHECKS["hidden"], nargs="+", metavar="SIZE", help="hidden layer sizes")
    model.add_argument("--activation", type=activation_name, metavar="NAME",
                       help=f"hidden activation: {activation_help()}")
    model.add_argument("--init", type=scheme_name, metavar="SCHEME", help=f"weight init scheme: {scheme_help()}")
    opt = parser.add_argument_group("optimizer")
    opt.add_argument("--optimizer", type=CHECKS["optimizer"], metavar="{adam,sgd}", help="optimizer")
    opt.add_argument("--lr", type=CHECKS["lr"],
                     help=f"learning rate (default: {DEFAULT_LR['adam']} for adam, {DEFAULT_LR['sgd']} for sgd)")
    opt.add_argument("--momentum", type=CHECKS["momentum"], help="sgd momentum, in [0, 1)")
    opt.add_argument("--nesterov", action="store_true", help="sgd: Nesterov momentum")
    opt.add_argument("--weight-decay", type=CHECKS["weight_decay"], help="L2 weight decay")
    opt.add_argument("--betas", type=CHECKS["betas"], nargs=2, metavar=("B1", "B2"), help="adam betas, in [0, 1)")
    opt.add_argument("--eps", type=CHECKS["eps"], help="adam epsilon, > 0")
    run = parser.add_argument_group("run")
    run.add_argument("--batch-size", type=CHECKS["batch_size"], metavar="N", help="minibatch size")
    run.add_argument("--epochs", type=CHECKS["epochs"], metavar="N",
                     help="total epochs (with --resume: train until this many are done; may extend the run)")
    run.add_argument("--seed", type=CHECKS["seed"], help="seed of init, shuffling, split and shapeset")
    run.add_argument("--out", type=nonempty_path, metavar="DIR", help="output folder (default: runs/<dataset>)")
    run.add_argument("--resume", action="store_true",
                     help="continue the run in --out from its checkpoint, with the settings in its config.json")
    run.add_argument("--no-progress", dest="progress", action="store_false",
                     help="hide the progress bar (default: shown)")
    parser.set_defaults(func=run_command)
    return parser


# -------------------------------------------------------------------------------------- settings
def _option(key: str) -> str:
    return "--" + key.replace("_", "-") if key != "dataset" else "DATASET"


def _shown(value) -> str:
    if value is None:
        return "none"
    return " ".join(map(str, value)) if isinstance(value, list) else str(value)


def _absolute(folder) -> str | None:
    """The --data-dir folder as an absolute path, `~` expanded (Refused when `~user` names no known user)."""
    if folder is None:
        return None
    try:
        return str(Path(folder).expanduser().resolve())
    except RuntimeError:                     # pathlib: "Could not determine home directory."
        raise Refused(f"--data-dir {folder}: cannot expand {Path(folder).parts[0]!r}: no home folder is known "
                      f"for it") from None


def _refuse_options_of_the_other_optimizer(given: dict, optimizer: str) -> None:
    """Refuse options given for the optimizer not used (see OPTIMIZER_OPTIONS)."""
    for other, keys in OPTIMIZER_OPTIONS.items():
        for key in keys:
            if other != optimizer and key in given:
                raise Refused(f"{_option(key)} does not apply to {optimizer} (it is an {other} option)")


def _nesterov_without_momentum(settings: dict) -> bool:
    """SGD's Nesterov step needs momentum: with none it is plain SGD, which optim.SGD refuses."""
    return settings["optimizer"] == "sgd" and settings["nesterov"] and settings["momentum"] == 0


def _new_settings(given: dict) -> dict:
    dataset = given.get("dataset", DEFAULTS["dataset"])
    unused = ["--data-dir"] if dataset == "shapeset" else ["--train-size", "--test-size"]
    for option in unused:
        if option[2:].replace("-", "_") in given:
            raise Refused(f"{option} does not apply to {dataset} (" + (
                "it is generated: no files are read)" if dataset == "shapeset" else
                "its split sizes are fixed; --val-size sets the validation part)"))
    _refuse_options_of_the_other_optimizer(given, given.get("optimizer", DEFAULTS["optimizer"]))
    settings = {key: given.get(key, DEFAULTS[key]) for key in (*RUN_SETTINGS, "epochs")}
    if _nesterov_without_momentum(settings):
        raise Refused("--nesterov needs --momentum > 0 (Nesterov momentum with momentum 0 is plain SGD)")
    if settings["lr"] is None:
        settings["lr"] = DEFAULT_LR[settings["optimizer"]]
    settings["data_dir"] = _absolute(settings["data_dir"])
    return settings


def _saved_settings(path: Path) -> dict:
    """The settings in config.json, each checked as on the command line (Refused names what is wrong)."""
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise Refused(f"{path}: unreadable ({error}); fix or remove it") from None
    if not isinstance(saved, dict):
        raise Refused(f"{path}: expected a JSON object of settings, found a {type(saved).__name__}")
    missing = [key for key in (*RUN_SETTINGS, "epochs") if key not in saved]
    if missing:
        raise Refused(f"{path}: missing setting(s) {', '.join(missing)}")
    if saved["lr"] is None:                  # written by an older minidl: the optimizer's default
        saved["lr"] = DEFAULT_LR.get(saved["optimizer"])
    for key, check in CHECKS.items():
        try:
            if key in ("hidden", "betas"):
                if not isinstance(saved[key], list) or not saved[key] or (key == "betas" and len(saved[key]) != 2):
                    raise argparse.ArgumentTypeError(f"must be a list of {'two ' if key == 'betas' else ''}values")
                saved[key] = [check(value) for value in saved[key]]
            else:
                saved[key] = check(saved[key])
        except (argparse.ArgumentTypeError, TypeError, AttributeError) as error:
            raise Refused(f"{path}: setting {key!r}: {error}, found {saved[key]!r}") from None
    if not isinstance(saved["nesterov"], bool) or not isinstance(saved["data_dir"], (str, type(None))):
        raise Refused(f"{path}: setting 'nesterov' must be true/false and 'data_dir' a path or null")
    if _nesterov_without_momentum(saved):
        raise Refused(f"{path}: setting 'nesterov' is true with 'momentum' 0: Nesterov momentum needs a momentum > 0")
    files = saved.get("data_files")
    if files is not None and not (isinstance(files, list) and all(isinstance(entry, dict) for entry in files)):
        raise Refused(f"{path}: 'data_files' must be a list of objects (path, bytes, sha256, role)")
    return saved


def _conflicts(given: dict, saved: dict) -> list[str]:
    differences = []
    for key in RUN_SETTINGS:
        if key not in given:
            continue
        value = _absolute(given[key]) if key == "data_dir" else given[key]
        if value != saved[key]:
            differences.append(f"{_option(key)} {_shown(given[key])} (the run has {_shown(saved[key])})")
    return differences


def _write_config(path: Path, settings: dict) -> None:
    """config.json, replaced atomically (a crash leaves the old one or the new one)."""
    from minidl.serialization import write_atomically

    write_atomically(path, lambda out: out.write((json.dumps(settings, indent=2) + "\n").encode("utf-8")))


# ------------------------------------------------------------------------------------------- data
def _datasets(settings: dict):
    """(train, val or None, test, files read: [fingerprint] ([] for shapeset), one line saying what was read)."""
    import numpy as np

    from minidl.data import ArrayDataset, DatasetNotFoundError, dataset_files, fingerprint, load_split, shapeset
    from minidl.data import train_val_split

    name, seed = settings["dataset"], settings["seed"]
    if name == "shapeset":
        if seed == SHAPESET_TEST_SEED:      # the test set would be the first of the training images
            raise ValueError(f"--seed {seed} is the seed of the shapeset test set; choose another")
        if max(settings["train_size"], settings["test_size"]) * 32 * 32 > np.iinfo(np.intp).max:
            raise MemoryError       # NumPy's "Maximum allowed dimension exceeded": no memory could hold it either
        train = ArrayDataset(*shapeset(settings["train_size"], seed=seed, dtype=np.uint8))
        test = ArrayDataset(*shapeset(settings["test_size"], seed=SHAPESET_TEST_SEED, dtype=np.uint8))
        files, said = [], (f"data: shapeset generated in memory ({settings['train_size']} train images from seed "
                            f"{seed}, {settings['test_size']} test images from seed {SHAPESET_TEST_SEED}); no files read")
    else:
        explicit = settings["data_dir"] is not None
        if explicit and not Path(settings["data_dir"]).is_dir():
            raise Refused(f"--data-dir {settings['data_dir']}: no such folder")
        try:
            found = dataset_files(name, settings["data_dir"], search=not explicit)
        except DatasetNotFoundError as error:
            raise Refused(f"--data-dir {settings['data_dir']}: {error}" if explicit else str(error)) from None
        splits, files = {}, []
        for split, (images, labels) in found.items():
            splits[split] = ArrayDataset(*load_split(name, split, images, labels))
            files += [dict(fingerprint(images), role=f"{split} images"), dict(fingerprint(labels), role=f"{split} labels")]
        train, test = splits["train"], splits["test"]
        folder = os.path.commonpath([entry["path"] for entry in files])
        said = f"data: {name} from {folder}: " + ", ".join(
            f"{os.path.relpath(entry['path'], folder)} ({entry['bytes']:,} bytes, sha256 {entry['sha256'][:12]})"
            for entry in files)
    val = None
    if settings["val_size"] > 0:
        if settings["val_size"] >= len(train):
            raise Refused(f"--val-size {settings['val_size']}: must be smaller than the {len(train)} training "
                          f"examples")
        train, val = train_val_split(train, settings["val_size"], seed=seed)
    return train, val, test, files, said


def _same_data(saved: list | None, files: list, config: Path) -> None:
    """Refuse to resume on data files other than those the run was started on (compared by content)."""
    if saved is None:
        return                               # a config.json from before files were recorded
    before = {entry.get("role"): (entry.get("bytes"), entry.get("sha256")) for entry in saved}
    now = {entry["role"]: (entry["bytes"], entry["sha256"]) for entry in files}
    changed = [f"{entry['path']} ({entry['role']})" for entry in files if before.get(entry["role"]) != now[entry["role"]]]
    if changed or set(before) != set(now):
        raise Refused(f"the data files differ from those recorded in {config} (sizes and SHA-256): "
                      f"{', '.join(changed) or 'a different set of files'}; resume where the run's files are")


def _optimizer(settings: dict, parameters):
    from minidl import optim

    if settings["optimizer"] == "sgd":
        return optim.SGD(parameters, lr=settings["lr"], momentum=settings["momentum"], nesterov=settings["nesterov"],
                         weight_decay=settings["weight_decay"])
    return optim.Adam(parameters, lr=settings["lr"], betas=tuple(settings["betas"]), eps=settings["eps"],
                      weight_decay=settings["weight_decay"])


# ------------------------------------------------------------------------------------------ command
def run_command(args) -> int:
    from minidl.training import FolderLocked
    from minidl.training.run_lock import acquire

    given = {key: value for key, value in vars(args).items() if key in DEFAULTS}   # only the options typed
    out = Path(given["out"] if given.get("out") is not None else f"runs/{given.get('dataset', DEFAULTS['dataset'])}")
    try:
        if out.exists() and not out.is_dir():
            return _refuse(f"--out {out}: is a file, not a folder")
        if given.get("resume") and not (out / CONFIG_FILE).is_file() and not (out / "checkpoint.npz").exists():
            return _refuse(f"nothing to resume in {out}: no {CONFIG_FILE} (start without --resume)")
        made = _missing_folders(out)
    except OSError as error:                 # a name too long, a folder we may not search
        return _refuse(f"--out {out}: {error.strerror or error} [errno {error.errno}]")
    session = _Session(out, given)
    with sigterm_as_ctrl_c():                 # the trainer handles both alike while it trains
        try:
            with acquire(out, "minidl train") as lock:
                if lock.stale:
                    _note(lock.stale)
                return session.run()
        except KeyboardInterrupt:             # Ctrl-C or SIGTERM outside the training loop
            print(f"interrupted before training started; {out} is unchanged" if session.trainer is None else
                  f"interrupted; {session.trainer.checkpoint_note()}", file=sys.stderr)
            return 130
        except Refused as refusal:
            return _refuse(str(refusal))
        except FolderLocked as locked:
            return _refuse(str(locked))
        except OSError as error:
            return _refuse(session.describe_os_error(error))
        finally:
            _remove_while_empty(made)        # refused before writing anything: leave no folder it made


def _missing_folders(out: Path) -> list[Path]:
    """`out` and those of its parents that do not exist yet, innermost first: taking the lock makes them all."""
    missing = []
    for folder in (out, *out.parents):
        if folder.exists():
            break
        missing.append(folder)
    return missing


def _remove_while_empty(folders: list[Path]) -> None:
    """Remove `folders` in order, stopping at the first that holds anything (or cannot be removed)."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:
            return


def _check_metrics(path: Path) -> None:
    from minidl.training import MetricsError, read_records

    try:
        read_records(path)
    except MetricsError as error:
        raise Refused(str(error)) from None


def _refuse(message: str) -> int:
    print("error: " + " ".join(message.split("\n")), file=sys.stderr)
    return 2


def _note(message: str) -> None:
    print(f"note: {message}", file=sys.stderr)


class _Session:
    """One `minidl train` in its locked output folder: settle the settings, build, train, report."""

    def __init__(self, out: Path, given: dict):
        self.out, self.given = out, given
        self.config = out / CONFIG_FILE
        self.trainer = None
        self.hint = f"minidl train --out {shlex.quote(str(out))} --resume"

    def describe_os_error(self, error: OSError) -> str:
        what = f"{error.filename}: " if error.filename else ""      # standard output's errors name it (cli.main)
        text = f"{what}{error.strerror or error} [errno {error.errno}]"
        if self.trainer is None:
            return text
        trainer = self.trainer
        if trainer.last_checkpoint is None:
            return f"{text}; no checkpoint was written yet: fix this, then run the same command again"
        return (f"{text}; the last good checkpoint is {trainer.last_checkpoint} (after update "
                f"{trainer.last_checkpoint_step}); fix this, then resume with: {self.hint}")

    def _settings(self) -> tuple[dict, bool]:
        """(settings, resuming from a checkpoint); refuses a folder that holds another run."""
        out, given = self.out, self.given
        checkpoint = out / "checkpoint.npz"
        if given.get("resume"):
            if not self.config.is_file():
                raise Refused(f"{checkpoint} has no {CONFIG_FILE} beside it, so its settings are unknown")
            settings = _saved_settings(self.config)
            _refuse_options_of_the_other_optimizer(given, settings["optimizer"])
            conflicts = _conflicts(given, settings)
            if conflicts:
                raise Refused(f"--resume continues the run in {out} with the settings in {self.config}; these "
                              f"options differ: {'; '.join(conflicts)}. Drop them (only --epochs may change), or "
                              f"start a new run with another --out")
            if "epochs" in given:
                settings["epochs"] = given["epochs"]
            _check_metrics(out / "metrics.jsonl")
            weights = out / "model.npz"
            if weights.exists() and not weights.is_file():    # written last: found only after all the training
                raise Refused(f"{weights} is not a file, and the resumed run writes its final weights there; move it "
                              f"away, then resume")
            if not checkpoint.exists():
                self._refuse_to_lose_saved_progress()
                _note(f"{out} has no checkpoint: its run stopped before the first one; starting it again from "
                      f"scratch with the settings in {self.config}")
                return settings, False
            return settings, True
        if checkpoint.exists():
            raise Refused(f"{out} already holds a run; pass --resume to continue it, or choose another --out")
        if self.config.exists():             # ours only if it reads as our settings: never overwrite a user's file
            try:
                _saved_settings(self.config)
            except Refused as why:
                raise Refused(f"{out} holds a {CONFIG_FILE} that is not a minidl run's ({why}); minidl would "
                              f"overwrite it: choose another --out") from None
        elif (out / "metrics.jsonl").exists():
            raise Refused(f"{out} holds a metrics.jsonl but no {CONFIG_FILE}, so not a minidl run's; minidl would "
                          f"rewrite it: choose another --out")
        self._refuse_to_lose_saved_progress()
        if self.config.exists():
            _note(f"{out} holds a run that stopped before its first checkpoint; starting again from scratch "
                  f"with the options given now")
        return _new_settings(given), False

    def _refuse_to_lose_saved_progress(self) -> None:
        """Refuse to start over in a folder whose run saved more than one that died before its first checkpoint."""
        from minidl.training import MetricsError
        from minidl.training.trainer import saved_progress

        try:
            saved = saved_progress(self.out)
        except MetricsError as error:
            raise Refused(str(error)) from None
        if saved:
            raise Refused(f"{self.out} holds {' and '.join(saved)} of a run, but no checkpoint.npz to continue it "
                          f"from; starting it again would overwrite them: put its checkpoint back to resume, or "
                          f"choose another --out")

    def run(self) -> int:
        import minidl as mdl
        from minidl import nn
        from minidl.data import DataLoader
        from minidl.training import MetricsError, Trainer, TrainingDiverged, TrainingInterrupted

        settings, resuming = self._settings()
        try:
            train, val, test, files, said = _datasets(settings)
        except ValueError as error:          # a damaged or foreign data file; the message names it
            raise Refused(str(error)) from None
        except MemoryError:
            asked = (f" ({settings['train_size']:,} train and {settings['test_size']:,} test images asked)"
                     if settings["dataset"] == "shapeset" else "")      # the sizes of the others are fixed
            raise Refused(f"not enough memory for the {settings['dataset']} data{asked}") from None
        if resuming:
            _same_data(settings.get("data_files"), files, self.config)
        settings["data_files"] = files
        print(said, flush=True)
        mdl.manual_seed(settings["seed"])
        num_classes = int(max(train.num_classes, test.num_classes))
        sizes = [train.num_features, *settings["hidden"], num_classes]
        try:
            model = nn.MLP(sizes, activation=settings["activation"], init=settings["init"])
        except (MemoryError, ValueError, OverflowError) as error:     # --hidden 10**11: no such arrays
            raise Refused(f"cannot build a {' -> '.join(map(str, sizes))} MLP here: "
                          f"{'not enough memory' if isinstance(error, MemoryError) else error}") from None
        optimizer = _optimizer(settings, model.parameters())
        train_loader = DataLoader(train, settings["batch_size"], shuffle=True, seed=settings["seed"])
        eval_loaders = {"val": DataLoader(val, 1000, shuffle=False)} if val is not None else {}
        eval_loaders["test"] = DataLoader(test, 1000, shuffle=False)
        self.trainer = trainer = Trainer(model, optimizer, train_loader, eval_loaders=eval_loaders, out_dir=self.out,
                                         progress=self.given.get("progress", True), resume_hint=self.hint,
                                         run_settings={key: settings[key] for key in CHECKPOINT_SETTINGS})
        print(f"training {' -> '.join(map(str, model.sizes))} {settings['activation']} MLP ({settings['init']} "
              f"init, {settings['optimizer']}) on {settings['dataset']}: {len(train)} train, "
              f"{len(val) if val is not None else 0} val, {len(test)} test examples; output in {self.out}")
        try:
            if resuming:
                self._resume(trainer, settings)
            else:
                trainer.start_over()
            _write_config(self.config, settings)
            trainer.fit(epochs=settings["epochs"])
        except MetricsError as error:
            raise Refused(str(error)) from None
        except TrainingInterrupted as interrupted:
            print(interrupted.message, file=sys.stderr)
            return 130
        except KeyboardInterrupt:              # while resuming, or a second Ctrl-C while a checkpoint was written
            if resuming and trainer.last_checkpoint is None:       # still reading it: nothing was changed
                print(f"interrupted while resuming; the run's checkpoint {trainer.checkpoint_path} is unchanged; "
                      f"resume with: {self.hint}", file=sys.stderr)
            else:
                print(f"training aborted; {trainer.checkpoint_note()}", file=sys.stderr)
            return 130
        except TrainingDiverged as diverged:
            again = ("run the command again with other settings (this folder can be reused: it holds no checkpoint)"
                     if diverged.checkpoint is None else
                     "a resumed run would diverge the same way, so start a new run with other settings and another --out")
            print(f"error: {diverged} To retry, {again}.", file=sys.stderr)
            return 1
        last = trainer.history[-1] if trainer.history else {"test_error": math.nan, "epoch": trainer.epoch}
        print(f"done: test error {100 * last['test_error']:.2f}% after {last['epoch']} epochs; "
              f"weights in {self.out / 'model.npz'}, metrics in {self.out / 'metrics.jsonl'}")
        return 0

    def _resume(self, trainer, settings: dict) -> None:
        """Continue from the checkpoint, refused (every file in --out as it was) unless it fits `settings`."""
        from minidl.training import MetricsError

        checkpoint = trainer.checkpoint_path
        try:
            trainer.resume(check=lambda loaded: self._refuse_another_run(loaded, settings))
        except MetricsError:
            raise
        except (KeyError, TypeError, ValueError) as error:
            text = error.args[0] if isinstance(error, KeyError) and error.args else str(error)
            raise Refused(f"cannot resume: {text if str(checkpoint) in text else f'{checkpoint}: {text}'}") from None
        print(f"resumed from {trainer.last_checkpoint} after update {trainer.step} "
              f"({trainer.epoch} epochs + {trainer.batch} batches done), training to {settings['epochs']} epochs")

    def _refuse_another_run(self, trainer, settings: dict) -> None:
        """Refused if the loaded checkpoint was trained with other settings than config.json's now, or has done
        more than --epochs (run before the resume changes anything in --out)."""
        trained = {key: list(value) if isinstance(value, tuple) else value
                   for key, value in trainer.optimizer.param_groups[0].items() if key in trainer.optimizer.hyper}
        changed = [f"{key} {_shown(settings[key])} (the checkpoint's optimizer has {_shown(trained[key])})"
                   for key in trained if key in settings and trained[key] != settings[key]]
        recorded = trainer.saved_run_settings or {}                  # {}: a checkpoint from before they were saved
        changed += [f"{key} {_shown(settings.get(key))} (the checkpoint's run has {_shown(recorded[key])})"
                    for key in recorded if key not in trained and recorded[key] != settings.get(key)]
        if changed:
            raise Refused(f"{self.config} was edited after the run started: {'; '.join(changed)}; a resumed run keeps "
                          f"its settings: restore them, or start a new run with another --out")
        if (trainer.epoch, trainer.batch) > (settings["epochs"], 0):      # a batch of epoch N+1 is past N epochs
            done = f"{trainer.epoch} epochs" + (f" and {trainer.batch} batches of epoch {trainer.epoch + 1}"
                                                if trainer.batch else "")
            raise Refused(f"--epochs {settings['epochs']}: the run in {self.out} has already done {done}; --epochs "
                          f"can only extend a run")

