"""report.md: the verdict table first (minidl.experiments.verdicts), then the time planned vs spent, the
figures, compact tables, and one "Method" section whose sentences are generated from this run's numbers.

Every claim is computed from results.json with explicit thresholds; nothing is canned. Where the run
is too short to show something the paper shows, the report says so.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from minidl import init
from minidl.experiments import paper
from minidl.serialization import write_atomically
from minidl.experiments.config import TrainingConfig
from minidl.experiments.study import CUT_FLOOR
from minidl.experiments.verdicts import (EARLY_UPDATE, PLATEAU_MARGIN, SATURATED, SIGMOID_LOW, _final_errors, _fixed,
                                         _group, _number, _pct, escape_update, fraction_beyond, saturation_order,
                                         snapshot_at)

LEVEL = (0.9, 1.1)          # a per-layer ratio inside this band counts as "level"


def _fmt(value, digits=3):
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return f"{value:.{digits}g}"


def _trend(ratio):
    if ratio is None or not math.isfinite(ratio):
        return "cannot be measured (a layer is all zeros)"
    if ratio < LEVEL[0]:
        return f"shrinks by ×{ratio:.2f} per layer"
    if ratio > LEVEL[1]:
        return f"grows by ×{ratio:.2f} per layer"
    return f"stays level (×{ratio:.2f} per layer)"


def _find(records, **keys):
    return [r for r in records if all(r.get(k) == v for k, v in keys.items())]


# ---------------------------------------------------------------- at initialization
def at_init_tables(results) -> list[str]:
    """The compact at-init tables, one per depth."""
    records = results.get("at_init") or []
    if not records:
        return ["### At initialization", "", "Not run (or interrupted before the first net finished).", ""]
    depths = sorted({r["depth"] for r in records})
    lines = []
    for depth in depths:
        lines += [f"### At initialization, {depth} hidden layers of {records[0]['width']}", "",
                  "| activation | scheme | act. std layer 1 → top | act. std ratio/layer | dC/ds std top/bottom "
                  "| dW std max/min | Jacobian mean s.v. (layers 2..L) |",
                  "| --- | --- | --- | ---: | ---: | ---: | ---: |"]
        for r in _find(records, depth=depth):
            s = r["summary"]
            lines.append(
                f"| {r['activation']} | {init.get(r['scheme']).label} | {_fmt(r['layers'][0]['activation']['std'])} → "
                f"{_fmt(r['layers'][-1]['activation']['std'])} | {_fmt(s['activation_std_ratio_per_layer'])} | "
                f"{_fmt(s['backprop_gradient_std_top_over_bottom'])} | {_fmt(s['weight_gradient_std_max_over_min'])} "
                f"| {_fmt(s['jacobian_mean_singular_value'])} |")
        if all(r["summary"]["jacobian_mean_singular_value"] is None for r in _find(records, depth=depth)):
            most = ((results.get("config") or {}).get("at_init") or {}).get("jacobian_max_depth")
            lines += ["", "Jacobians are not measured at this depth" + (f" (only in nets of up to {most} layers: "
                      "`jacobian_max_depth`)." if most is not None else ".")]
        lines.append("")
    return lines


def at_init_section(results) -> list[str]:
    """The method text of the at-init study: what was measured and what the numbers show."""
    records = results.get("at_init") or []
    if not records:
        return ["### At initialization", "", "Not run (or interrupted before the first net finished).", ""]
    depths = sorted({r["depth"] for r in records})
    lines = ["### At initialization", "",
             f"One untrained net per activation × scheme × depth {depths} (width {records[0]['width']}), "
             f"{records[0]['examples']} fixed test examples, one forward/backward pass of the mean "
             "cross-entropy. Ratios per layer are geometric means from layer 1 to the top hidden layer. "
             "dC/ds is the gradient of the *batch-mean* cost (per-example gradients are larger by the batch "
             "size; ratios are unaffected).", ""]
    depth = depths[0]
    lines += ["#### What these numbers show", ""]
    for activation in dict.fromkeys(r["activation"] for r in records):
        standard = _find(records, activation=activation, scheme="standard", depth=depth)
        xavier = _find(records, activation=activation, scheme="xavier_uniform", depth=depth)
        if standard and xavier:
            lines.append(f"- {activation}, {depth} layers: activation std {_trend(standard[0]['summary']['activation_std_ratio_per_layer'])} "
                         f"under the standard init and {_trend(xavier[0]['summary']['activation_std_ratio_per_layer'])} "
                         "under Xavier" + (" (the linear-regime prediction: ×√(1/3) = 0.577 vs ×1)."
                                           if activation in ("tanh", "softsign") else "."))
            g_std = standard[0]["summary"]["backprop_gradient_std_top_over_bottom"]
            g_xav = xavier[0]["summary"]["backprop_gradient_std_top_over_bottom"]
            lines.append(f"  Back-propagated gradient std at the top hidden layer is ×{_fmt(g_std)} its value at "
                         f"layer 1 under the standard init and ×{_fmt(g_xav)} under Xavier "
                         f"({_gradient_words(g_std)} vs {_gradient_words(g_xav)}); weight-gradient std varies "
                         f"by ×{_fmt(standard[0]['summary']['weight_gradient_std_max_over_min'])} and "
                         f"×{_fmt(xavier[0]['summary']['weight_gradient_std_max_over_min'])} across layers.")
            j_std = standard[0]["summary"]["jacobian_mean_singular_value"]
            j_xav = xavier[0]["summary"]["jacobian_mean_singular_value"]
            if j_std is not None and j_xav is not None:
                lines.append(f"  Mean singular value of the layer Jacobians: {_fmt(j_std, 2)} (standard) vs "
                             f"{_fmt(j_xav, 2)} (Xavier); the paper reports ≈0.5 vs ≈0.8 for tanh and the "
                             f"quarter-circle law predicts {_fmt(standard[0]['summary']['quarter_circle_prediction'], 2)} "
                             f"vs {_fmt(xavier[0]['summary']['quarter_circle_prediction'], 2)} in the linear regime "
                             "(0.849·f′(0)·√(n·Var W); n/a for ReLU).")
        for r in _find(records, activation=activation, depth=depth):
            if r["scheme"].startswith("normal_"):
                top = r["layers"][-1]["activation"]
                lines.append(f"  {init.get(r['scheme']).label}: top-layer activation std {_fmt(top['std'])}, "
                             f"98th percentile {_fmt(top['p98'])}; activation std "
                             f"{_trend(r['summary']['activation_std_ratio_per_layer'])}.")
    lines += ["", "#### Theory vs measured (variance propagation)", "",
              "Largest factor between measured and predicted variance over the hidden layers "
              f"({depths[-1]}-layer nets; 1.0 = exact; the derivation assumes the linear regime):", "",
              "| activation | scheme | Var(s), one step from the measured layer below | Var(z), recursion from "
              "the input | Var(dC/ds), recursion from the output |", "| --- | --- | ---: | ---: | ---: |"]
    for r in _find(records, depth=depths[-1]):
        lines.append(f"| {r['activation']} | {init.get(r['scheme']).label} "
                     f"| {_fmt(_worst_factor(r, 'pre_activation', 'pre_activation_var_one_step'))} "
                     f"| {_fmt(_worst_factor(r, 'activation', 'activation_var'))} "
                     f"| {_fmt(_worst_factor(r, 'backprop_gradient', 'backprop_gradient_var'))} |")
    one_step = [_worst_factor(r, "pre_activation", "pre_activation_var_one_step") for r in _find(records, depth=depths[-1])]
    one_step = [f for f in one_step if math.isfinite(f)]
    if one_step:
        lines += ["", f"One step of the forward formula Var(s) = n·Var(W)·E[z²], fed with the measured layer below, "
                  f"matches the measured pre-activation variance within ×{_fmt(max(one_step))} in every net and layer "
                  "(it needs only independent zero-mean weights, not the linear regime)."]
    tanh = [r for r in _find(records, depth=depths[-1], activation="tanh")
            if r["scheme"] in ("standard", "xavier_uniform", "lecun_normal")]
    if tanh:
        worst = max(_worst_factor(r, "activation", "activation_var") for r in tanh)
        verdict = ("holds within ×1.5 at every layer" if worst < 1.5 else
                   "misses by more than ×1.5 at its worst layer (tanh is not linear at these amplitudes)")
        schemes = _and([init.get(scheme).label for scheme in dict.fromkeys(r["scheme"] for r in tanh)])
        lines += ["", f"For tanh with the {schemes} init{'s' * (len(set(r['scheme'] for r in tanh)) > 1)} the "
                  f"compounded forward recursion {verdict} (worst factor ×{_fmt(worst)}); in nets far from the linear "
                  "regime (large weights, ReLU, sigmoid's offset) the factors show how much the linear-regime "
                  "recursion misses."]
    return lines + [""]


def _and(words: list[str]) -> str:
    """['a', 'b', 'c'] -> 'a, b and c'."""
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def _gradient_words(ratio):
    if ratio is None or not math.isfinite(ratio) or not ratio > 0:
        return "not measurable"
    if ratio > LEVEL[1] ** 2:
        return f"it shrinks ×{ratio:.1f} on the way down"
    if ratio < LEVEL[0] ** 2:
        return f"it grows ×{1 / ratio:.1f} on the way down"
    return "level"


def _worst_factor(record, measured_key, predicted_key):
    factors = []
    for layer in record["layers"]:
        std, predicted = layer[measured_key]["std"], layer["predicted"][predicted_key]
        if std is None or predicted is None:      # a NaN in the run, null in results.json
            continue
        measured = std ** 2
        if measured > 0 and predicted > 0:
            factors.append(max(measured / predicted, predicted / measured))
    return max(factors) if factors else float("nan")


# ---------------------------------------------------------------- training
def training_section(results) -> list[str]:
    training = results.get("training") or {}
    runs = training.get("runs") or []
    data = results.get("data") or {}
    if not runs:
        return ["### Training", "", "Not run (or interrupted before the first run finished).", ""]
    config = results["config"]["training"]
    majority = data.get("majority_error")
    threshold = (majority - PLATEAU_MARGIN) if majority is not None else 0.8
    by_activation = _updates_by_activation(runs, config)
    lengths = _lengths_text(by_activation, config["batch_size"], data.get("n_train", 1))
    lines = ["### Training", "",
             f"{config['depth']} hidden layers of {config['width']} units, softmax + NLL, plain SGD, batch "
             f"{config['batch_size']}, zero biases, {lengths} of "
             f"{data.get('n_train')} training examples, seeds {config['seeds']}. Learning curves use the first "
             f"{config['eval_examples']} test examples; final errors the whole test split "
             f"({data.get('n_test')} examples). The majority-class test error is {_pct(majority)}.", "",
             ""]
    budget = training.get("budget")
    shares = {a: v for a, v in ((budget or {}).get("update_shares") or {}).items() if v != 1.0}
    if budget and budget.get("time_budget_seconds"):
        ms = 1000 * budget["measured_seconds_per_update"]
        pace = budget.get("pace_factor")
        speed = (f"one update measured {ms / pace:.1f} ms here, and the shorter runs, which went first, made "
                 f"their updates at {pace:.2f}× that time (so {ms:.1f} ms per update for the longest runs)" if pace else
                 f"one update measured {ms:.1f} ms here")
        if budget["cut"]:
            cut = budget.get("updates_by_activation") or {}
            shared = TrainingConfig(updates=budget["updates_planned"], update_shares=budget.get("update_shares") or {})
            planned = ", ".join(f"{a} {shared.updates_for(a)}" for a in cut)
            lines += [f"Time budget: the study may take {budget['time_budget_seconds']:.0f} s; {speed}, so the "
                      f"updates per run were cut from {planned} to "
                      + ", ".join(f"{a} {n}" for a, n in cut.items())
                      + (" (equally for every run)." if not shares else
                         f" (the runs of the smaller shares first, down to {CUT_FLOOR} updates, then every run by "
                         "its share).")]
        else:
            lines += [f"Time budget: {budget['time_budget_seconds']:.0f} s; {speed}, "
                      f"so the planned {budget['updates_planned']} updates per run fit."]
        lines += [""]
    if shares:
        share_text = ", ".join(f"{a} ×{v:g}" for a, v in shares.items())
        reason = budget.get("update_share_reason")
        lines += [f"Updates are shared unequally: these activations' runs make a fraction of the updates per run "
                  f"({share_text}); the others make all of them" + (f" ({reason})." if reason else "."), ""]
    lines += ["#### Learning rates", ""]
    for key, choice in (training.get("learning_rates") or {}).items():
        if choice.get("search"):
            search = choice["search"]
            table = ", ".join(f"{lr:g}: {_pct(e)}" for lr, e in zip(search["grid"], search["validation_error"]))
            lines.append(f"- {key}: lr {choice['lr']:g}, chosen by validation error after {search['updates']} "
                         f"updates (seed 0) among {table}.")
        else:
            lines.append(f"- {key}: lr {choice['lr']:g} (fixed; {choice.get('evidence', 'no evidence recorded')}).")
    lines += ["", "#### What these numbers show", ""]
    for activation in dict.fromkeys(r["activation"] for r in runs):
        lines += _init_effect_sentences(runs, activation, threshold, majority)
    lines += _saturation_sentences(runs)
    full_updates = paper.PAPER_UPDATES
    made = ", ".join(f"{a} {n}" for a, n in by_activation.items()) if len(set(by_activation.values())) > 1 \
        else str(next(iter(by_activation.values()), config["updates"]))
    lines += ["", f"Budget: each run here made {made} updates; the paper chose its learning rates after "
              f"{full_updates:,} updates at batch {paper.PAPER_BATCH_SIZE} and reports Table 1 after training to "
              "convergence. Final errors comparable to Table 1 need `minidl reproduce --full` (many hours); what a "
              "short run can show is the at-init study, the early saturation and how fast each net leaves the "
              "plateau.", ""]
    return lines


def final_error_table(results) -> list[str]:
    """Final test error per activation × scheme beside the paper's Table 1."""
    runs = (results.get("training") or {}).get("runs") or []
    data = results.get("data") or {}
    if not runs:
        return []
    config = results["config"]["training"]
    lines = [f"### Final test error beside the paper's Table 1 ({config['depth']}×{config['width']} nets)", "",
             "| activation | scheme | lr | updates | this run: mean (min–max) over seeds | paper Shapeset | paper MNIST |",
             "| --- | --- | ---: | ---: | --- | ---: | ---: |"]
    for activation in dict.fromkeys(r["activation"] for r in runs):
        for scheme in dict.fromkeys(r["scheme"] for r in runs if r["activation"] == activation):
            group = _group(runs, activation, scheme)
            errors = _final_errors(group)
            diverged = sum(r["diverged_at"] is not None for r in group)
            cell = (f"{_pct(float(np.mean(errors)))} ({_pct(min(errors))}–{_pct(max(errors))}), n={len(errors)}"
                    if errors else "n/a")
            if diverged:
                cell += f", {diverged} diverged"
            row = paper.table1_row(activation, scheme)
            lines.append(f"| {activation} | {init.get(scheme).label} | {group[0]['lr']:g} | "
                         f"{max(r['updates_done'] for r in group)} | {cell} | "
                         f"{row['Shapeset'] if row else '—'} | {row['MNIST'] if row else '—'} |")
    if data.get("name") not in ("shapeset", "mnist"):
        lines += ["", f"The paper has no {data.get('name')} column; MNIST and Shapeset are shown for scale only."]
    if config["depth"] != paper.TABLE1_DEPTH:
        lines += ["", f"The paper's Table 1 is for nets of {paper.TABLE1_DEPTH} hidden layers; these have "
                      f"{config['depth']}."]
    return lines + [""]


