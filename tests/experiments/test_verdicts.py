"""Each verdict's rule on synthetic results: the numbers that pass it, the numbers that fail it, and the
results that cannot decide it."""
import pytest

from minidl.experiments import verdicts
from minidl.experiments.verdicts import NOT_REPRODUCED, NOT_TESTABLE, REPRODUCED, matches
from test_report import at_init_record, training_results


def test_eq17_needs_the_linear_regime_the_paper_explains_its_values_by():
    """A review's case: tanh weights N(0, 1) (n·Var W = 1000) saturate every unit, f'(s) ≈ 0 offsets the large
    weights and the mean singular value lands at 0.83, inside Xavier's band around 0.8; the quarter-circle
    law for those weights says 26.8."""
    saturated = _at_init((0.57, 9.7, 0.49), (0.99, 1.4, 0.83))
    assert verdicts.eq17(saturated).outcome == REPRODUCED
    saturated["at_init"][1]["summary"]["quarter_circle_prediction"] = 26.8
    verdict = verdicts.eq17(saturated)
    assert verdict.outcome == NOT_REPRODUCED and "quarter-circle law 0.49 vs 26.80" in verdict.measured
    for law in (0.0, None, float("nan"), 0.65):    # 0.65: a measured 0.49 is 1.33× below it, past the band's 1.26×
        unsure = _at_init((0.57, 9.7, 0.49), (0.91, 1.4, 0.81))
        unsure["at_init"][0]["summary"]["quarter_circle_prediction"] = law
        assert verdicts.eq17(unsure).outcome == NOT_REPRODUCED, law


def test_matches_takes_half_the_log_distance_to_the_other_value_on_either_side():
    assert matches(0.56, 0.57, 1.0) and not matches(0.8, 0.57, 1.0)
    assert matches(0.76, 1.0, 0.577) and not matches(0.75, 1.0, 0.577)   # the log midpoint is 0.7597
    assert matches(1.31, 1.0, 0.577) and not matches(1.32, 1.0, 0.577)   # as far on the other side: 1.3165
    assert matches(0.64, 0.8, 0.5) and matches(1.01, 0.8, 0.5) and not matches(0.63, 0.8, 0.5)
    assert not matches(1.02, 0.8, 0.5) and not matches(4.0, 0.8, 0.5)        # 0.6325-1.0119
    assert not matches(None, 1.0, 0.5) and not matches(0.0, 1.0, 0.5) and not matches(float("nan"), 1.0, 0.5)


def _at_init(standard, xavier):
    return {"at_init": [at_init_record("standard", *standard), at_init_record("xavier_uniform", *xavier)]}


def test_figs6_8_and_eq17_follow_the_at_init_numbers():
    good = _at_init((0.57, 9.7, 0.49), (0.91, 1.4, 0.81))
    assert verdicts.figs6_8(good).outcome == REPRODUCED and verdicts.eq17(good).outcome == REPRODUCED
    assert "×0.57 vs ×0.91" in verdicts.figs6_8(good).measured and "0.49 vs 0.81" in verdicts.eq17(good).measured
    assert "quarter-circle law 0.49 vs 0.85" in verdicts.eq17(good).measured
    swapped = _at_init((0.91, 1.4, 0.81), (0.57, 9.7, 0.49))
    assert verdicts.figs6_8(swapped).outcome == NOT_REPRODUCED and verdicts.eq17(swapped).outcome == NOT_REPRODUCED
    level_activations_only = _at_init((0.57, 1.5, 0.49), (0.91, 1.4, 0.81))   # gradients do not shrink
    assert verdicts.figs6_8(level_activations_only).outcome == NOT_REPRODUCED
    uneven = _at_init((0.57, 9.7, 0.49), (0.91, 1.4, 0.81))
    uneven["at_init"][0]["summary"]["weight_gradient_std_max_over_min"] = 2.0
    assert verdicts.figs6_8(uneven).outcome == NOT_REPRODUCED
    # far past the paper's values (a review's cases): Xavier exploding, the standard init collapsing
    exploding = _at_init((0.57, 9.7, 0.49), (3.0, 0.05, 4.0))
    assert verdicts.figs6_8(exploding).outcome == NOT_REPRODUCED and verdicts.eq17(exploding).outcome == NOT_REPRODUCED
    collapsing = _at_init((0.1, 1e4, 0.05), (1.0, 1.7, 0.8))
    assert verdicts.figs6_8(collapsing).outcome == NOT_REPRODUCED and verdicts.eq17(collapsing).outcome == NOT_REPRODUCED
    no_jacobian = _at_init((0.57, 9.7, None), (0.91, 1.4, None))
    assert verdicts.eq17(no_jacobian).outcome == NOT_TESTABLE
    for claim in verdicts.CLAIMS:
        verdict = claim({})
        assert verdict.outcome == NOT_TESTABLE and "minidl reproduce" in verdict.rule, claim.__name__


