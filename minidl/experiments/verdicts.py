"""The verdict on each of the paper's claims, computed from a study's results.json and nothing else.

Each claim (`CLAIMS`) gets a `Verdict`: what the paper reports, what this run measured, the outcome, and
the rule that decided it. Outcomes:
    REPRODUCED       the run's numbers pass the stated test;
    NOT_REPRODUCED   they fail it;
    NOT_TESTABLE     the run holds no numbers that could decide it (the reason says why and which
                     command would test it).
Rules compare a measured value with the paper's two values for the two inits: a measured value
"matches" its own init's value when it lies within half the log-scale distance between the two values of
its own, on either side (`matches`: 0.63-1.01 for the Jacobian's 0.8 against 0.5), so no tolerance is
tuned to the run and a value far past its own init's value fails as one near the other init's does.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from minidl.experiments import paper

REPRODUCED, NOT_REPRODUCED, NOT_TESTABLE = "reproduced", "not reproduced", "not testable at this budget"

SIGMOID_LOW = 0.1           # a sigmoid layer whose mean activation is below this sits saturated at 0
# Fig. 2's lower layers "sit above 0.5" (a sigmoid layer of symmetric inputs sits at 0.5): at least this
LOWER_LAYERS_ABOVE = 0.5 - SIGMOID_LOW
EARLY_UPDATE = 200          # "a few hundred updates": where Fig. 2's collapse is read
SATURATED = 0.95            # |2nd or 98th percentile| at or beyond this: the layer is saturated (tanh/softsign)
PILED = 0.9                 # Fig. 4: share of activations beyond ±PILED at the end
LEVEL_FACTOR = 1.5          # weight-gradient std "level" across layers: max/min below this
PLATEAU_MARGIN = 0.1        # left the plateau = test error below (majority-class error - margin)
EFFECT_POINTS = 0.01        # a curve-error difference counts only above max(2 x seed spread, 1 point)
# Updates within which every sigmoid 5x1000 net under Xavier has left the plateau (Fashion-MNIST, lr 0.5,
# batch 64): after 2600-4300 with PyTorch (issue 15), at 3000 and 5000 with minidl (seeds 0 and 1,
# 2026-12-01). Shorter runs of which some have not left it cannot refute the effect.
SIGMOID_XAVIER_ESCAPE_UPDATES = 5000
TABLE1_SHARE = 0.25         # Table 1 matched: within max(25% of the paper's error, 2 x seed spread) of it


@dataclass(frozen=True)
class Verdict:
    claim: str          # "Fig. 2", "Eq. 17", ...
    paper: str          # what the paper reports
    measured: str       # what this run measured
    outcome: str        # REPRODUCED | NOT_REPRODUCED | NOT_TESTABLE
    rule: str           # the test that decided it (or, NOT_TESTABLE, why not and the command that would)

    def to_dict(self) -> dict:
        return asdict(self)


def matches(measured: float, own: float, other: float) -> bool:
    """True if `measured` lies within half the log-scale distance from `own` to `other` of `own`, on either
    side: nearer to `own` than to `other`, and no further past `own` (all > 0)."""
    if measured is None or not (measured > 0 and math.isfinite(measured)):
        return False
    return abs(math.log(measured / own)) < 0.5 * abs(math.log(own / other))


def _pct(value) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{100 * value:.1f}%"


def _number(value) -> float:
    """A statistic read from the results as a float: NaN for a missing one (results.json stores a NaN, e.g.
    of a run that diverged, as null), so that it fails every threshold instead of stopping the verdict."""
    return float("nan") if value is None else float(value)


def _fixed(value, digits: int) -> str:
    return "n/a" if not math.isfinite(value) else f"{value:.{digits}f}"


def _group(runs, activation, scheme):
    return [r for r in runs if r["activation"] == activation and r["scheme"] == scheme]


def _final_errors(group):
    return [r["final_test_error"] for r in group if r.get("final_test_error") is not None]


def curve_error(run, until: float = math.inf) -> float | None:
    """Mean test error over a run's learning-curve points after update 0 and up to `until`: the area under
    its curve per update (evenly spaced points), lower for a net that learns faster (Figs. 11–12 plot error
    against time). Runs compared by it are read over the updates they share (`shared_updates`)."""
    errors = [e for u, e in zip(run["curve"]["updates"], run["curve"]["test_error"])
              if 0 < u <= until and e is not None]
    return float(np.mean(errors)) if errors else None


def shared_updates(runs) -> float:
    """The last learning-curve update every one of `runs` reached (runs of different lengths are compared
    over these: a sigmoid run's extra updates off the plateau must not count against a shorter tanh run)."""
    return min((r["curve"]["updates"][-1] for r in runs if r.get("curve") and r["curve"]["updates"]),
               default=math.inf)


def _curve_errors(group, until: float = math.inf):
    return [e for e in (curve_error(r, until) for r in group if r.get("curve")) if e is not None]


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
    """Fraction of the values (mean over layers) with |v| > threshold, from per-layer densities; a bin that
    straddles ±threshold counts the part of it beyond, its density taken as flat within the bin."""
    fractions = []
    for h in histograms:
        edges = np.array(h["edges"], dtype=float)
        low, high = edges[:-1], edges[1:]
        mass = np.array(h["density"], dtype=float) * (high - low)
        above = np.clip(high - np.maximum(low, threshold), 0, None)
        below = np.clip(np.minimum(high, -threshold) - low, 0, None)
        fractions.append(float((mass * (above + below) / (high - low)).sum()))
    return float(np.mean(fractions))


def saturation_order(run):
    """[(layer, first update whose 2nd/98th percentile reached ±SATURATED, or None)] of a monitored run."""
    order = []
    for i, layer in enumerate(run["monitor"]["layers"]):
        hit = next((u for u, hi, lo in zip(run["monitor"]["updates"], layer["p98"], layer["p2"])
                    if max(abs(_number(hi)), abs(_number(lo))) >= SATURATED), None)
        order.append((i + 1, hit))
    return order


def plateau_threshold(results) -> float:
    majority = (results.get("data") or {}).get("majority_error")
    return (majority - PLATEAU_MARGIN) if majority is not None else 0.8


def init_effect(runs, activation, threshold) -> dict | None:
    """How Xavier compares with the standard init for `activation` (None: a scheme has no finished run).

    {"effect": "xavier" | "standard" | "none", "standard", "xavier" (mean final errors), "curve_standard",
    "curve_xavier" (mean `curve_error`s), "spread" (largest min-max range of the curve errors over seeds),
    "escapes" {scheme: [escape update or None per run]}, "why"}: "xavier" when every Xavier run left the
    plateau before every standard run, or Xavier's mean curve error is lower by more than
    max(2 x spread, EFFECT_POINTS) with at least 2 seeds each (curve errors over the updates all the runs
    share); "standard" the same the other way round; else "none".
    """
    standard, xavier = _group(runs, activation, "standard"), _group(runs, activation, "xavier_uniform")
    e_std, e_xav = _final_errors(standard), _final_errors(xavier)
    until = shared_updates(standard + xavier)
    c_std, c_xav = _curve_errors(standard, until), _curve_errors(xavier, until)
    if not e_std or not e_xav or not c_std or not c_xav:
        return None
    never = float("inf")
    escapes = {name: [escape_update(r, threshold) for r in group]
               for name, group in (("standard", standard), ("xavier_uniform", xavier))}
    s = [never if v is None else v for v in escapes["standard"]]
    x = [never if v is None else v for v in escapes["xavier_uniform"]]
    spread = max(max(c_std) - min(c_std), max(c_xav) - min(c_xav))
    diff = float(np.mean(c_std) - np.mean(c_xav))
    seeds = min(len(c_std), len(c_xav)) >= 2
    decisive = seeds and abs(diff) > max(2 * spread, EFFECT_POINTS)
    effect, why = "none", "no difference beyond the seeds' spread"
    if max(x) < min(s):
        effect, why = "xavier", "every Xavier run left the plateau before every standard-init run"
    elif max(s) < min(x):
        effect, why = "standard", "every standard-init run left the plateau before every Xavier run"
    elif decisive:
        effect = "xavier" if diff > 0 else "standard"
        why = f"curve error differs by {100 * abs(diff):.1f} points, more than twice the seeds' spread"
    elif not seeds:
        why = "one seed per init: no spread to judge a difference against"
    return {"effect": effect, "standard": float(np.mean(e_std)), "xavier": float(np.mean(e_xav)),
            "curve_standard": float(np.mean(c_std)), "curve_xavier": float(np.mean(c_xav)),
            "spread": spread, "escapes": escapes, "why": why, "seeds": min(len(c_std), len(c_xav))}


# ------------------------------------------------------------------------------------------ the claims
def _at_init_pair(results, activation, least_depth=1):
    """(standard, xavier) at-init records of `activation` at the smallest depth of at least `least_depth`
    holding both, or None."""
    records = results.get("at_init") or []
    for depth in sorted({r["depth"] for r in records if r["depth"] >= least_depth}):
        pick = {r["scheme"]: r for r in records if r["activation"] == activation and r["depth"] == depth}
        if "standard" in pick and "xavier_uniform" in pick:
            return pick["standard"], pick["xavier_uniform"]
    return None


AT_INIT_COMMAND = "`minidl reproduce --skip-training --init-activations tanh --init-schemes standard,xavier_uniform`"


def fig2(results) -> Verdict:
    claim = "Fig. 2"
    said = ("sigmoid, standard init: the top hidden layer's mean activation falls to ≈0 within a few hundred "
            "updates and stays there; lower layers sit above 0.5")
    rule = (f"top layer's mean below {SIGMOID_LOW} from ≈{EARLY_UPDATE} updates on, at every snapshot until the "
            f"run leaves the plateau or ends, and every lower layer's mean at ≈{EARLY_UPDATE} updates at least "
            f"{LOWER_LAYERS_ABOVE:g} (each run)")
    runs = [r for r in _group((results.get("training") or {}).get("runs") or [], "sigmoid", "standard")
            if r.get("monitor") and len(r["monitor"]["layers"]) > 1]
    if not runs:
        return Verdict(claim, said, "no monitored standard-init sigmoid run with two or more layers", NOT_TESTABLE,
                       "no run to read; `minidl reproduce --skip-at-init --activations sigmoid` tests it")
    threshold, tops, lowers, stays = plateau_threshold(results), [], [], []
    failed, failed_short = False, False
    for run in runs:
        updates, layers = run["monitor"]["updates"], run["monitor"]["layers"]
        k = snapshot_at(run, EARLY_UPDATE)
        escape = escape_update(run, threshold) if run.get("curve") else None
        window = layers[-1]["mean"][k:k + 1] + [m for u, m in zip(updates[k + 1:], layers[-1]["mean"][k + 1:])
                                                 if escape is None or u < escape]
        # np.max/np.min, unlike max/min, let a NaN snapshot through to fail the test
        tops.append(_number(layers[-1]["mean"][k]))
        lowers.append(float(np.min([_number(L["mean"][k]) for L in layers[:-1]])))
        stays.append(float(np.max([_number(m) for m in window])))
        if not (stays[-1] < SIGMOID_LOW and lowers[-1] >= LOWER_LAYERS_ABOVE):
            # a run that ended before EARLY_UPDATE was read early: not collapsed yet is no evidence against
            short = updates[-1] < EARLY_UPDATE
            failed, failed_short = failed or not short, failed_short or short
    at = runs[0]["monitor"]["updates"][snapshot_at(runs[0], EARLY_UPDATE)]
    measured = (f"top-layer mean {_fixed(np.mean(tops), 3)} after {at} updates, at most {_fixed(np.max(stays), 3)} "
                f"from there on (to update {runs[0]['monitor']['updates'][-1]}); lowest layer below it "
                f"{_fixed(np.min(lowers), 2)}")
    if failed_short and not failed:
        return Verdict(claim, said, measured, NOT_TESTABLE,
                       f"a run ended before update {EARLY_UPDATE}, where the collapse is read, without showing it; "
                       "`minidl reproduce --skip-at-init --activations sigmoid` tests it")
    return Verdict(claim, said, measured, NOT_REPRODUCED if failed else REPRODUCED, rule)


def figs3_4(results) -> Verdict:
    claim = "Figs. 3/4"
    said = ("tanh, standard init: layer 1 saturates first, then 2, and so on up; at the end tanh activations "
            "pile at ±1, softsign's less so")
    rule = (f"tanh (standard) layers 1 to m (m ≥ 2, the ones above never) reach |p2|,|p98| ≥ {SATURATED} in order "
            f"of depth, layer 1 before layer m, and at the end softsign (standard) has a smaller share beyond "
            f"±{PILED} than tanh")
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
    pile = (f"beyond ±{PILED} at the end: tanh {_pct(piled_tanh)}, softsign {_pct(piled_softsign)} "
            f"(seed {tanh[0]['seed']})")
    text = ", ".join(f"layer {layer} at {u}" for layer, u in sorted(reached, key=lambda p: (p[1], p[0])))
    measured = f"tanh saturated {text} ({len(order) - len(reached)} of {len(order)} never); {pile}"
    if not reached:
        return Verdict(claim, said, f"no tanh layer saturated within {tanh[0]['updates_done']} updates; {pile}",
                       NOT_TESTABLE, f"saturation had not begun within this run's updates; {command} tests it")
    onsets = [u for _, u in reached]
    prefix = [layer for layer, _ in reached] == list(range(1, len(reached) + 1))
    if prefix and len(reached) == 1:
        return Verdict(claim, said, measured, NOT_TESTABLE,
                       f"only layer 1 saturated within this run's updates: no order to read; {command} tests it")
    ordered = prefix and onsets == sorted(onsets) and onsets[0] < onsets[-1]
    good = ordered and piled_softsign < piled_tanh
    return Verdict(claim, said, measured, REPRODUCED if good else NOT_REPRODUCED, rule)


def figs6_8(results) -> Verdict:
    claim = "Figs. 6–8"
    ratio, backprop = paper.ACTIVATION_STD_RATIO_TANH, paper.BACKPROP_GRADIENT_RATIO_TANH
    said = (f"tanh at init: activation std ×{ratio['standard']} per layer (standard) vs ×{ratio['xavier_uniform']:g} "
            f"(Xavier); back-propagated gradient ×{backprop['standard']:g} smaller at layer 1 than at the top vs "
            f"×{backprop['xavier_uniform']:g}; weight gradients level under both")
    rule = (f"each scheme's activation ratio, and its gradient ratio per layer (the paper's over its "
            f"{paper.TABLE1_DEPTH - 1} layer gaps), within half the log-scale distance between the two schemes' "
            f"paper values of its own; weight-gradient std max/min below {LEVEL_FACTOR} under both")
    pair = _at_init_pair(results, "tanh", least_depth=2)
    if pair is None:
        return Verdict(claim, said, "no tanh at-init nets of two or more layers under both schemes", NOT_TESTABLE,
                       f"nothing to read; {AT_INIT_COMMAND} tests it")
    s, x = (r["summary"] for r in pair)
    gaps, paper_gaps = pair[0]["depth"] - 1, paper.TABLE1_DEPTH - 1
    act = [s["activation_std_ratio_per_layer"], x["activation_std_ratio_per_layer"]]
    grad = [s["backprop_gradient_std_top_over_bottom"], x["backprop_gradient_std_top_over_bottom"]]
    weight = [s["weight_gradient_std_max_over_min"], x["weight_gradient_std_max_over_min"]]
    measured = (f"{pair[0]['depth']} layers: activation std ×{_num(act[0])} vs ×{_num(act[1])} per layer; "
                f"gradient ×{_num(grad[0])} vs ×{_num(grad[1])}; weight-gradient max/min {_num(weight[0])} vs "
                f"{_num(weight[1])}")
    per_gap = [None if g is None or not g > 0 else g ** (1 / gaps) for g in grad]
    paper_per_gap = {scheme: value ** (1 / paper_gaps) for scheme, value in backprop.items()}
    good = (matches(act[0], ratio["standard"], ratio["xavier_uniform"])
            and matches(act[1], ratio["xavier_uniform"], ratio["standard"])
            and matches(per_gap[0], paper_per_gap["standard"], paper_per_gap["xavier_uniform"])
            and matches(per_gap[1], paper_per_gap["xavier_uniform"], paper_per_gap["standard"])
            and all(w is not None and w < LEVEL_FACTOR for w in weight))
    return Verdict(claim, said, measured, REPRODUCED if good else NOT_REPRODUCED, rule)


def eq17(results) -> Verdict:
    claim = "Eq. 17"
    values = paper.JACOBIAN_MEAN_SINGULAR_VALUE
    said = (f"tanh at init: mean singular value of the layer Jacobians ≈{values['standard']} (standard) vs "
            f"≈{values['xavier_uniform']} (Xavier)")
    rule = ("each scheme's value within half the log-scale distance between the two paper values of its own, and "
            "as near the quarter-circle law's 0.849·f′(0)·√(n·Var W) for its scheme (the linear regime that "
            "Sec. 4.2.1 explains the values by: weights far too large saturate tanh and also land near 0.8)")
    pair = _at_init_pair(results, "tanh")
    found = pair is not None and all(r["summary"]["jacobian_mean_singular_value"] is not None for r in pair)
    if not found:
        return Verdict(claim, said, "no tanh Jacobians measured", NOT_TESTABLE,
                       f"Jacobians are measured for nets up to the configured depth; {AT_INIT_COMMAND} tests it")
    j = [r["summary"]["jacobian_mean_singular_value"] for r in pair]
    law = [_number(r["summary"].get("quarter_circle_prediction")) for r in pair]
    band = values["xavier_uniform"] / values["standard"]
    good = matches(j[0], values["standard"], values["xavier_uniform"]) and \
        matches(j[1], values["xavier_uniform"], values["standard"]) and \
        all(predicted > 0 and matches(measured, predicted, predicted * band) for measured, predicted in zip(j, law))
    return Verdict(claim, said, f"{_fixed(_number(j[0]), 2)} vs {_fixed(_number(j[1]), 2)} ({pair[0]['depth']} layers; "
                   f"quarter-circle law {_fixed(law[0], 2)} vs {_fixed(law[1], 2)})",
                   REPRODUCED if good else NOT_REPRODUCED, rule)


def figs11_12(results) -> Verdict:
    claim = "Figs. 11–12"
    said = ("test error against training time: standard-init sigmoid and tanh nets learn slower and end worse; "
            "normalized (Xavier) init helps tanh most; softsign is robust to the init (no Sigmoid N curve)")
    rule = (f"tanh: Xavier better — every Xavier run off the plateau (test error below majority "
            f"−{100 * PLATEAU_MARGIN:.0f} points) before every standard run, or mean curve error (test error "
            f"averaged over the learning curve) lower by more than max(2 × seed spread, "
            f"{100 * EFFECT_POINTS:.0f} point); standard-init sigmoid: every run's curve error above every tanh "
            "and softsign run's (curve errors over the updates the compared runs share); softsign not judged (its "
            "robustness is Table 1's, after convergence)")
    runs = (results.get("training") or {}).get("runs") or []
    threshold = plateau_threshold(results)
    tanh, softsign = init_effect(runs, "tanh", threshold), init_effect(runs, "softsign", threshold)
    sigmoid_runs = _group(runs, "sigmoid", "standard")
    other_runs = [r for r in runs if r["activation"] in ("tanh", "softsign")]
    until = shared_updates(sigmoid_runs + other_runs)
    sigmoid, others = _curve_errors(sigmoid_runs, until), _curve_errors(other_runs, until)
    if tanh is None and not (sigmoid and others):
        return Verdict(claim, said, "no tanh runs under both inits, no standard-init sigmoid run beside tanh or "
                       "softsign runs", NOT_TESTABLE, "no runs to compare; `minidl reproduce --skip-at-init` tests it")
    parts, checks = [], []
    for activation, e in (("tanh", tanh), ("softsign", softsign)):
        if e is not None:
            parts.append(f"{activation}: curve error {_pct(e['curve_standard'])} (std) vs {_pct(e['curve_xavier'])} "
                         f"(Xavier), final {_pct(e['standard'])} vs {_pct(e['xavier'])}, {_spread_words(e)} → "
                         f"{_effect_words(e)}"
                         + (" (not judged)" if activation == "softsign" else ""))
    if tanh is not None:
        checks.append(tanh["effect"] == "xavier")
    if sigmoid and others:
        slowest = min(sigmoid) > max(others)
        parts.append(f"standard-init sigmoid: curve error {_pct(min(sigmoid))}–{_pct(max(sigmoid))} vs at most "
                     f"{_pct(max(others))} for tanh and softsign over their first {until:g} updates → "
                     f"{'slowest' if slowest else 'not the slowest'}")
        checks.append(slowest)
    measured = "; ".join(parts)
    if not all(checks) and tanh is not None and tanh["why"].startswith("one seed") and \
            (not sigmoid or not others or min(sigmoid) > max(others)):
        return Verdict(claim, said, measured, NOT_TESTABLE, _one_seed("tanh"))
    return Verdict(claim, said, measured, REPRODUCED if all(checks) else NOT_REPRODUCED, rule)


def sigmoid_xavier(results) -> Verdict:
    """Beyond the paper: sigmoid nets under Xavier against the standard init."""
    claim = "Sigmoid N (not in the paper)"
    said = ("no Sigmoid N row or curve in the paper; with PyTorch (5×1000, Fashion-MNIST, lr 0.5, batch 64) Xavier "
            "nets left the plateau after 2600–4300 updates while standard-init nets stayed on it for 8 epochs "
            "(with minidl: after 3000 and 5000)")
    rule = (f"every Xavier run off the plateau (test error below majority −{100 * PLATEAU_MARGIN:.0f} points) "
            f"before every standard-init run, or mean curve error lower by more than max(2 × seed spread, "
            f"{100 * EFFECT_POINTS:.0f} point)")
    runs = (results.get("training") or {}).get("runs") or []
    e = init_effect(runs, "sigmoid", plateau_threshold(results))
    command = "`minidl reproduce --skip-at-init --activations sigmoid --updates 6000`"
    if e is None:
        return Verdict(claim, said, "no sigmoid runs under both inits", NOT_TESTABLE, f"no runs to compare; {command} "
                       "tests it")
    off = "; ".join(f"{'std' if k == 'standard' else 'Xavier'} " + (
        "never off the plateau" if all(v is None for v in vs) else
        "off the plateau at " + ", ".join("never" if v is None else str(v) for v in vs))
        for k, vs in e["escapes"].items())
    updates = min(r.get("updates_done") or 0 for r in _group(runs, "sigmoid", "standard") + _group(runs, "sigmoid",
                                                                                                   "xavier_uniform"))
    measured = (f"final {_pct(e['standard'])} (std) vs {_pct(e['xavier'])} (Xavier), curve error "
                f"{_pct(e['curve_standard'])} vs {_pct(e['curve_xavier'])}; {off} (of {updates} updates) → "
                f"{_effect_words(e)}")
    if e["effect"] == "none":
        if e["why"].startswith("one seed"):
            return Verdict(claim, said, measured, NOT_TESTABLE, _one_seed("sigmoid"))
        if updates < SIGMOID_XAVIER_ESCAPE_UPDATES and all(v is None for v in e["escapes"]["standard"]):
            return Verdict(claim, said, measured, NOT_TESTABLE,
                           f"the runs ended after {updates} updates, before {SIGMOID_XAVIER_ESCAPE_UPDATES} (where every "
                           f"Xavier net measured had left the plateau), with no standard-init run off it; {command} "
                           "tests it")
    return Verdict(claim, said, measured, REPRODUCED if e["effect"] == "xavier" else NOT_REPRODUCED, rule)


def _one_seed(activation: str) -> str:
    return (f"one seed per init for {activation}: no spread to judge a difference against; "
            "`minidl reproduce --skip-at-init --seeds 0,1,2` tests it")


def _effect_words(effect: dict) -> str:
    if effect["effect"] == "none" and effect["seeds"] < 2:
        return "not judged (one seed per init)"
    return {"xavier": "Xavier better", "standard": "standard better", "none": "no distinguishable effect"}[
        effect["effect"]]


def _spread_words(effect: dict) -> str:
    return "one seed" if effect["seeds"] < 2 else f"spread {100 * effect['spread']:.1f} pts"


def table1(results) -> Verdict:
    claim = "Table 1"
    said = ("test error after training to convergence (5×1000, batch 10, lr chosen after 5M updates): e.g. MNIST "
            "tanh 1.76% (standard) vs 1.64% (Xavier), sigmoid 2.21%; Shapeset tanh 27.15% vs 15.60%")
    data = results.get("data") or {}
    runs = (results.get("training") or {}).get("runs") or []
    column = {"mnist": "MNIST", "shapeset": "Shapeset"}.get(data.get("name"))
    updates = max((r.get("updates_done") or 0 for r in runs), default=0)
    rule = (f"every configuration's mean final error within max({100 * TABLE1_SHARE:.0f}% of the paper's, "
            "2 × seed spread) of it")
    shapes = sorted({(r.get("depth"), r.get("width")) for r in runs})
    if column is None or updates < paper.PAPER_UPDATES or shapes != [(paper.TABLE1_DEPTH, paper.TABLE1_WIDTH)]:
        why = []
        if column is None:
            why.append(f"the paper has no {data.get('name')} column")
        if updates < paper.PAPER_UPDATES:
            why.append(f"runs made at most {updates:,} of the paper's {paper.PAPER_UPDATES:,} updates")
        if runs and shapes != [(paper.TABLE1_DEPTH, paper.TABLE1_WIDTH)]:
            why.append(f"the nets are {', '.join(f'{d}×{w}' for d, w in shapes)}, the paper's "
                       f"{paper.TABLE1_DEPTH}×{paper.TABLE1_WIDTH}")
        return Verdict(claim, said, "final errors in the table below (not comparable)", NOT_TESTABLE,
                       "; ".join(why) + "; `minidl reproduce --full --dataset mnist` tests it (days of CPU time)")
    rows, good = [], True
    for (activation, scheme), values in paper.TABLE1.items():
        errors = _final_errors(_group(runs, activation, scheme))
        if not errors:
            continue
        expected = dict(zip(paper.TABLE1_DATASETS, values))[column] / 100
        mean, spread = float(np.mean(errors)), max(errors) - min(errors)
        good &= abs(mean - expected) <= max(TABLE1_SHARE * expected, 2 * spread)
        rows.append(f"{activation}/{scheme} {_pct(mean)} (paper {_pct(expected)})")
    if not rows:
        return Verdict(claim, said, "no run of Table 1's configurations", NOT_TESTABLE,
                       "`minidl reproduce --full --dataset mnist` tests it")
    return Verdict(claim, said, "; ".join(rows), REPRODUCED if good else NOT_REPRODUCED, rule)


def _num(value) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.3g}"


CLAIMS = (fig2, figs3_4, figs6_8, eq17, figs11_12, table1)
BEYOND_THE_PAPER = (sigmoid_xavier,)      # claims the default study tests that the paper does not make


def paper_verdicts(results: dict) -> list[Verdict]:
    """One Verdict per claim of the paper, in the paper's order."""
    return [claim(results) for claim in CLAIMS]


def beyond_paper_verdicts(results: dict) -> list[Verdict]:
    """One Verdict per claim in BEYOND_THE_PAPER (none for a study without training runs)."""
    return [claim(results) for claim in BEYOND_THE_PAPER] if (results.get("training") or {}).get("runs") else []


def verdict_table(verdicts: list[Verdict]) -> list[str]:
    """Markdown table lines: claim | the paper | this run | verdict (with its rule)."""
    lines = ["| claim | the paper | this run | verdict |", "| --- | --- | --- | --- |"]
    for v in verdicts:
        mark = {REPRODUCED: "✅", NOT_REPRODUCED: "❌", NOT_TESTABLE: "⏸"}.get(v.outcome, "")
        lines.append(f"| {v.claim} | {v.paper} | {v.measured} | {mark} **{v.outcome}** — {v.rule} |")
    return lines
