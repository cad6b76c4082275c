"""results.json (written incrementally, atomically) and the CSV files beside it.

Layout of results.json (format "minidl-reproduce/1"):
    status            "running" | "complete" (only once report.md and the figures are written) |
                      "interrupted" (Ctrl-C or SIGTERM) | "failed" (then `error` says why)
    started, finished ISO-8601 UTC times; wall_seconds (summed over the invocations of a resumed study)
    command           the command that started the study
    config            the StudyConfig (preset, dataset, at_init, training), training's updates and
                      intervals as planned
    environment       python, numpy, platform, cpu_count, minidl version, threads (the kernels')
    execution         config (the StudyConfig as given, what --resume continues with), checkpoint_every,
                      invocations [{started, command, environment, wall_seconds, runner {runner: serial|dask, ...},
                      stage_seconds {data, speed, at_init, speed_before_runs, lr_search, short_runs, runs,
                      extensions, report}}],
                      estimate (the planner's, made before the at-init stage; minidl.experiments.planner):
                      {seconds_per_update, seconds_per_eval_example, eval_example_updates,
                      monitor_example_updates, seconds_per_at_init_layer, seconds_per_jacobian,
                      stages {at_init, lr_search, short_runs (the runs shorter than the longest, which go
                      first), runs (the longest), extensions, report: seconds}, seconds_before_plan,
                      total_seconds, time_budget_seconds, revised_after_at_init (the speeds measured again
                      after the at-init stage and the training stages re-planned from them), pace_factor
                      (the longest runs re-planned from the pace of the shorter ones; see budget)}
    data              name, reason, source, n_train, n_valid, n_test, n_classes, majority_error,
                      fingerprint (SHA-256 of the arrays: a resumed study and every Dask worker check it)
    at_init           list, one record per (activation, depth, scheme):
        activation, scheme, depth, width, seed, examples, loss, input_second_moment, output_gradient_var,
        layers[i]: layer, fan_in, fan_out, weight_variance, jacobian_mean_singular_value,
                   pre_activation / activation / backprop_gradient / weight_gradient: summaries
                   {mean, std, second_moment, min, max, p2, p50, p98},
                   predicted {pre_activation_var, pre_activation_var_one_step (from the measured layer below),
                              activation_var, backprop_gradient_var, weight_gradient_var (zero-mean
                              signals assumed: 3-12x low for sigmoid; see diagnostics.theory)}
        summary: activation_std_ratio_per_layer, backprop_gradient_std_top_over_bottom,
                 weight_gradient_std_max_over_min, jacobian_mean_singular_value (layers 2..L),
                 quarter_circle_prediction (0.849 f'(0) sqrt(n Var W))
        histograms: {activation, backprop_gradient, weight_gradient}: per layer {edges, density}
    at_init_skipped   [[activation, depth], ...] at-init groups skipped to stay within the time budget
    training
        budget            time_budget_seconds (null: none), seconds_before_training, measured_seconds_per_update
                          (where the runs execute; once re-planned, the pace the shorter runs kept),
                          updates_planned, updates_per_run, updates_by_activation, update_shares,
                          update_share_reason, cut (bool), expected_training_hours (wall, of the runs still to
                          come when planned), parallel_runs, pace_factor (null, or the time the shorter runs'
                          updates took over their updates x the measured seconds per update: the longest runs
                          were re-planned at that pace), final (the plan the runs follow)
        learning_rates    {"activation/scheme": {lr, source: "fixed"|"search", evidence (fixed: why this rate),
                           search?: {grid, validation_error, updates, chosen}}}
        lr_trials         the --lr-search trials' records (as runs, without monitor/histograms), serial order
        runs              list, one record per (activation, scheme, seed), in serial order (seed, activation,
                          scheme) however they ran (the shorter runs run first):
            activation, scheme, seed, lr, depth, width, batch_size, updates_planned, updates_done,
            diverged_at (update or null), train_seconds, recording_seconds (of which its curve points and
            snapshots) and updates_per_second (of the last attempt),
            execution {task, attempts, attempts_stopped (of which the study stopped: Ctrl-C, SIGTERM, a lost
                      scheduler; not counted against --max-attempts), resumed_from_update, kernels, threads,
                      malloc_tuned, host, pid},
            final_test_error (whole test split), final_validation_error,
            curve {updates, train_loss (mean minibatch loss since the previous point), test_error},
            monitor {updates, layers[i] {mean, std, p2, p50, p98}} on the 300 monitored test examples,
            final_histograms: per layer {edges, density} of the monitored activations at the end
    extensions        (--extensions only; minidl.experiments.extensions)
        config            the ExtensionsConfig
        relu_init         list per (scheme xavier_uniform|kaiming_normal, depth): activation, scheme, depth,
                          width, activation_std [per layer], backprop_gradient_std [per layer],
                          activation_std_ratio_per_layer, backprop_gradient_std_top_over_bottom
        deep_relu         {depth, width, lr, runs: [{activation, scheme, seed, lr, depth, width, updates_done,
                          diverged_at, final_test_error, curve {updates, train_loss, test_error}}]}
        depth_sweep       list per (activation, scheme, depth): gradient_ratio and activation_std_ratio at
                          init, test_error (whole test split) after `updates` at `lr`, diverged_at
        batchnorm         {runs: [{batchnorm (bool), seed, lr, depth, width, updates_done, diverged_at, curve,
                          monitor (as a study run's), final_test_error}]}
    paper_table1      the paper's Table 1 (test error %, 5 hidden layers)
The verdicts in report.md (minidl.experiments.verdicts, extensions) are computed from these fields alone.
CSV files: at_init_layers.csv, training_curves.csv, training_monitor.csv, final_errors.csv.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import math
from pathlib import Path

from minidl.serialization import write_atomically

FORMAT = "minidl-reproduce/1"


def _clean(value):
    """JSON-safe: NaN/inf become null, tuples lists, numpy scalars floats."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_json_atomic(path: Path, data: dict) -> None:
    text = json.dumps(_clean(data), separators=(",", ":")).encode()
    write_atomically(path, lambda file: file.write(text))