def _init_effect_sentences(runs, activation, threshold, majority):
    standard, xavier = _group(runs, activation, "standard"), _group(runs, activation, "xavier_uniform")
    if not standard or not xavier:
        return []
    lines = []
    e_std, e_xav = _final_errors(standard), _final_errors(xavier)
    if e_std and e_xav:
        diff = float(np.mean(e_std) - np.mean(e_xav))
        spread = max(max(e_std) - min(e_std), max(e_xav) - min(e_xav))
        if len(e_std) < 2 or len(e_xav) < 2:
            verdict = "with one seed per init there is no spread to judge it against"
        elif abs(diff) > max(2 * spread, 0.01):
            verdict = (f"{'Xavier' if diff > 0 else 'the standard init'} ended lower by {abs(100 * diff):.1f} "
                       f"points, more than twice the seed spread ({100 * spread:.1f} points): an init effect")
        else:
            reason = ("below 1 point" if abs(diff) <= 0.01 else
                      f"within twice the seed spread ({100 * spread:.1f} points)")
            verdict = (f"a difference of {100 * diff:+.1f} points (standard minus Xavier) is {reason}: no init "
                       "effect on the final error that this run can distinguish from seed noise")
        lines.append(f"- {activation}: final test error {_pct(float(np.mean(e_std)))} (standard) vs "
                     f"{_pct(float(np.mean(e_xav)))} (Xavier); {verdict}.")
        for name, errors in (("standard", e_std), ("Xavier", e_xav)):
            if majority is not None and float(np.mean(errors)) > majority - 0.02:
                lines.append(f"  Under the {name} init the {activation} nets ended at the majority-class error: "
                             "they did not learn within this budget.")
    escapes = {}
    for name, group in (("standard", standard), ("Xavier", xavier)):
        values = [escape_update(r, threshold) for r in group]
        escapes[name] = values
    def words(values):
        done = [v for v in values if v is not None]
        if not done:
            return "never"
        text = f"at update {int(np.median(done))}" + (" (median)" if len(done) > 1 else "")
        return text + (f", {len(values) - len(done)} of {len(values)} runs never" if len(done) < len(values) else "")
    lines.append(f"  Test error fell below {_pct(threshold)} (left the plateau) for good, i.e. stayed below it from "
                 f"that learning-curve point on, under the standard init "
                 f"{words(escapes['standard'])}, under Xavier {words(escapes['Xavier'])}"
                 f"{_escape_verdict(escapes['standard'], escapes['Xavier'])}.")
    return lines


