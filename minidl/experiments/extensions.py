"""Beyond the paper (`minidl reproduce --extensions`): ReLU under Xavier vs He, a depth sweep, batch norm.

- relu_init: ReLU nets of `relu_width` units at depths `relu_depths`, at init under Xavier and He (Kaiming
  normal): the activation std per layer. He et al. (2015, "Delving Deep into Rectifiers", Eq. 10): a
  ReLU halves the second moment, so Var(W) = 2/n keeps it level (ratio 1 per layer) and Xavier's 2/(n+n)
  = 1/n shrinks the std by sqrt(1/2) per layer.
- deep_relu: a deep narrow ReLU net (`deep_depth` x `deep_width`) trained under Xavier and He (He et al.
  2015, Fig. 3: a 30-layer ReLU net stalls under Xavier and trains under He).
- depth_sweep: for each activation x scheme x depth, the at-init back-propagated gradient ratio (top hidden
  layer over layer 1) and the test error after `sweep_updates` updates: where each init breaks.
- batchnorm: the standard-init 5x1000 sigmoid net with and without BatchNorm1d before each activation
  (Ioffe & Szegedy 2015): does the top layer still saturate (Fig. 2's statistics), does it leave the plateau.

Everything lands in results["extensions"] (layout in results.py); verdicts and tables come from there.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from minidl.experiments.training_study import RunRecorder
from minidl.experiments.verdicts import (EARLY_UPDATE, NOT_REPRODUCED, NOT_TESTABLE, REPRODUCED, SIGMOID_LOW, Verdict,
                                         _fixed, _number, escape_update, matches, plateau_threshold, snapshot_at)

HE_RATIO = {"xavier_uniform": math.sqrt(0.5), "kaiming_normal": 1.0}    # predicted std ratio per layer
SWEEP_LEARNING_RATES = {"sigmoid": 0.5, "tanh": 0.1, "softsign": 0.1, "relu": 0.01}
DEEP_RELU_LR = 0.01
HE_BETTER_POINTS = 0.05     # deep ReLU: He's final test error below Xavier's by at least this
SWEEP_SEPARATION = 2.0      # depth sweep: standard's gradient ratio at least this times Xavier's (tanh)
BATCHNORM_LR = 0.5          # the paper pair's sigmoid lr (config.DEFAULT_LEARNING_RATES)
BATCHNORM_COST = 1.3        # an update of the batch-normalized net costs about this many of the plain net's
BATCHNORM_POINTS = 20       # learning-curve points and activation snapshots per batch-norm run


@dataclass
class ExtensionsConfig:
    relu_depths: tuple = (5, 10, 20, 30)
    relu_width: int = 1000
    relu_examples: int = 300
    deep_depth: int = 30
    deep_width: int = 256
    deep_updates: int = 1000
    deep_seeds: tuple = (0,)
    sweep_activations: tuple = ("sigmoid", "tanh", "softsign", "relu")
    sweep_schemes: tuple = ("standard", "xavier_uniform", "kaiming_normal")
    sweep_depths: tuple = (2, 5, 10, 20)
    sweep_width: int = 256
    sweep_updates: int = 500
    batchnorm_depth: int = 5
    batchnorm_width: int = 1000
    batchnorm_updates: int = 1000
    batchnorm_seeds: tuple = (0,)
    batch_size: int = 64

    def validate(self) -> "ExtensionsConfig":
        sizes = (self.relu_width, self.relu_examples - 1, self.deep_depth, self.deep_width, self.deep_updates,
                 self.sweep_width, self.sweep_updates, self.batch_size, min(self.relu_depths),
                 min(self.sweep_depths), len(self.deep_seeds), self.batchnorm_depth, self.batchnorm_width,
                 self.batchnorm_updates, len(self.batchnorm_seeds))
        if min(sizes) < 1:
            raise ValueError("extensions need widths, depths, updates, batch size and seeds >= 1 and 2 examples")
        return self


def quick() -> ExtensionsConfig:
    """Every code path at toy size (what --quick --extensions and the tests run)."""
    return ExtensionsConfig(relu_depths=(3, 6), relu_width=64, relu_examples=50, deep_depth=6, deep_width=32,
                            deep_updates=60, sweep_activations=("tanh", "relu"),
                            sweep_schemes=("standard", "xavier_uniform"), sweep_depths=(2, 4), sweep_width=32,
                            sweep_updates=40, batchnorm_depth=3, batchnorm_width=32, batchnorm_updates=60)


# ------------------------------------------------------------------------------------------- the cost
def units(config: ExtensionsConfig) -> int:
    """Progress-bar units (training updates; an at-init net counts as its depth)."""
    sweep = len(config.sweep_activations) * len(config.sweep_schemes) * len(config.sweep_depths)
    return (2 * sum(config.relu_depths) + 2 * len(config.deep_seeds) * config.deep_updates
            + sweep * (config.sweep_updates + 1) + 2 * len(config.batchnorm_seeds) * config.batchnorm_updates)


def seconds(config: ExtensionsConfig, costs, width: int, depth: int, seconds_per_at_init_layer: float,
            at_init_width: int, test_examples: int, deep_seconds_per_update: float | None = None) -> dict:
    """The planner's estimate per piece {relu_init, deep_relu, batchnorm, depth_sweep: seconds}.

    An update of a net of the deep net's width costs `deep_seconds_per_update` (measured on the deep net)
    scaled by its layers; any other net, the study's `depth` x `width` update (`costs.seconds_per_update`)
    scaled by its weights. At `deep_width` 256 the cost per layer is nearly fixed, not proportional to the
    weights (measured 2026-12-01: 0.90, 2.06, 3.58, 7.27, 11.35 ms at depths 2, 5, 10, 20, 30, where the
    weights said 0.98 ... 6.39). An evaluated example costs `costs.eval_example` updates of its own net
    (each run's curve points on 1000 test examples, then the whole test split and 2000 validation
    examples); an at-init layer costs the study's measured one scaled by width^2 and examples."""
    def per_update(d, w):
        if deep_seconds_per_update is not None and w == config.deep_width:
            return deep_seconds_per_update * (d + 1) / (config.deep_depth + 1)    # + the input layer
        return costs.seconds_per_update * (d * w * w + 794 * w) / (depth * width * width + 794 * width)

    def run(d, w, updates, curve_points, final_examples, update_cost=1.0, monitored=0):
        evaluated = (curve_points + 1) * 1000 + final_examples
        return per_update(d, w) * (update_cost * updates + evaluated * costs.eval_example
                                   + (curve_points + 1) * monitored * costs.monitor_example)

    def at_init(d, w, examples):
        return seconds_per_at_init_layer * (w / at_init_width) ** 2 * examples / 300 * d

    final = test_examples + 2000
    sweep_nets = len(config.sweep_activations) * len(config.sweep_schemes)
    bn = config.batchnorm_depth, config.batchnorm_width, config.batchnorm_updates, BATCHNORM_POINTS, test_examples
    return {
        "relu_init": 2 * sum(at_init(d, config.relu_width, config.relu_examples) for d in config.relu_depths),
        "deep_relu": 2 * len(config.deep_seeds) * run(config.deep_depth, config.deep_width, config.deep_updates,
                                                      10, final),
        "batchnorm": len(config.batchnorm_seeds) * (run(*bn, monitored=300)
                                                    + run(*bn, update_cost=BATCHNORM_COST, monitored=300)),
        "depth_sweep": sweep_nets * sum(at_init(d, config.sweep_width, config.relu_examples)
                                        + run(d, config.sweep_width, config.sweep_updates, 1, final)
                                        for d in config.sweep_depths)}


