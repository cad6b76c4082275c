"""Each verdict's rule on synthetic results: the numbers that pass it, the numbers that fail it, and the
results that cannot decide it."""
import pytest

from minidl.experiments import verdicts
from minidl.experiments.verdicts import NOT_REPRODUCED, NOT_TESTABLE, REPRODUCED, nearer
from test_report import at_init_record, training_results


def test_nearer_compares_on_a_log_scale():
    assert nearer(0.56, 0.57, 1.0) and not nearer(0.8, 0.57, 1.0)
    assert nearer(0.76, 1.0, 0.577) and not nearer(0.75, 1.0, 0.577)   # the log midpoint is 0.7597
    assert not nearer(None, 1.0, 0.5) and not nearer(0.0, 1.0, 0.5) and not nearer(float("nan"), 1.0, 0.5)


def _at_init(standard, xavier):
    return {"at_init": [at_init_record("standard", *standard), at_init_record("xavier_uniform", *xavier)]}


def test_figs6_8_and_eq17_follow_the_at_init_numbers():
    good = _at_init((0.57, 9.7, 0.49), (0.91, 1.4, 0.81))
    assert verdicts.figs6_8(good).outcome == REPRODUCED and verdicts.eq17(good).outcome == REPRODUCED
    assert "×0.57 vs ×0.91" in verdicts.figs6_8(good).measured and "0.49 vs 0.81" in verdicts.eq17(good).measured
    swapped = _at_init((0.91, 1.4, 0.81), (0.57, 9.7, 0.49))
    assert verdicts.figs6_8(swapped).outcome == NOT_REPRODUCED and verdicts.eq17(swapped).outcome == NOT_REPRODUCED
    level_activations_only = _at_init((0.57, 1.5, 0.49), (0.91, 1.4, 0.81))   # gradients do not shrink
    assert verdicts.figs6_8(level_activations_only).outcome == NOT_REPRODUCED
    uneven = _at_init((0.57, 9.7, 0.49), (0.91, 1.4, 0.81))
    uneven["at_init"][0]["summary"]["weight_gradient_std_max_over_min"] = 2.0
    assert verdicts.figs6_8(uneven).outcome == NOT_REPRODUCED
    no_jacobian = _at_init((0.57, 9.7, None), (0.91, 1.4, None))
    assert verdicts.eq17(no_jacobian).outcome == NOT_TESTABLE
    for claim in verdicts.CLAIMS:
        verdict = claim({})
        assert verdict.outcome == NOT_TESTABLE and "minidl reproduce" in verdict.rule, claim.__name__


def test_fig2_reads_the_top_layer_after_a_few_hundred_updates():
    assert verdicts.fig2(training_results([0.9, 0.9], [0.3, 0.32], 0.004)).outcome == REPRODUCED
    verdict = verdicts.fig2(training_results([0.9, 0.9], [0.3, 0.32], 0.45))
    assert verdict.outcome == NOT_REPRODUCED and "top-layer mean 0.450 after 200 updates" in verdict.measured


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
    assert "standard-init sigmoid: curve error 89.5%–90.0% vs at most 36.5% for tanh and softsign → slowest" in \
        verdict.measured
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
    assert verdicts.figs11_12(training_results([0.9, 0.9], [0.3, 0.32], 0.004)).outcome == NOT_TESTABLE  # sigmoid only


def test_sigmoid_xavier_needs_every_xavier_run_off_the_plateau_first():
    results = training_results([0.90, 0.90], [0.30, 0.32], 0.004)
    verdict = verdicts.sigmoid_xavier(results)
    assert verdict.outcome == REPRODUCED
    assert "std off the plateau at never, never; Xavier off the plateau at 200, 200 (of 400 updates)" in verdict.measured
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
        run["updates_done"] = 5_000_000
    assert verdicts.table1(results).outcome == REPRODUCED        # sigmoid/standard 2.21% on MNIST
    for run in results["training"]["runs"]:
        run["final_test_error"] = 0.10
    verdict = verdicts.table1(results)
    assert verdict.outcome == NOT_REPRODUCED and "10.0% (paper 2.2%)" in verdict.measured


def test_the_verdict_table_has_one_row_per_claim():
    table = verdicts.verdict_table(verdicts.paper_verdicts(_at_init((0.57, 9.7, 0.49), (0.91, 1.4, 0.81))))
    assert len(table) == 2 + len(verdicts.CLAIMS)
    assert [row.split(" | ")[0] for row in table[2:]] == [
        "| Fig. 2", "| Figs. 3/4", "| Figs. 6–8", "| Eq. 17", "| Figs. 11–12", "| Table 1"]
