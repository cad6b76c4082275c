"""The verdict on each of the paper's claims, computed from a study's results.json and nothing else.

Each claim (`CLAIMS`) gets a `Verdict`: what the paper reports, what this run measured, the outcome, and
the rule that decided it. Outcomes:
    REPRODUCED       the run's numbers pass the stated test;
    NOT_REPRODUCED   they fail it;
    NOT_TESTABLE     the run holds no numbers that could decide it (the reason says why and which
                     command would test it).
Rules compare a measured value with the paper's two values for the two inits: a measured value
"matches" its own init's value when it is nearer to it than to the other init's value on a log scale
(`nearer`), so no tolerance is tuned to the run.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from minidl.experiments import paper

REPRODUCED, NOT_REPRODUCED, NOT_TESTABLE = "reproduced", "not reproduced", "not testable at this budget"

SIGMOID_LOW = 0.1           # a sigmoid layer whose mean activation is below this sits saturated at 0
EARLY_UPDATE = 200          # "a few hundred updates": where Fig. 2's collapse is read
SATURATED = 0.95            # |2nd or 98th percentile| at or beyond this: the layer is saturated (tanh/softsign)
PILED = 0.9                 # Fig. 4: share of activations beyond ±PILED at the end
LEVEL_FACTOR = 1.5          # weight-gradient std "level" across layers: max/min below this
PLATEAU_MARGIN = 0.1        # left the plateau = test error below (majority-class error - margin)
EFFECT_POINTS = 0.01        # a final-error difference counts only above max(2 x seed spread, 1 point)
TABLE1_POINTS = 0.02        # Table 1 matched: within max(2 points, 2 x seed spread) of the paper


@dataclass(frozen=True)
class Verdict:
    claim: str          # "Fig. 2", "Eq. 17", ...
    paper: str          # what the paper reports
    measured: str       # what this run measured
    outcome: str        # REPRODUCED | NOT_REPRODUCED | NOT_TESTABLE
    rule: str           # the test that decided it (or, NOT_TESTABLE, why not and the command that would)

    def to_dict(self) -> dict:
        return asdict(self)


def nearer(measured: float, own: float, other: float) -> bool:
    """True if `measured` is nearer to `own` than to `other` on a log scale (all > 0)."""
    if measured is None or not (measured > 0 and math.isfinite(measured)):
        return False
    return abs(math.log(measured / own)) < abs(math.log(measured / other))


def _pct(value) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def _group(runs, activation, scheme):
    return [r for r in runs if r["activation"] == activation and r["scheme"] == scheme]


def _final_errors(group):
    return [r["final_test_error"] for r in group if r.get("final_test_error") is not None]


def escape_update(run, threshold):
    """The learning-curve update from which the test error stays below `threshold` to the end (a dip that
    returns to the plateau does not count); None if the last point is not below it."""
    escape = None
    for update, error in zip(run["curve"]["updates"], run["curve"]["test_error"]):
        if error is not None and error < threshold:
            escape = update if escape is None else escape
        else:
            escape = None
    return escape


def snapshot_at(run, update):
    """Index of the first monitor snapshot at or after `update` (else the last one)."""
    updates = run["monitor"]["updates"]
    for k, u in enumerate(updates):
        if u >= update:
            return k
    return len(updates) - 1


def fraction_beyond(histograms, threshold):
    """Fraction of the values (mean over layers) with |v| > threshold, from per-layer densities."""
    fractions = []
    for h in histograms:
        edges = np.array(h["edges"])
        mass = np.array(h["density"]) * np.diff(edges)
        centers = 0.5 * (edges[1:] + edges[:-1])
        fractions.append(float(mass[np.abs(centers) > threshold].sum()))
    return float(np.mean(fractions))


def saturation_order(run):
    """[(layer, first update whose 2nd/98th percentile reached ±SATURATED, or None)] of a monitored run."""
    order = []
    for i, layer in enumerate(run["monitor"]["layers"]):
        hit = next((u for u, hi, lo in zip(run["monitor"]["updates"], layer["p98"], layer["p2"])
                    if max(abs(hi), abs(lo)) >= SATURATED), None)
        order.append((i + 1, hit))
    return order


def plateau_threshold(results) -> float:
    majority = (results.get("data") or {}).get("majority_error")
    return (majority - PLATEAU_MARGIN) if majority is not None else 0.8


def init_effect(runs, activation, threshold) -> dict | None:
    """How Xavier compares with the standard init for `activation` (None: a scheme has no finished run).

    {"effect": "xavier" | "standard" | "none", "standard", "xavier" (mean final errors), "spread" (largest
    min-max range over seeds), "escapes" {scheme: [escape update or None per run]}, "why"}: "xavier"
    when every Xavier run left the plateau before every standard run, or Xavier's mean final error is
    lower by more than max(2 x spread, EFFECT_POINTS) with at least 2 seeds each; "standard" the same the
    other way round; else "none".
    """
    standard, xavier = _group(runs, activation, "standard"), _group(runs, activation, "xavier_uniform")
    e_std, e_xav = _final_errors(standard), _final_errors(xavier)
    if not e_std or not e_xav:
        return None
    never = float("inf")
    escapes = {name: [escape_update(r, threshold) for r in group]
               for name, group in (("standard", standard), ("xavier_uniform", xavier))}
    s = [never if v is None else v for v in escapes["standard"]]
    x = [never if v is None else v for v in escapes["xavier_uniform"]]
    spread = max(max(e_std) - min(e_std), max(e_xav) - min(e_xav))
    diff = float(np.mean(e_std) - np.mean(e_xav))
    seeds = min(len(e_std), len(e_xav)) >= 2
    decisive = seeds and abs(diff) > max(2 * spread, EFFECT_POINTS)
    effect, why = "none", "no difference beyond the seeds' spread"
    if max(x) < min(s):
        effect, why = "xavier", "every Xavier run left the plateau before every standard-init run"
    elif max(s) < min(x):
        effect, why = "standard", "every standard-init run left the plateau before every Xavier run"
    elif decisive:
        effect = "xavier" if diff > 0 else "standard"
        why = f"final error differs by {100 * abs(diff):.1f} points, more than twice the seeds' spread"
    elif not seeds:
        why = "one seed per init: no spread to judge a difference against"
    return {"effect": effect, "standard": float(np.mean(e_std)), "xavier": float(np.mean(e_xav)),
            "spread": spread, "escapes": escapes, "why": why}


# ------------------------------------------------------------------------------------------ the claims
def _at_init_pair(results, activation):
    """(standard, xavier) at-init records of `activation` at the smallest depth holding both, or None."""
    records = results.get("at_init") or []
    for depth in sorted({r["depth"] for r in records}):
        pick = {r["scheme"]: r for r in records if r["activation"] == activation and r["depth"] == depth}
        if "standard" in pick and "xavier_uniform" in pick:
            return pick["standard"], pick["xavier_uniform"]
    return None


AT_INIT_COMMAND = "`minidl reproduce --skip-training --init-activations tanh --init-schemes standard,xavier_uniform`"


def fig2(results) -> Verdict:
    claim = "Fig. 2"
    said = ("sigmoid, standard init: the top hidden layer's mean activation falls to ≈0 within a few hundred "
            "updates and stays there; lower layers sit above 0.5")
    rule = f"top layer's mean after ≈{EARLY_UPDATE} updates below {SIGMOID_LOW} (mean over seeds)"
    runs = [r for r in _group((results.get("training") or {}).get("runs") or [], "sigmoid", "standard")
            if r.get("monitor")]
    if not runs:
        return Verdict(claim, said, "no monitored standard-init sigmoid run", NOT_TESTABLE,
                       "no run to read; `minidl reproduce --skip-at-init --activations sigmoid` tests it")
    k = [snapshot_at(r, EARLY_UPDATE) for r in runs]
    top = float(np.mean([r["monitor"]["layers"][-1]["mean"][i] for r, i in zip(runs, k)]))
    lower = float(np.mean([min(L["mean"][i] for L in r["monitor"]["layers"][:-1]) if len(r["monitor"]["layers"]) > 1
                           else float("nan") for r, i in zip(runs, k)]))
    end = float(np.mean([r["monitor"]["layers"][-1]["mean"][-1] for r in runs]))
    at = runs[0]["monitor"]["updates"][k[0]]
    measured = (f"top-layer mean {top:.3f} after {at} updates ({end:.3f} at update "
                f"{runs[0]['monitor']['updates'][-1]}); lowest layer below it {lower:.2f}")
    return Verdict(claim, said, measured, REPRODUCED if top < SIGMOID_LOW else NOT_REPRODUCED, rule)


def figs3_4(results) -> Verdict:
    claim = "Figs. 3/4"
    said = ("tanh, standard init: layer 1 saturates first, then 2, and so on up; at the end tanh activations "
            "pile at ±1, softsign's less so")
    rule = (f"tanh (standard) layers reach |p2|,|p98| ≥ {SATURATED} in order of depth, layer 1 among them, and at "
            f"the end softsign (standard) has a smaller share beyond ±{PILED} than tanh")
    runs = (results.get("training") or {}).get("runs") or []
    tanh = [r for r in _group(runs, "tanh", "standard") if r.get("monitor") and r.get("final_histograms")]
    softsign = [r for r in _group(runs, "softsign", "standard") if r.get("final_histograms")]
    command = "`minidl reproduce --skip-at-init --activations tanh,softsign --schemes standard --updates 20000`"
    if not tanh or not softsign:
        return Verdict(claim, said, "no monitored standard-init tanh and softsign runs", NOT_TESTABLE,
                       f"no runs to read; {command} tests it")
    order = saturation_order(tanh[0])
    reached = [(layer, u) for layer, u in order if u is not None]
    piled_tanh = fraction_beyond(tanh[0]["final_histograms"], PILED)
    piled_softsign = fraction_beyond(softsign[0]["final_histograms"], PILED)
    pile = (f"beyond ±{PILED} at the end: tanh {100 * piled_tanh:.1f}%, softsign {100 * piled_softsign:.1f}% "
            f"(seed {tanh[0]['seed']})")
    if not reached:
        return Verdict(claim, said, f"no tanh layer saturated within {tanh[0]['updates_done']} updates; {pile}",
                       NOT_TESTABLE, f"saturation had not begun within this run's updates; {command} tests it")
    ordered = [u for _, u in reached] == sorted(u for _, u in reached) and reached[0][0] == 1
    text = ", ".join(f"layer {layer} at {u}" for layer, u in sorted(reached, key=lambda p: (p[1], p[0])))
    measured = f"tanh saturated {text} ({len(order) - len(reached)} of {len(order)} never); {pile}"
    good = ordered and piled_softsign < piled_tanh
    return Verdict(claim, said, measured, REPRODUCED if good else NOT_REPRODUCED, rule)


def figs6_8(results) -> Verdict:
    claim = "Figs. 6–8"
    ratio, backprop = paper.ACTIVATION_STD_RATIO_TANH, paper.BACKPROP_GRADIENT_RATIO_TANH
    said = (f"tanh at init: activation std ×{ratio['standard']} per layer (standard) vs ×{ratio['xavier_uniform']:g} "
            f"(Xavier); back-propagated gradient ×{backprop['standard']:g} smaller at layer 1 than at the top vs "
            f"×{backprop['xavier_uniform']:g}; weight gradients level under both")
    rule = (f"each scheme's two ratios nearer (log scale) to its own paper value than to the other scheme's, "
            f"and weight-gradient std max/min below {LEVEL_FACTOR} under both")
    pair = _at_init_pair(results, "tanh")
    if pair is None:
        return Verdict(claim, said, "no tanh at-init nets under both schemes", NOT_TESTABLE,
                       f"nothing to read; {AT_INIT_COMMAND} tests it")
    s, x = (r["summary"] for r in pair)
    act = [s["activation_std_ratio_per_layer"], x["activation_std_ratio_per_layer"]]
    grad = [s["backprop_gradient_std_top_over_bottom"], x["backprop_gradient_std_top_over_bottom"]]
    weight = [s["weight_gradient_std_max_over_min"], x["weight_gradient_std_max_over_min"]]
    measured = (f"{pair[0]['depth']} layers: activation std ×{_num(act[0])} vs ×{_num(act[1])} per layer; "
                f"gradient ×{_num(grad[0])} vs ×{_num(grad[1])}; weight-gradient max/min {_num(weight[0])} vs "
                f"{_num(weight[1])}")
    good = (nearer(act[0], ratio["standard"], ratio["xavier_uniform"])
            and nearer(act[1], ratio["xavier_uniform"], ratio["standard"])
            and nearer(grad[0], backprop["standard"], backprop["xavier_uniform"])
            and nearer(grad[1], backprop["xavier_uniform"], backprop["standard"])
            and all(w is not None and w < LEVEL_FACTOR for w in weight))
    return Verdict(claim, said, measured, REPRODUCED if good else NOT_REPRODUCED, rule)


def eq17(results) -> Verdict:
    claim = "Eq. 17"
    values = paper.JACOBIAN_MEAN_SINGULAR_VALUE
    said = (f"tanh at init: mean singular value of the layer Jacobians ≈{values['standard']} (standard) vs "
            f"≈{values['xavier_uniform']} (Xavier)")
    rule = "each scheme's value nearer (log scale) to its own paper value than to the other's"
    pair = _at_init_pair(results, "tanh")
    found = pair is not None and all(r["summary"]["jacobian_mean_singular_value"] is not None for r in pair)
    if not found:
        return Verdict(claim, said, "no tanh Jacobians measured", NOT_TESTABLE,
                       f"Jacobians are measured for nets up to the configured depth; {AT_INIT_COMMAND} tests it")
    j = [r["summary"]["jacobian_mean_singular_value"] for r in pair]
    good = nearer(j[0], values["standard"], values["xavier_uniform"]) and \
        nearer(j[1], values["xavier_uniform"], values["standard"])
    return Verdict(claim, said, f"{j[0]:.2f} vs {j[1]:.2f} ({pair[0]['depth']} layers)",
                   REPRODUCED if good else NOT_REPRODUCED, rule)


def figs11_12(results) -> Verdict:
    claim = "Figs. 11–12"
    said = "standard-init sigmoid and tanh nets learn slower and end worse than with Xavier; softsign is robust"
    rule = (f"for sigmoid and tanh, Xavier better: every Xavier run off the plateau (test error below majority "
            f"−{100 * PLATEAU_MARGIN:.0f} points) before every standard run, or mean final error lower by more "
            f"than max(2 × seed spread, {100 * EFFECT_POINTS:.0f} point); softsign not judged")
    runs = (results.get("training") or {}).get("runs") or []
    threshold = plateau_threshold(results)
    effects = {a: init_effect(runs, a, threshold) for a in ("sigmoid", "tanh", "softsign")}
    judged = {a: e for a, e in effects.items() if e is not None and a != "softsign"}
    if not judged:
        return Verdict(claim, said, "no sigmoid or tanh runs under both inits", NOT_TESTABLE,
                       "no runs to compare; `minidl reproduce --skip-at-init` tests it")
    parts = []
    for activation, e in effects.items():
        if e is None:
            continue
        escaped = {k: [v for v in vs if v is not None] for k, vs in e["escapes"].items()}
        off = "; ".join(f"{'std' if k == 'standard' else 'Xavier'} off the plateau "
                        + (f"at {int(np.median(v))}" if v else "never")
                        for k, v in escaped.items()) if activation == "sigmoid" else ""
        parts.append(f"{activation}: final {_pct(e['standard'])} (std) vs {_pct(e['xavier'])} (Xavier), spread "
                     f"{100 * e['spread']:.1f} pts" + (f"; {off}" if off else "") + f" → {_effect_words(e)}")
    good = all(e["effect"] == "xavier" for e in judged.values())
    undecided = {a: _undecided(e, runs, a) for a, e in judged.items() if e["effect"] == "none"}
    if not good and all(undecided.values()) and all(e["effect"] != "standard" for e in judged.values()):
        return Verdict(claim, said, "; ".join(parts), NOT_TESTABLE, "; ".join(undecided.values()))
    return Verdict(claim, said, "; ".join(parts), REPRODUCED if good else NOT_REPRODUCED, rule)


def _undecided(effect: dict, runs, activation) -> str | None:
    """Why `effect` ("none") says nothing about the claim at this budget (None: it refutes it)."""
    if effect["why"].startswith("one seed"):
        return (f"one seed per init for {activation}: no spread to judge a difference against; "
                "`minidl reproduce --skip-at-init --seeds 0,1,2` tests it")
    if all(v is None for values in effect["escapes"].values() for v in values):
        updates = max(r.get("updates_done") or 0 for r in runs if r["activation"] == activation)
        return (f"no {activation} run of either init left the plateau within its {updates} updates; "
                f"`minidl reproduce --skip-at-init --activations {activation} --updates 6000` tests it")
    return None


def _effect_words(effect: dict) -> str:
    return {"xavier": "Xavier better", "standard": "standard better", "none": "no distinguishable effect"}[
        effect["effect"]]


def table1(results) -> Verdict:
    claim = "Table 1"
    said = ("test error after training to convergence (5×1000, batch 10, lr chosen after 5M updates): e.g. MNIST "
            "tanh 1.76% (standard) vs 1.64% (Xavier), sigmoid 2.21%; Shapeset tanh 27.15% vs 15.60%")
    data = results.get("data") or {}
    runs = (results.get("training") or {}).get("runs") or []
    column = {"mnist": "MNIST", "shapeset": "Shapeset"}.get(data.get("name"))
    updates = max((r.get("updates_done") or 0 for r in runs), default=0)
    rule = (f"every configuration's mean final error within max({100 * TABLE1_POINTS:.0f} points, 2 × seed spread) "
            "of the paper's")
    if column is None or updates < paper.PAPER_UPDATES:
        why = []
        if column is None:
            why.append(f"the paper has no {data.get('name')} column")
        if updates < paper.PAPER_UPDATES:
            why.append(f"runs made at most {updates:,} of the paper's {paper.PAPER_UPDATES:,} updates")
        return Verdict(claim, said, "final errors in the table below (not comparable)", NOT_TESTABLE,
                       "; ".join(why) + "; `minidl reproduce --full --dataset mnist` tests it (days of CPU time)")
    rows, good = [], True
    for (activation, scheme), values in paper.TABLE1.items():
        errors = _final_errors(_group(runs, activation, scheme))
        if not errors:
            continue
        expected = dict(zip(paper.TABLE1_DATASETS, values))[column] / 100
        mean, spread = float(np.mean(errors)), max(errors) - min(errors)
        good &= abs(mean - expected) <= max(TABLE1_POINTS, 2 * spread)
        rows.append(f"{activation}/{scheme} {_pct(mean)} (paper {_pct(expected)})")
    if not rows:
        return Verdict(claim, said, "no run of Table 1's configurations", NOT_TESTABLE,
                       "`minidl reproduce --full --dataset mnist` tests it")
    return Verdict(claim, said, "; ".join(rows), REPRODUCED if good else NOT_REPRODUCED, rule)


def _num(value) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.3g}"


CLAIMS = (fig2, figs3_4, figs6_8, eq17, figs11_12, table1)


def paper_verdicts(results: dict) -> list[Verdict]:
    """One Verdict per claim of the paper, in the paper's order."""
    return [claim(results) for claim in CLAIMS]


def verdict_table(verdicts: list[Verdict]) -> list[str]:
    """Markdown table lines: claim | the paper | this run | verdict (with its rule)."""
    lines = ["| claim | the paper | this run | verdict |", "| --- | --- | --- | --- |"]
    for v in verdicts:
        mark = {REPRODUCED: "✅", NOT_REPRODUCED: "❌", NOT_TESTABLE: "⏸"}.get(v.outcome, "")
        lines.append(f"| {v.claim} | {v.paper} | {v.measured} | {mark} **{v.outcome}** — {v.rule} |")
    return lines