def _escape_verdict(standard, xavier):
    """Whether every run of one init left the plateau before every run of the other (never = later than all)."""
    never = float("inf")
    s = [never if v is None else v for v in standard]
    x = [never if v is None else v for v in xavier]
    if not s or not x or (max(s) == never and max(x) == never and min(s) == min(x) == never):
        return ""
    if max(x) < min(s):
        return "; every Xavier run left it before every standard-init run: an init effect on how fast the nets learn"
    if max(s) < min(x):
        return ("; every standard-init run left it before every Xavier run: the opposite of the paper's effect on "
                "how fast the nets learn")
    return "; the runs of the two inits overlap: no init effect on how fast the nets learn that this run can separate"


def _updates_by_activation(runs, config):
    """{activation: updates planned for its runs}, in the order the runs appear."""
    out = {}
    for run in runs:
        out[run["activation"]] = max(out.get(run["activation"], 0),
                                     int(run.get("updates_planned") or run.get("updates_done") or config["updates"]))
    return out


def _lengths_text(by_activation, batch_size, n_train):
    def epochs(n):
        return f"≈{n * batch_size / max(1, n_train):.2f} epochs"
    if len(set(by_activation.values())) <= 1:
        n = next(iter(by_activation.values()), 0)
        return f"{n} updates per run ({epochs(n)})"
    return "updates per run: " + ", ".join(f"{a} {n} ({epochs(n)})" for a, n in by_activation.items())