@pytest.mark.parametrize("depth, standard, xavier", [(2, 10 ** 0.25, 1.7 ** 0.25), (3, 10 ** 0.5, 1.7 ** 0.5),
                                                     (10, 10 ** 2.25, 1.7 ** 2.25)])
def test_figs6_8_reads_the_gradient_ratio_per_layer_gap_at_any_depth(depth, standard, xavier):
    """The paper's ×10 and ×1.7 are over its 5 layers (4 gaps); a 3-layer net that shrinks its gradients
    as fast per layer shows ×3.2, and was judged against ×10."""
    results = _at_init((0.57, standard, 0.49), (0.91, xavier, 0.81))
    for record in results["at_init"]:
        record["depth"] = depth
    assert verdicts.figs6_8(results).outcome == REPRODUCED
    for record, ratio in zip(results["at_init"], (10.0, 1.7)):       # the 5-layer values at this depth
        record["summary"]["backprop_gradient_std_top_over_bottom"] = ratio
    assert verdicts.figs6_8(results).outcome == NOT_REPRODUCED


def test_fig2_reads_the_top_layer_after_a_few_hundred_updates():
    assert verdicts.fig2(training_results([0.9, 0.9], [0.3, 0.32], 0.004)).outcome == REPRODUCED
    verdict = verdicts.fig2(training_results([0.9, 0.9], [0.3, 0.32], 0.45))
    assert verdict.outcome == NOT_REPRODUCED and "top-layer mean 0.450 after 200 updates" in verdict.measured


def _with_standard_means(results, lower, top):
    for run in results["training"]["runs"]:
        if run["scheme"] == "standard":
            run["monitor"]["layers"][0]["mean"], run["monitor"]["layers"][-1]["mean"] = lower, top
    return results


def test_fig2_needs_the_top_layer_to_stay_down_and_the_lower_layers_up():
    every_layer_at_0 = _with_standard_means(training_results([0.9, 0.9], [0.3, 0.32], 0.004), [0.5, 0.02, 0.02],
                                            [0.5, 0.02, 0.02])
    assert verdicts.fig2(every_layer_at_0).outcome == NOT_REPRODUCED
    back_up_at_400 = _with_standard_means(training_results([0.9, 0.9], [0.3, 0.32], 0.004), [0.5, 0.6, 0.6],
                                          [0.5, 0.05, 0.6])
    verdict = verdicts.fig2(back_up_at_400)
    assert verdict.outcome == NOT_REPRODUCED and "at most 0.600 from there on" in verdict.measured
    # back up only once the net has left the plateau (test error 0.3 at update 400 < 0.9 - 0.1): it stayed
    left_the_plateau = _with_standard_means(training_results([0.3, 0.3], [0.3, 0.32], 0.004), [0.5, 0.6, 0.6],
                                            [0.5, 0.05, 0.6])
    assert verdicts.fig2(left_the_plateau).outcome == REPRODUCED


def _curves(activation, standard, xavier, updates=(0, 200, 400)):
    """Training runs of `activation`: one per learning curve (test errors at `updates`) of each scheme."""
    return [{"activation": activation, "scheme": scheme, "seed": seed, "updates_done": updates[-1],
             "final_test_error": curve[-1], "curve": {"updates": list(updates), "test_error": list(curve)}}
            for scheme, curves in (("standard", standard), ("xavier_uniform", xavier))
            for seed, curve in enumerate(curves)]