def write_json_sealed(path: Path, data: dict) -> None:
    """write_json_atomic of {"sha256": digest, "data": data}: `read_json_sealed` then knows a file whose
    data changed since (one changed digit is still valid JSON)."""
    data = _clean(data)
    write_json_atomic(path, {"sha256": _digest(data), "data": data})


def read_json_sealed(path: Path) -> dict | None:
    """The data of a file `write_json_sealed` wrote, or None: missing, not JSON, or changed since. A dict
    without the seal (written by write_json_atomic, as earlier versions wrote these files) is returned as is."""
    try:
        sealed = json.loads(Path(path).read_text())
    except (FileNotFoundError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(sealed, dict):
        return None
    if set(sealed) != {"sha256", "data"}:
        return sealed
    return sealed["data"] if isinstance(sealed["data"], dict) and sealed["sha256"] == _digest(sealed["data"]) else None


def _digest(data: dict) -> str:
    """SHA-256 of data's JSON with sorted keys: the same for the data written and for the data read back."""
    return hashlib.sha256(json.dumps(data, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _write_csv(path: Path, header: list[str], rows) -> None:
    """The CSV, written atomically (a second Ctrl-C while the study writes what finished leaves the old
    file or the new one)."""
    text = io.StringIO(newline="")
    writer = csv.writer(text)
    writer.writerow(header)
    for row in rows:
        writer.writerow(["" if v is None else v for v in row])
    data = text.getvalue().encode()
    write_atomically(path, lambda file: file.write(data))


def write_csvs(results: dict, folder: Path) -> list[Path]:
    folder = Path(folder)
    written = []
    at_init = results.get("at_init") or []
    if at_init:
        path = folder / "at_init_layers.csv"
        header = ["activation", "scheme", "depth", "layer", "weight_variance", "activation_mean",
                  "activation_std", "activation_p2", "activation_p98", "predicted_activation_var",
                  "measured_activation_var", "backprop_gradient_std", "measured_backprop_gradient_var",
                  "predicted_backprop_gradient_var", "weight_gradient_std", "jacobian_mean_singular_value"]
        rows = ([r["activation"], r["scheme"], r["depth"], L["layer"], L["weight_variance"],
                 L["activation"]["mean"], L["activation"]["std"], L["activation"]["p2"], L["activation"]["p98"],
                 L["predicted"]["activation_var"], L["activation"]["std"] ** 2, L["backprop_gradient"]["std"],
                 L["backprop_gradient"]["std"] ** 2, L["predicted"]["backprop_gradient_var"],
                 L["weight_gradient"]["std"], L["jacobian_mean_singular_value"]]
                for r in at_init for L in r["layers"])
        _write_csv(path, header, rows)
        written.append(path)
    runs = (results.get("training") or {}).get("runs") or []
    if runs:
        path = folder / "training_curves.csv"
        _write_csv(path, ["activation", "scheme", "seed", "lr", "update", "train_loss", "test_error"],
                   ([r["activation"], r["scheme"], r["seed"], r["lr"], u, l, e]
                    for r in runs for u, l, e in zip(r["curve"]["updates"], r["curve"]["train_loss"],
                                                    r["curve"]["test_error"])))
        written.append(path)
        path = folder / "training_monitor.csv"
        _write_csv(path, ["activation", "scheme", "seed", "update", "layer", "mean", "std", "p2", "p50", "p98"],
                   ([r["activation"], r["scheme"], r["seed"], u, i + 1, layer["mean"][k], layer["std"][k],
                     layer["p2"][k], layer["p50"][k], layer["p98"][k]]
                    for r in runs if r.get("monitor")
                    for i, layer in enumerate(r["monitor"]["layers"])
                    for k, u in enumerate(r["monitor"]["updates"])))
        written.append(path)
        path = folder / "final_errors.csv"
        _write_csv(path, ["activation", "scheme", "seed", "lr", "updates_done", "diverged_at", "final_test_error"],
                   ([r["activation"], r["scheme"], r["seed"], r["lr"], r["updates_done"], r["diverged_at"],
                     r["final_test_error"]] for r in runs))
        written.append(path)
    return written