def _saturation_sentences(runs):
    lines = []
    for scheme in ("standard", "xavier_uniform"):
        group = [r for r in _group(runs, "sigmoid", scheme) if r.get("monitor")]
        if not group:
            continue
        tops, lowers, at = [], [], []
        for run in group:
            k = snapshot_at(run, EARLY_UPDATE)
            layers = run["monitor"]["layers"]
            at.append(run["monitor"]["updates"][k])
            tops.append(_number(layers[-1]["mean"][k]))
            lowers.append(min(_number(layer["mean"][k]) for layer in layers[:-1]) if len(layers) > 1 else float("nan"))
        top = float(np.mean(tops))
        state = ("sits saturated near 0" if top < SIGMOID_LOW else
                 "is not saturated at 0" if math.isfinite(top) else "is not a number (a run diverged)")
        lines.append(f"- sigmoid, {init.get(scheme).label}: after {at[0]} updates the top hidden layer's mean activation is "
                     f"{_fixed(top, 3)} (mean over {len(group)} seeds): it {state} (threshold {SIGMOID_LOW}); the lowest "
                     f"mean among the layers below is {_fixed(float(np.mean(lowers)), 2)}.")
        final_tops = [_number(run["monitor"]["layers"][-1]["mean"][-1]) for run in group]
        lines.append(f"  At the end ({group[0]['monitor']['updates'][-1]} updates) the top layer's mean is "
                     f"{_fixed(float(np.mean(final_tops)), 3)}.")
    for activation in ("tanh", "softsign"):
        for scheme in ("standard", "xavier_uniform"):
            group = [r for r in _group(runs, activation, scheme) if r.get("final_histograms")]
            if group:
                fractions = [fraction_beyond(group[0]["final_histograms"], 0.9)]
                lines.append(f"- {activation}, {init.get(scheme).label}: at the end {100 * fractions[0]:.1f}% of the monitored "
                             f"activations (all layers, seed {group[0]['seed']}) lie beyond ±0.9 (Fig. 4).")
            group = [r for r in _group(runs, activation, scheme) if r.get("monitor")]
            if not group:
                continue
            run = group[0]
            order = saturation_order(run)
            reached = [(i, u) for i, u in order if u is not None]
            if reached:
                text = ", ".join(f"layer {i} at update {u}" for i, u in sorted(reached, key=lambda p: p[1]))
                lines.append(f"- {activation}, {init.get(scheme).label} (seed {run['seed']}): the 2nd/98th percentile reached "
                             f"±{SATURATED} (saturation) in this order: {text}; "
                             f"{len(order) - len(reached)} of {len(order)} layers never did.")
            else:
                peak = float(np.max([abs(_number(v)) for layer in run["monitor"]["layers"]
                                     for v in layer["p98"] + layer["p2"]]))
                lines.append(f"- {activation}, {init.get(scheme).label} (seed {run['seed']}): no layer's 2nd/98th percentile "
                             f"reached ±{SATURATED} (largest |percentile| {_fixed(peak, 2)}): no saturation in this run.")
    return lines