# ------------------------------------------------------------------------------------------ the runs
def _at_init(data, activation, scheme, depth, width, examples) -> dict:
    from minidl.experiments.at_init import measure_network

    x, y = data.x_test[:examples], data.y_test[:examples]
    record, _ = measure_network(activation, scheme, depth, width, x, y, data.n_classes, 0, 0)
    return {"activation": activation, "scheme": scheme, "depth": depth, "width": width,
            "activation_std": [L["activation"]["std"] for L in record["layers"]],
            "backprop_gradient_std": [L["backprop_gradient"]["std"] for L in record["layers"]],
            "activation_std_ratio_per_layer": record["summary"]["activation_std_ratio_per_layer"],
            "backprop_gradient_std_top_over_bottom": record["summary"]["backprop_gradient_std_top_over_bottom"]}


def _train(data, activation, scheme, depth, width, updates, lr, seed, batch_size, curve_points=10) -> dict:
    from minidl.experiments.config import TrainingConfig
    from minidl.experiments.training_study import train_run

    config = TrainingConfig(depth=depth, width=width, batch_size=batch_size, updates=updates,
                            eval_every=max(1, updates // curve_points), eval_examples=1000)
    run = train_run(data, config, activation, scheme, seed, lr, updates, monitor=False)
    return {key: run[key] for key in ("activation", "scheme", "seed", "lr", "depth", "width", "updates_done",
                                      "diverged_at", "final_test_error", "curve")}


def _batchnorm_run(data, config: ExtensionsConfig, batchnorm: bool, seed: int) -> dict:
    """One standard-init sigmoid net with (or without) BatchNorm1d before each activation, trained as the
    study's runs (plain SGD at BATCHNORM_LR); the activation snapshots run in eval mode, so they neither
    use nor move the batch statistics of the monitored examples."""
    from minidl.experiments.config import TrainingConfig
    from minidl.experiments.networks import build_batchnorm_network, build_network
    from minidl.experiments.training_study import eval_loader, study_trainer
    from minidl.training import TrainingDiverged

    updates, depth = config.batchnorm_updates, config.batchnorm_depth
    every = max(1, updates // BATCHNORM_POINTS)
    build = build_batchnorm_network if batchnorm else build_network
    model, probe = build(data.n_inputs, depth, config.batchnorm_width, data.n_classes, "sigmoid", "standard", seed)
    recorder = _EvalModeRecorder(model, probe, depth, data.x_test[:300],
                                 eval_loader(data.x_test[:1000], data.y_test[:1000]))
    training = TrainingConfig(depth=depth, width=config.batchnorm_width, batch_size=config.batch_size)
    trainer = study_trainer(data, training, model, BATCHNORM_LR, seed, recorder.callbacks(every, every))
    diverged_at = None
    try:
        trainer.fit(updates=updates)
    except TrainingDiverged as error:
        diverged_at = error.step
    return {"batchnorm": batchnorm, "seed": seed, "lr": BATCHNORM_LR, "depth": depth,
            "width": config.batchnorm_width, "updates_done": trainer.step, "diverged_at": diverged_at,
            "curve": recorder.curve, "monitor": recorder.series,
            "final_test_error": None if diverged_at is not None else
            trainer.evaluate(eval_loader(data.x_test, data.y_test))["error"]}


class _EvalModeRecorder(RunRecorder):
    """The study's RunRecorder with its snapshots taken in eval mode (batch norm's running statistics)."""

    def snapshot(self, trainer) -> None:
        self.model.eval()
        try:
            super().snapshot(trainer)
        finally:
            self.model.train()


def run_extensions(config: ExtensionsConfig, data, results: dict, save, on_units=None) -> None:
    """Run every piece not yet in results["extensions"] (a resumed study keeps the finished ones), calling
    `save()` after each piece and `on_units(k)` as the bar's units are done."""
    told = on_units or (lambda k: None)
    done = results.setdefault("extensions", {})
    done["config"] = dataclasses.asdict(config)
    if "relu_init" not in done:
        records = []
        for depth in config.relu_depths:
            for scheme in HE_RATIO:
                records.append(_at_init(data, "relu", scheme, depth, config.relu_width, config.relu_examples))
                told(depth)
        done["relu_init"] = records
        save()
    else:
        told(2 * sum(config.relu_depths))
    if "deep_relu" not in done:
        runs = []
        for seed in config.deep_seeds:
            for scheme in HE_RATIO:
                runs.append(_train(data, "relu", scheme, config.deep_depth, config.deep_width, config.deep_updates,
                                   DEEP_RELU_LR, seed, config.batch_size))
                told(config.deep_updates)
        done["deep_relu"] = {"depth": config.deep_depth, "width": config.deep_width, "lr": DEEP_RELU_LR,
                             "runs": runs}
        save()
    else:
        told(2 * len(config.deep_seeds) * config.deep_updates)
    if "batchnorm" not in done:
        runs = []
        for seed in config.batchnorm_seeds:
            for batchnorm in (False, True):
                runs.append(_batchnorm_run(data, config, batchnorm, seed))
                told(config.batchnorm_updates)
        done["batchnorm"] = {"runs": runs}
        save()
    else:
        told(2 * len(config.batchnorm_seeds) * config.batchnorm_updates)
    sweep = done.setdefault("depth_sweep", [])
    finished = {(r["activation"], r["scheme"], r["depth"]) for r in sweep}
    for activation in config.sweep_activations:
        for scheme in config.sweep_schemes:
            for depth in config.sweep_depths:
                if (activation, scheme, depth) in finished:
                    told(config.sweep_updates + 1)
                    continue
                point = _at_init(data, activation, scheme, depth, config.sweep_width, config.relu_examples)
                run = _train(data, activation, scheme, depth, config.sweep_width, config.sweep_updates,
                             SWEEP_LEARNING_RATES.get(activation, 0.1), 0, config.batch_size, curve_points=1)
                sweep.append({"activation": activation, "scheme": scheme, "depth": depth,
                              "gradient_ratio": point["backprop_gradient_std_top_over_bottom"],
                              "activation_std_ratio": point["activation_std_ratio_per_layer"],
                              "test_error": run["final_test_error"], "diverged_at": run["diverged_at"],
                              "updates": run["updates_done"], "lr": run["lr"]})
                told(config.sweep_updates + 1)
                save()


# -------------------------------------------------------------------------------------------- verdicts
def _not_run(claim: str, said: str, what: str = "not run") -> Verdict:
    return Verdict(claim, said, what, NOT_TESTABLE, "no numbers to judge; `minidl reproduce --extensions` tests it")


def relu_init_verdict(results) -> Verdict:
    claim = "He et al. Eq. 10 (ReLU at init)"
    said = "ReLU: activation std ×√(1/2) = 0.71 per layer under Xavier, ×1 under He (Var W = 2/n)"
    rule = ("at every depth, each scheme's ratio within half the log-scale distance between the two predictions "
            "of its own")
    records = (results.get("extensions") or {}).get("relu_init") or []
    if not records:
        return _not_run(claim, said)
    good = all(matches(r["activation_std_ratio_per_layer"], HE_RATIO[r["scheme"]],
                       HE_RATIO[_other(r["scheme"])]) for r in records)
    measured = "; ".join(f"depth {d}: " + " vs ".join(
        f"×{_ratio(r)}" for r in records if r["depth"] == d) for d in dict.fromkeys(r["depth"] for r in records))
    return Verdict(claim, said, measured + " (Xavier vs He)", REPRODUCED if good else NOT_REPRODUCED, rule)


def deep_relu_verdict(results) -> Verdict:
    deep = (results.get("extensions") or {}).get("deep_relu")
    claim = "He et al. Fig. 3 (deep ReLU)"
    said = "a 30-layer ReLU net stalls under Xavier and trains under He"
    rule = f"He's mean final test error at least {100 * HE_BETTER_POINTS:.0f} points below Xavier's"
    if not deep or not deep["runs"]:
        return _not_run(claim, said)
    errors = {s: [r["final_test_error"] for r in deep["runs"] if r["scheme"] == s] for s in HE_RATIO}
    mean = {s: (float(np.mean([1.0 if e is None else e for e in v])) if v else None) for s, v in errors.items()}
    if None in mean.values():
        return _not_run(claim, said, "a scheme has no run")
    updates = deep["runs"][0]["updates_done"]
    measured = (f"{deep['depth']}×{deep['width']}, lr {deep['lr']:g}, {updates} updates: Xavier "
                f"{100 * mean['xavier_uniform']:.1f}%, He {100 * mean['kaiming_normal']:.1f}% test error")
    good = mean["kaiming_normal"] <= mean["xavier_uniform"] - HE_BETTER_POINTS
    return Verdict(claim, said, measured, REPRODUCED if good else NOT_REPRODUCED, rule)


def depth_sweep_verdict(results) -> Verdict:
    claim = "Depth sweep (tanh)"
    said = ("the variance recursion: under the standard init the back-propagated gradient shrinks ×√3 per layer "
            "on the way down (×3^((L−1)/2) over L layers), under Xavier it stays level")
    rule = (f"tanh: standard's top/bottom gradient ratio grows with depth and is at least ×{SWEEP_SEPARATION:g} "
            "Xavier's at every depth ≥ 5 (a shallower sweep: at its deepest)")
    sweep = (results.get("extensions") or {}).get("depth_sweep") or []
    by = {(r["scheme"], r["depth"]): r["gradient_ratio"] for r in sweep if r["activation"] == "tanh"}
    depths = sorted({d for s, d in by if s == "standard" and ("xavier_uniform", d) in by})
    if len(depths) < 2:
        return _not_run(claim, said, "fewer than two tanh depths under both inits")
    standard = [by[("standard", d)] for d in depths]
    xavier = [by[("xavier_uniform", d)] for d in depths]
    grows = all(b > a for a, b in zip(standard, standard[1:]))
    judged = min(5, depths[-1])            # a sweep shallower than 5 is judged at its deepest net
    apart = all(s >= SWEEP_SEPARATION * x for d, s, x in zip(depths, standard, xavier) if d >= judged)
    measured = "; ".join(f"depth {d}: ×{s:.3g} vs ×{x:.3g}" for d, s, x in zip(depths, standard, xavier))
    return Verdict(claim, said, measured + " (standard vs Xavier)", REPRODUCED if grows and apart else NOT_REPRODUCED,
                   rule)


def batchnorm_verdict(results) -> Verdict:
    claim = "Ioffe & Szegedy 2015 (batch norm)"
    said = ("BatchNorm1d before each activation keeps the standard-init 5×1000 sigmoid net's top layer out of "
            "saturation, so it leaves the plateau the plain net sits on")
    rule = (f"with batch norm the top layer's mean after ≈{EARLY_UPDATE} updates is at least {SIGMOID_LOW} and every "
            "run leaves the plateau before every plain run (never = later than all)")
    runs = ((results.get("extensions") or {}).get("batchnorm") or {}).get("runs") or []
    arms = {flag: [r for r in runs if r["batchnorm"] is flag] for flag in (False, True)}
    if not arms[False] or not arms[True]:
        return _not_run(claim, said)
    threshold = plateau_threshold(results)
    never = float("inf")
    top, escapes = {}, {}
    for flag, group in arms.items():
        top[flag] = float(np.mean([_top_mean_at(r, EARLY_UPDATE) for r in group]))
        escapes[flag] = [escape_update(r, threshold) for r in group]
    def words(values):
        done = [v for v in values if v is not None]
        return f"at {int(np.median(done))}" if len(done) == len(values) else \
            ("never" if not done else f"{len(done)} of {len(values)} runs")
    r = arms[True][0]
    measured = (f"{r['depth']}×{r['width']}, lr {r['lr']:g}, {r['updates_done']} updates: top-layer mean "
                f"{_fixed(top[False], 3)} plain vs {_fixed(top[True], 3)} with batch norm; off the plateau "
                f"(test error below {100 * threshold:.0f}%) {words(escapes[False])} plain vs {words(escapes[True])} "
                f"with batch norm; "
                f"final {_pct(arms[False])} vs {_pct(arms[True])}")
    plain = [never if v is None else v for v in escapes[False]]
    normed = [never if v is None else v for v in escapes[True]]
    good = top[True] >= SIGMOID_LOW and max(normed) < min(plain)
    return Verdict(claim, said, measured, REPRODUCED if good else NOT_REPRODUCED, rule)


def _top_mean_at(run, update):
    return _number(run["monitor"]["layers"][-1]["mean"][snapshot_at(run, update)])


def _pct(group):
    errors = [r["final_test_error"] for r in group if r["final_test_error"] is not None]
    return f"{100 * float(np.mean(errors)):.1f}%" if errors else "n/a (diverged)"


def _other(scheme):
    return "kaiming_normal" if scheme == "xavier_uniform" else "xavier_uniform"


def _ratio(record):
    value = record["activation_std_ratio_per_layer"]
    return "n/a" if value is None else f"{value:.3f}"


def extension_verdicts(results) -> list[Verdict]:
    return [relu_init_verdict(results), deep_relu_verdict(results), depth_sweep_verdict(results),
            batchnorm_verdict(results)]


# ------------------------------------------------------------------------------------ tables and text
def extension_tables(results) -> list[str]:
    sweep = (results.get("extensions") or {}).get("depth_sweep") or []
    if not sweep:
        return []
    depths = sorted({r["depth"] for r in sweep})
    lines = ["### Depth sweep: test error at budget / at-init gradient ratio (top over layer 1)", "",
             "| activation | scheme | " + " | ".join(f"depth {d}" for d in depths) + " |",
             "| --- | --- | " + " | ".join("---:" for _ in depths) + " |"]
    for activation in dict.fromkeys(r["activation"] for r in sweep):
        for scheme in dict.fromkeys(r["scheme"] for r in sweep if r["activation"] == activation):
            cells = []
            for d in depths:
                r = next((r for r in sweep if (r["activation"], r["scheme"], r["depth"]) == (activation, scheme, d)),
                         None)
                error = None if r is None else r["test_error"]
                cells.append("—" if r is None else
                             ("diverged" if error is None else f"{100 * error:.1f}%") + f" / ×{_short(r['gradient_ratio'])}")
            lines.append(f"| {activation} | {scheme} | " + " | ".join(cells) + " |")
    return lines + [""]


def _short(value):
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.3g}"


def extension_method(results) -> list[str]:
    ext = results.get("extensions") or {}
    c = ext.get("config") or {}
    return ["### Beyond the paper (`--extensions`)", "",
            f"- ReLU at init: one net per depth {c.get('relu_depths')} of width {c.get('relu_width')} under Xavier "
            f"uniform and He (Kaiming normal, N(0, 2/n_in)), {c.get('relu_examples')} fixed test examples; the "
            "ratio is the geometric mean of the activation std from one layer to the next (He et al. 2015, Eq. 10).",
            f"- Deep ReLU: {c.get('deep_depth')}×{c.get('deep_width')} nets, plain SGD at lr {DEEP_RELU_LR:g}, "
            f"batch {c.get('batch_size')}, {c.get('deep_updates')} updates, seeds {c.get('deep_seeds')}; final test "
            "error on the whole test split (He et al. 2015, Fig. 3).",
            f"- Depth sweep: width {c.get('sweep_width')}, depths {c.get('sweep_depths')}, "
            f"{c.get('sweep_updates')} updates, seed 0, lr per activation {SWEEP_LEARNING_RATES} (one lr for every "
            "scheme); the gradient ratio is the at-init back-propagated gradient std at the top hidden layer "
            "over layer 1 (>1: it shrinks on the way down).",
            f"- Batch norm: {c.get('batchnorm_depth')}×{c.get('batchnorm_width')} sigmoid nets, standard init, "
            f"with and without BatchNorm1d between each hidden Linear and its sigmoid, SGD lr {BATCHNORM_LR:g}, "
            f"{c.get('batchnorm_updates')} updates, seeds {c.get('batchnorm_seeds')}; activation snapshots of 300 "
            "test examples in eval mode (running statistics), learning curves on 1000.", ""]
