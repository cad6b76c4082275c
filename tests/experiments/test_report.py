"""report.md sentences come from the numbers: change the numbers and the claims change."""
from minidl.experiments.report import at_init_section, training_section


def _summary(mean, std):
    return {"mean": mean, "std": std, "second_moment": mean ** 2 + std ** 2, "min": -1, "max": 1,
            "p2": mean - 2 * std, "p50": mean, "p98": mean + 2 * std}


def at_init_record(scheme, ratio, grad_ratio, jacobian):
    layers = []
    for i in range(5):
        std = 0.3 * ratio ** i
        layers.append({
            "layer": i + 1, "fan_in": 100, "fan_out": 100, "weight_variance": 0.01,
            "pre_activation": _summary(0.0, std), "activation": _summary(0.0, std),
            "backprop_gradient": _summary(0.0, 1e-3 * grad_ratio ** (i / 4)),
            "weight_gradient": _summary(0.0, 1e-4), "jacobian_mean_singular_value": jacobian,
            "predicted": {"pre_activation_var": std ** 2, "pre_activation_var_one_step": std ** 2,
                          "activation_var": std ** 2, "backprop_gradient_var": 1e-6, "weight_gradient_var": 1e-8}})
    return {"activation": "tanh", "scheme": scheme, "depth": 5, "width": 100, "examples": 300,
            "layers": layers, "summary": {"activation_std_ratio_per_layer": ratio,
                                          "backprop_gradient_std_top_over_bottom": grad_ratio,
                                          "weight_gradient_std_max_over_min": 1.05,
                                          "jacobian_mean_singular_value": jacobian,
                                          "quarter_circle_prediction": 0.49 if scheme == "standard" else 0.85}}


def test_at_init_sentences_follow_the_numbers():
    results = {"at_init": [at_init_record("standard", 0.58, 9.5, 0.49),
                           at_init_record("xavier_uniform", 0.98, 1.7, 0.81)]}
    text = "\n".join(at_init_section(results))
    assert "shrinks by ×0.58 per layer under the standard init" in text
    assert "stays level (×0.98 per layer)" in text
    assert "0.49 (standard) vs 0.81 (Xavier)" in text
    # a review's case: the sentence named LeCun and N(0, 1) inits that the study had not run
    assert "For tanh with the standard U[±1/√n_in] and Xavier (normalized) uniform inits the compounded" in text
    assert "LeCun" not in text and "N(0, 1)" not in text
    assert "it shrinks ×9.5 on the way down" in text
    swapped = {"at_init": [at_init_record("standard", 1.3, 0.5, 1.2),
                           at_init_record("xavier_uniform", 0.7, 1.0, 0.3)]}
    text = "\n".join(at_init_section(swapped))
    assert "grows by ×1.30 per layer under the standard init" in text
    assert "shrinks by ×0.70 per layer under Xavier" in text
    assert "it grows ×2.0 on the way down" in text


def training_results(errors_standard, errors_xavier, top_mean_standard):
    runs = []
    for scheme, errors in (("standard", errors_standard), ("xavier_uniform", errors_xavier)):
        for seed, error in enumerate(errors):
            top = top_mean_standard if scheme == "standard" else 0.4
            curve_errors = [0.9, 0.9, error] if error > 0.85 else [0.9, 0.5, error]
            runs.append({
                "activation": "sigmoid", "scheme": scheme, "seed": seed, "lr": 0.5, "diverged_at": None,
                "updates_done": 400, "final_test_error": error,
                "curve": {"updates": [0, 200, 400], "train_loss": [None, 2.0, 1.0], "test_error": curve_errors},
                "monitor": {"updates": [0, 200, 400],
                            "layers": [{"mean": [0.5, 0.6, 0.6], "std": [0.1] * 3, "p2": [0.3] * 3,
                                        "p50": [0.5] * 3, "p98": [0.7] * 3},
                                       {"mean": [0.5, top, top], "std": [0.1] * 3, "p2": [0.0] * 3,
                                        "p50": [top] * 3, "p98": [0.7] * 3}]}})
    return {"config": {"training": {"depth": 2, "width": 10, "batch_size": 64, "updates": 400, "seeds": (0, 1),
                                    "eval_examples": 100}},
            "data": {"name": "fashion-mnist", "n_train": 1000, "n_test": 100, "majority_error": 0.9},
            "training": {"learning_rates": {"sigmoid/standard": {"lr": 0.5, "source": "fixed", "evidence": "test"}},
                         "runs": runs}}


def test_a_dip_back_onto_the_plateau_does_not_count_as_leaving_it():
    from minidl.experiments.verdicts import escape_update as _escape_update

    run = {"curve": {"updates": [0, 100, 200, 300, 400], "test_error": [0.9, 0.7, 0.85, 0.6, 0.5]}}
    assert _escape_update(run, 0.8) == 300
    run["curve"]["test_error"][-1] = 0.88
    assert _escape_update(run, 0.8) is None


def test_training_sentences_follow_the_numbers():
    text = "\n".join(training_section(training_results([0.90, 0.90], [0.30, 0.32], 0.004)))
    assert "Xavier ended lower by 59.0 points" in text
    assert "an init effect" in text
    assert "top hidden layer's mean activation is 0.004" in text and "sits saturated near 0" in text
    assert "Under the standard init the sigmoid nets ended at the majority-class error" in text
    assert "under the standard init never, under Xavier at update 200" in text
    assert "every Xavier run left it before every standard-init run: an init effect on how fast" in text

    text = "\n".join(training_section(training_results([0.30, 0.40], [0.31, 0.36], 0.45)))
    assert "is within twice the seed spread (10.0 points): no init effect" in text
    assert "is not saturated at 0" in text
    assert "the runs of the two inits overlap: no init effect on how fast the nets learn" in text
    assert "majority-class error: they did not learn" not in text


def test_sentences_survive_the_nulls_results_json_holds_for_nan():
    """results.json stores a NaN statistic (an overflowing init, a diverged run) as null; a resumed study
    writes its report from there, which stopped on None ** 2 and np.mean of None."""
    records = [at_init_record("standard", 0.58, 9.5, 0.49), at_init_record("xavier_uniform", 0.98, 1.7, 0.81)]
    records[0]["layers"][3]["backprop_gradient"]["std"] = None
    records[1]["layers"][2]["predicted"]["activation_var"] = None
    records[1]["summary"]["backprop_gradient_std_top_over_bottom"] = 0.0
    text = "\n".join(at_init_section({"at_init": records}))
    assert "×0 under Xavier (it shrinks ×9.5 on the way down vs not measurable)" in text
    results = training_results([0.90, 0.90], [0.30, 0.32], 0.004)
    for run in results["training"]["runs"]:
        run["monitor"]["layers"][-1]["mean"][-1] = None
    text = "\n".join(training_section(results))
    assert "the top layer's mean is n/a" in text


def test_a_depth_without_jacobians_says_why_its_column_is_n_a():
    from minidl.experiments.report import at_init_tables

    deep = [dict(at_init_record(scheme, 0.9, 2.0, None), depth=10) for scheme in ("standard", "xavier_uniform")]
    results = {"at_init": [at_init_record("standard", 0.58, 9.5, 0.49)] + deep,
               "config": {"at_init": {"jacobian_max_depth": 5}}}
    text = "\n".join(at_init_tables(results))
    assert text.count("Jacobians are not measured at this depth (only in nets of up to 5 layers") == 1
    assert text.index("10 hidden layers") < text.index("Jacobians are not measured")