# ---------------------------------------------------------------- the whole report
FIGURE_CAPTIONS = {
    "fig2_sigmoid_mean_std": "Fig. 2: sigmoid activations (mean ± std per layer) over training",
    "fig3_percentiles": "Fig. 3: tanh and softsign 2nd/98th percentiles and std over training",
    "fig4_final_histograms": "Fig. 4: activation histograms at the end of training",
    "fig6_activation_histograms": "Fig. 6: activation histograms at init, standard vs Xavier",
    "fig7_backprop_histograms": "Fig. 7: back-propagated gradient histograms at init",
    "fig8_weight_gradient_histograms": "Fig. 8: weight-gradient histograms at init",
    "fig11_12_learning_curves": "Figs. 11-12: learning curves",
    "variance_propagation": "Variance propagation: measured (o) vs predicted (--)",
    "jacobian_singular_values": "Mean singular value of each layer's Jacobian at init",
    "relu_he_vs_xavier": "Beyond the paper: ReLU under Xavier vs He — at init (std per layer) and a deep net training",
    "depth_sweep": "Beyond the paper: test error at budget and at-init gradient ratio against depth",
    "batchnorm_cure": "Beyond the paper: the standard-init sigmoid net without and with batch norm",
}


TIME_TOLERANCE = 0.15       # the planner's estimate of a stage should be within this share of its actual time


