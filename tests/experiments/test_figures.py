"""The figures drawn from results.json as a resumed study reads it back (NaN stored as null)."""
from minidl.experiments import figures
from test_report import at_init_record


def test_variance_propagation_draws_a_null_statistic_as_a_gap(tmp_path):
    """An overflowing init (identity, N(0, 10000²), 8 layers) leaves the top layer's std NaN, null in
    results.json; the figure raised TypeError (None ** 2) and draw_all lost every figure after it."""
    records = [at_init_record("standard", 0.58, 9.5, 0.49), at_init_record("xavier_uniform", 0.98, 1.7, 0.81)]
    records[0]["layers"][-1]["activation"]["std"] = None
    records[1]["layers"][2]["predicted"]["backprop_gradient_var"] = None
    path = figures.variance_propagation({"at_init": records}, tmp_path)
    assert path is not None and path.stat().st_size > 0


def test_variance_propagation_spans_the_measured_values_not_a_runaway_prediction(tmp_path, monkeypatch):
    """N(0, 1²)'s linear-regime prediction reached 1e24 and squeezed every measured curve into a thin band."""
    records = [at_init_record("standard", 0.58, 9.5, 0.49), at_init_record("xavier_uniform", 0.98, 1.7, 0.81)]
    for layer in records[1]["layers"]:
        layer["predicted"]["activation_var"] = 1e24
    drawn = []
    monkeypatch.setattr(figures, "_save", lambda fig, folder, name: drawn.append(fig))
    figures.variance_propagation({"at_init": records}, tmp_path)
    low, high = drawn[0].axes[0].get_ylim()
    measured = [L["activation"]["std"] ** 2 for r in records for L in r["layers"]]
    assert low == min(measured) / 10 and high == max(measured) * 10