def _study(tanh, sigmoid=([0.9, 0.9, 0.9], [0.9, 0.9, 0.89])):
    """Results with tanh runs (standard curves, Xavier curves), softsign runs, and standard-init sigmoid runs."""
    softsign = ([[0.9, 0.3, 0.25]] * 2, [[0.9, 0.25, 0.2]] * 2)
    runs = _curves("tanh", *tanh) + _curves("softsign", *softsign) + _curves("sigmoid", list(sigmoid), [])
    return {"data": {"majority_error": 0.9}, "training": {"runs": runs}}


def test_figs11_12_judges_tanh_by_its_learning_curves_and_sigmoid_as_the_slowest():
    faster = ([[0.9, 0.4, 0.3], [0.9, 0.42, 0.31]], [[0.9, 0.25, 0.2], [0.9, 0.26, 0.21]])
    verdict = verdicts.figs11_12(_study(faster))
    assert verdict.outcome == REPRODUCED, verdict
    assert "tanh: curve error 35.8% (std) vs 23.0% (Xavier), final 30.5% vs 20.5%" in verdict.measured
    assert "standard-init sigmoid: curve error 89.5%–90.0% vs at most 36.5% for tanh and softsign over their first " \
        "400 updates → slowest" in verdict.measured
    noise = ([[0.9, 0.3, 0.25], [0.9, 0.2, 0.2]], [[0.9, 0.25, 0.22], [0.9, 0.22, 0.2]])
    assert verdicts.figs11_12(_study(noise)).outcome == NOT_REPRODUCED
    reversed_effect = (faster[1], faster[0])
    verdict = verdicts.figs11_12(_study(reversed_effect))
    assert verdict.outcome == NOT_REPRODUCED and "tanh: " in verdict.measured and "standard better" in verdict.measured
    # the final points differ beyond the spread, the curves do not: a faster end is not a faster net
    final_only = ([[0.9, 0.25, 0.30], [0.9, 0.25, 0.31]], [[0.9, 0.35, 0.20], [0.9, 0.35, 0.21]])
    assert verdicts.figs11_12(_study(final_only)).outcome == NOT_REPRODUCED
    sigmoid_learns = verdicts.figs11_12(_study(faster, sigmoid=([0.9, 0.2, 0.1], [0.9, 0.2, 0.1])))
    assert sigmoid_learns.outcome == NOT_REPRODUCED and "not the slowest" in sigmoid_learns.measured
    one_seed = verdicts.figs11_12(_study(([faster[0][0]], [faster[1][0]])))
    assert one_seed.outcome == NOT_TESTABLE and "--seeds 0,1,2" in one_seed.rule
    # a review's case: "spread 0.0 pts → no distinguishable effect" beside a 7-point gap with one seed per init
    assert "final 30.0% vs 20.0%, one seed → not judged (one seed per init)" in one_seed.measured
    assert verdicts.figs11_12(training_results([0.9, 0.9], [0.3, 0.32], 0.004)).outcome == NOT_TESTABLE  # sigmoid only


def test_figs11_12_compares_runs_of_different_lengths_over_the_updates_they_share():
    """The default gives sigmoid runs 6000 updates and tanh runs 1000: a sigmoid run that leaves the plateau
    after update 1000 must not look faster than a tanh run that learned within it (a review's case)."""
    faster = ([[0.9, 0.4, 0.3], [0.9, 0.42, 0.31]], [[0.9, 0.25, 0.2], [0.9, 0.26, 0.21]])
    results = _study(faster)
    late = [0.9] * 6 + [0.1] * 25
    for run in results["training"]["runs"]:
        if run["activation"] == "sigmoid":
            run["curve"] = {"updates": list(range(0, 3001, 100)), "test_error": late}
            run["updates_done"] = 3000
    verdict = verdicts.figs11_12(results)
    assert verdict.outcome == REPRODUCED and "over their first 400 updates → slowest" in verdict.measured
    assert verdicts.curve_error(results["training"]["runs"][-1]) < 0.3          # over its whole run: fastest