def time_section(results) -> list[str]:
    """The planner's estimate of each stage beside the time it took (this invocation)."""
    estimate = (results.get("execution") or {}).get("estimate")
    invocations = (results.get("execution") or {}).get("invocations") or []
    if not estimate or not invocations:
        return []
    actual = invocations[-1].get("stage_seconds") or {}
    lines = ["## Time: planned vs actual", "",
             f"The planner's estimate (from {1000 * estimate['seconds_per_update']:.1f} ms per update and "
             f"{1000 * estimate['seconds_per_eval_example']:.3f} ms per evaluated example measured here"
             + (", measured again after the at-init stage" if estimate.get("revised_after_at_init") else "")
             + (f"; the longest runs re-planned from the pace of the shorter runs' updates, ×{estimate['pace_factor']:.2f}"
                if estimate.get("pace_factor") else "")
             + f") beside what each stage took; within ±{100 * TIME_TOLERANCE:.0f}% counts as matched.", "",
             "| stage | planned | actual | actual/planned |", "| --- | ---: | ---: | ---: |"]
    planned_sum = actual_sum = 0.0
    for stage, planned in estimate["stages"].items():
        took = actual.get(stage)
        if stage == "report" and took is None:
            lines.append(f"| {stage} | {planned:.0f} s | (being written) | — |")
            continue
        if took is None:
            continue
        planned_sum, actual_sum = planned_sum + planned, actual_sum + took
        lines.append(f"| {stage} | {planned:.0f} s | {took:.0f} s | {_ratio_cell(took, planned)} |")
    if actual_sum > 0:
        lines.append(f"| **all of the above** | {planned_sum:.0f} s | {actual_sum:.0f} s | "
                     f"{_ratio_cell(actual_sum, planned_sum)} |")
    total = estimate.get("total_seconds")
    if total is not None:
        budget = estimate.get("time_budget_seconds")
        lines += ["", f"Whole study planned at {total:.0f} s (" + (f"time budget {budget:.0f} s" if budget else
                  "no time budget") + "); the wall time including this report is `wall_seconds` in results.json. "
                  "Times taken while other work loads the machine are noisy: the planner measures its speeds before the "
                  "at-init stage and again before the runs, and re-plans the longest runs from the pace of the "
                  "shorter ones; never within a stage."]
    return lines + [""]


