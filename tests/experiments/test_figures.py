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