def test_sigmoid_xavier_needs_every_xavier_run_off_the_plateau_first():
    results = training_results([0.90, 0.90], [0.30, 0.32], 0.004)
    verdict = verdicts.sigmoid_xavier(results)
    assert verdict.outcome == REPRODUCED
    assert "std never off the plateau; Xavier off the plateau at 200, 200 (of 400 updates)" in verdict.measured
    reversed_effect = training_results([0.30, 0.32], [0.90, 0.90], 0.45)
    verdict = verdicts.sigmoid_xavier(reversed_effect)
    assert verdict.outcome == NOT_REPRODUCED and "standard better" in verdict.measured
    on_the_plateau = training_results([0.90, 0.90], [0.90, 0.90], 0.004)        # both never left it
    verdict = verdicts.sigmoid_xavier(on_the_plateau)
    assert verdict.outcome == NOT_TESTABLE and "ended after 400 updates, before 5000" in verdict.rule
    one_of_two = training_results([0.90, 0.90], [0.30, 0.90], 0.004)           # one Xavier seed still on it
    assert verdicts.sigmoid_xavier(one_of_two).outcome == NOT_TESTABLE
    for run in one_of_two["training"]["runs"]:
        run["updates_done"] = verdicts.SIGMOID_XAVIER_ESCAPE_UPDATES
    assert verdicts.sigmoid_xavier(one_of_two).outcome == NOT_REPRODUCED         # long enough: it should have
    one_seed = verdicts.sigmoid_xavier(training_results([0.40], [0.38], 0.45))
    assert one_seed.outcome == NOT_TESTABLE and "--seeds 0,1,2" in one_seed.rule
    assert verdicts.beyond_paper_verdicts({}) == []
    assert verdicts.sigmoid_xavier({}).outcome == NOT_TESTABLE


def _saturating(order, piled_tanh, piled_softsign):
    """tanh/softsign standard runs: tanh layer i first reaches ±0.95 at update order[i] (None: never)."""
    def histogram(piled):
        # density on [-1, 1] in 4 bins: `piled` of the mass in the outer bins (|center| 0.95 > 0.9)
        edges = [-1.0, -0.9, 0.0, 0.9, 1.0]
        mass = [piled / 2, (1 - piled) / 2, (1 - piled) / 2, piled / 2]
        return {"edges": edges, "density": [m / (b - a) for m, a, b in zip(mass, edges[:-1], edges[1:])]}

    updates = [0, 100, 200, 300]
    layers = []
    for hit in order:
        p98 = [0.99 if hit is not None and u >= hit else 0.5 for u in updates]
        layers.append({"mean": [0] * 4, "std": [0.3] * 4, "p2": [-v for v in p98], "p50": [0] * 4, "p98": p98})
    runs = [{"activation": a, "scheme": "standard", "seed": 0, "updates_done": 300,
             "monitor": {"updates": updates, "layers": layers},
             "final_histograms": [histogram(p)] * len(order)}
            for a, p in (("tanh", piled_tanh), ("softsign", piled_softsign))]
    return {"training": {"runs": runs}}


@pytest.mark.parametrize("order, piled, outcome", [
    ((100, 200, None), (0.3, 0.1), REPRODUCED),
    ((100, 100, 300), (0.3, 0.1), REPRODUCED),          # ties keep the order
    ((100, 100, 100), (0.3, 0.1), NOT_REPRODUCED),      # all at once: no order
    ((100, None, 200), (0.3, 0.1), NOT_REPRODUCED),     # layer 3 without layer 2
    ((100, None, None), (0.3, 0.1), NOT_TESTABLE),      # layer 1 alone: no order to read
    ((200, 100, None), (0.3, 0.1), NOT_REPRODUCED),     # layer 2 before layer 1
    ((None, 100, 200), (0.3, 0.1), NOT_REPRODUCED),     # layer 1 never
    ((100, 200, None), (0.1, 0.3), NOT_REPRODUCED),     # softsign piles more
    ((None, None, None), (0.3, 0.1), NOT_TESTABLE),     # no saturation yet
])
def test_figs3_4_saturation_order_and_piling(order, piled, outcome):
    assert verdicts.figs3_4(_saturating(order, *piled)).outcome == outcome