def _ratio_cell(actual, planned):
    if planned <= 0:
        return "n/a"
    ratio = actual / planned
    mark = "" if abs(ratio - 1) <= TIME_TOLERANCE else " (off by more than " + f"{100 * TIME_TOLERANCE:.0f}%)"
    return f"{ratio:.2f}{mark}"


def write_report(results: dict, figures: dict, path: Path) -> Path:
    """report.md: verdicts, time planned vs actual, figures, compact tables, then the method."""
    from minidl.experiments.verdicts import paper_verdicts, verdict_table

    env = results.get("environment") or {}
    data = results.get("data") or {}
    config = results["config"]
    training = config.get("training") or {}
    nets = f"{training['depth']}×{training['width']} nets" if training else "no training"
    lines = ["# minidl reproduce: Glorot & Bengio (2010), measured on this machine", "",
             f"**{results.get('status')}** · preset `{config['preset']}` · {data.get('name')} · {nets} · wall time "
             f"{_fmt(results.get('wall_seconds'), 4)} s before this report · `{results.get('command')}`", ""]
    if results.get("status") == "interrupted":
        lines += ["**The study was interrupted**: everything below covers only what finished "
                  "(`minidl reproduce --out <this folder> --resume` continues it).", ""]
    if results.get("status") == "failed":
        lines += [f"**The study failed** ({results.get('error')}): everything below covers only what finished.", ""]
    if results.get("at_init_skipped"):
        skipped = ", ".join(f"{a} depth {d}" for a, d in results["at_init_skipped"])
        lines += [f"**Skipped at init to stay within the time budget** (this machine was slower than planned): "
                  f"{skipped}.", ""]
    lines += ["## Verdict: the paper's claims on this run", ""] + verdict_table(paper_verdicts(results)) + [
        "", "Every verdict is computed from this run's numbers (results.json) by the rule in its cell; "
        "the method section at the end says how each number was measured.", ""]
    lines += _beyond_paper_verdicts(results)
    lines += time_section(results)
    lines += ["## Figures", ""]
    for name, figure_path in figures.items():
        lines += [f"### {FIGURE_CAPTIONS.get(name, name)}", "", f"![{name}](figures/{Path(figure_path).name})", ""]
    lines += ["## Tables", ""] + final_error_table(results) + at_init_tables(results) + _extension_tables(results)
    lines += ["## Method", "",
              f"- Data: **{data.get('name')}** — {data.get('reason')}. Source: {data.get('source')}. "
              f"{data.get('n_train')} training / {data.get('n_valid')} validation / {data.get('n_test')} test "
              "examples.",
              f"- Machine: {env.get('platform')}, {env.get('cpu_count')} CPUs; Python {env.get('python')}, "
              f"NumPy {env.get('numpy')}, minidl {env.get('minidl')}; started {results.get('started')}.", ""]
    lines += training_section(results)
    lines += at_init_section(results)
    lines += _extension_method(results)
    lines += ["Raw numbers: `results.json` (layout in minidl/experiments/results.py) and the CSV files beside "
              "this report.", ""]
    path = Path(path)
    # the command and paths may hold a name given in bytes that are not UTF-8 (a lone surrogate): keep the
    # report UTF-8 and write it as Python shows it (\udcff)
    text = "\n".join(lines).encode(errors="backslashreplace")
    write_atomically(path, lambda file: file.write(text))     # a second Ctrl-C never leaves half a report
    return path


def _beyond_paper_verdicts(results) -> list[str]:
    """The claims this run tests that the paper does not make: the default's, then `--extensions`'."""
    from minidl.experiments.verdicts import beyond_paper_verdicts, verdict_table

    verdicts = beyond_paper_verdicts(results)
    if results.get("extensions"):
        from minidl.experiments.extensions import extension_verdicts

        verdicts += extension_verdicts(results)
    return ["## Verdict: beyond the paper", ""] + verdict_table(verdicts) + [""] if verdicts else []


def _extension_tables(results) -> list[str]:
    if not results.get("extensions"):
        return []
    from minidl.experiments.extensions import extension_tables

    return extension_tables(results)


def _extension_method(results) -> list[str]:
    if not results.get("extensions"):
        return []
    from minidl.experiments.extensions import extension_method

    return extension_method(results)