def test_table1_is_judged_only_at_the_papers_scale_on_its_data():
    results = training_results([0.0221, 0.0221], [0.02, 0.02], 0.004)
    assert verdicts.table1(results).outcome == NOT_TESTABLE      # fashion-mnist, 400 updates
    results["data"]["name"] = "mnist"
    for run in results["training"]["runs"]:
        run["updates_done"], run["depth"], run["width"] = 5_000_000, 5, 1000
    assert verdicts.table1(results).outcome == REPRODUCED        # sigmoid/standard 2.21% on MNIST
    for run in results["training"]["runs"]:
        run["final_test_error"] = 0.029                          # 0.7 points off, a third of 2.21%
    verdict = verdicts.table1(results)
    assert verdict.outcome == NOT_REPRODUCED and "2.9% (paper 2.2%)" in verdict.measured
    for run in results["training"]["runs"]:
        run["final_test_error"], run["depth"] = 0.0221, 1
    verdict = verdicts.table1(results)
    assert verdict.outcome == NOT_TESTABLE and "the nets are 1×1000, the paper's 5×1000" in verdict.rule


def test_the_share_beyond_a_threshold_counts_the_part_of_a_straddling_bin_beyond_it():
    edges = [-1.0, -0.95, -0.85, 0.85, 0.95, 1.0]             # a bin centred on each of ±0.9
    mass = [0.05, 0.1, 0.7, 0.1, 0.05]
    histogram = {"edges": edges, "density": [m / (b - a) for m, a, b in zip(mass, edges[:-1], edges[1:])]}
    assert verdicts.fraction_beyond([histogram], 0.9) == pytest.approx(0.05 + 0.05 + 0.05 + 0.05)
    assert verdicts.fraction_beyond([histogram], 0.99) == pytest.approx(2 * 0.05 * 0.2)
    assert verdicts.fraction_beyond([histogram], 0.0) == pytest.approx(1.0)


def test_the_verdict_table_has_one_row_per_claim():
    table = verdicts.verdict_table(verdicts.paper_verdicts(_at_init((0.57, 9.7, 0.49), (0.91, 1.4, 0.81))))
    assert len(table) == 2 + len(verdicts.CLAIMS)
    assert [row.split(" | ")[0] for row in table[2:]] == [
        "| Fig. 2", "| Figs. 3/4", "| Figs. 6–8", "| Eq. 17", "| Figs. 11–12", "| Table 1"]


def test_a_nan_or_missing_statistic_fails_a_verdict_and_does_not_stop_it():
    """A run that diverged can leave a NaN snapshot (null in results.json). max() skipped a NaN after a
    number (Fig. 2 passed on it) and stopped at a null; the verdicts now fail such a run and go on."""
    for missing in (float("nan"), None):
        results = training_results([0.9, 0.9], [0.3, 0.32], 0.004)
        for run in results["training"]["runs"]:
            run["monitor"]["layers"][-1]["mean"][-1] = missing
        verdict = verdicts.fig2(results)
        assert verdict.outcome == NOT_REPRODUCED and "at most n/a" in verdict.measured and "nan" not in verdict.measured
        saturating = _saturating((100, 200, None), 0.3, 0.1)
        saturating["training"]["runs"][0]["monitor"]["layers"][2]["p98"][-1] = missing
        saturating["training"]["runs"][1]["final_histograms"][0]["density"][0] = missing
        verdict = verdicts.figs3_4(saturating)
        assert verdict.outcome == NOT_REPRODUCED and "softsign n/a" in verdict.measured
    no_jacobian = _at_init((0.57, 9.7, float("nan")), (0.91, 1.4, 0.81))
    verdict = verdicts.eq17(no_jacobian)
    assert verdict.outcome == NOT_REPRODUCED and verdict.measured.startswith("n/a vs 0.81")


def test_fig2_is_not_refuted_by_runs_that_ended_before_the_update_it_is_read_at():
    """The quick preset's 150-update runs read the top layer at update 150 (0.247) and called the collapse
    'within a few hundred updates' not reproduced; a run that collapsed early still counts."""
    def short(top):
        results = training_results([0.9, 0.9], [0.3, 0.32], top)
        for run in results["training"]["runs"]:
            run["monitor"]["updates"] = [0, 75, 150]
        return results
    verdict = verdicts.fig2(short(0.247))
    assert verdict.outcome == NOT_TESTABLE and "top-layer mean 0.247 after 150 updates" in verdict.measured
    assert "ended before update 200" in verdict.rule and "minidl reproduce" in verdict.rule
    assert verdicts.fig2(short(0.004)).outcome == REPRODUCED
    assert verdicts.fig2(training_results([0.9, 0.9], [0.3, 0.32], 0.247)).outcome == NOT_REPRODUCED
