"""The study's cost model: how long each stage takes, in units of one training update of the study's net.

The unit, seconds per update, is measured where the runs execute (`runner.seconds_per_update`); the
other costs are measured beside it in this process (`measure_costs`) or are constants measured here:
    evaluation        `eval_example` updates per evaluated test example (forward pass, no graph);
    activation snapshot `monitor_example` updates per monitored example (forward pass + 5 statistics
                      per layer over all its activations, percentiles being sorts);
    at-init net       seconds per hidden layer (forward + backward of `examples` examples, four
                      summaries and three histograms per layer) and per layer Jacobian (an SVD of a
                      width x width matrix), both measured here (`measure_at_init`);
    report            REPORT_SECONDS (CSVs, ~9 figures, report.md; matplotlib, one thread).
Measured for issue 15 on the 2-core machine while other work loaded it (so medians of 3, each a
ratio of two times taken back to back): 5x1000 net, batch 64: an evaluated example 0.0026 updates,
a monitored example 0.0034-0.0045, an at-init layer 1.0-1.3 updates at 300 examples, a Jacobian
layer 2.8-3.4 updates; the report of a quick study 11 s with the figures' log axes fixed.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

REPORT_SECONDS = 12.0
EVAL_EXAMPLE_UPDATES = 0.0026      # used when not measured (tests, a plan made before measuring)
MONITOR_EXAMPLE_UPDATES = 0.004


@dataclass(frozen=True)
class Costs:
    """What the planner knows about this machine: seconds per update and the other costs in updates."""
    seconds_per_update: float
    eval_example: float = EVAL_EXAMPLE_UPDATES
    monitor_example: float = MONITOR_EXAMPLE_UPDATES

    def to_dict(self) -> dict:
        return {"seconds_per_update": self.seconds_per_update,
                "seconds_per_eval_example": self.eval_example * self.seconds_per_update,
                "eval_example_updates": self.eval_example, "monitor_example_updates": self.monitor_example}


def run_updates(updates: int, eval_every: int, monitor_every: int | None, eval_examples: int,
                monitor_examples: int, final_examples: int, costs: Costs) -> float:
    """Cost of one run in updates: its updates, a curve point every `eval_every` (and one at the end) on
    `eval_examples`, a snapshot every `monitor_every` (None: no monitor) and the final evaluation of
    `final_examples` (test + validation examples)."""
    evaluated = (updates // eval_every + 1) * eval_examples + final_examples
    cost = updates + evaluated * costs.eval_example
    if monitor_every is not None:
        cost += (updates // monitor_every + 2) * monitor_examples * costs.monitor_example
    return cost


def at_init_seconds(config, seconds_per_layer: float, seconds_per_jacobian: float) -> float:
    """Seconds of the at-init study (`AtInitConfig`): every hidden layer of every net, plus every layer
    Jacobian (nets up to jacobian_max_depth, layers 2..L, jacobian_examples each)."""
    nets = len(config.activations) * len(config.schemes)
    layers = nets * sum(config.depths)
    jacobians = nets * config.jacobian_examples * sum(d - 1 for d in config.depths if d <= config.jacobian_max_depth)
    return layers * seconds_per_layer + jacobians * seconds_per_jacobian


def measure_at_init(data, config, activation: str = "tanh") -> tuple[float, float]:
    """(seconds per at-init layer, seconds per layer Jacobian) of the at-init study `config`, measured here:
    a layer as the mean over the config's schemes of a net of its smallest depth, width and examples
    (statistics and histograms included, no Jacobian), a Jacobian as the median of 3. A 2-layer net of
    one scheme read 15-25% fast: per layer, deeper nets took longer and normal inits draw their weights
    slower than uniform ones (issue 15, 2026-12-01)."""
    import numpy as np

    from minidl.diagnostics import mean_singular_value
    from minidl.experiments.at_init import add_histograms, measure_network

    x, y = data.x_test[:config.examples], data.y_test[:config.examples]
    layer, jacobian = [], []
    depth = min(config.depths)
    for scheme in config.schemes:
        started = time.perf_counter()
        add_histograms([measure_network(activation, scheme, depth, config.width, x, y, data.n_classes,
                                        config.seed, 0)], config.bins)
        layer.append((time.perf_counter() - started) / depth)
    for _ in range(3):
        weights = np.random.default_rng(0).standard_normal((config.width, config.width)).astype(np.float32)
        started = time.perf_counter()
        mean_singular_value(weights, np.ones((1, config.width), np.float32), np.float32)
        jacobian.append(time.perf_counter() - started)
    return float(np.mean(layer)), float(np.median(jacobian))


def measure_costs(data, config, seconds_per_update: float, activation: str = "sigmoid") -> Costs:
    """Costs of evaluation and snapshots relative to one update, measured here on the study's net
    (`config`: its TrainingConfig): one update timed, then one evaluation of `eval_examples` and one
    snapshot of `monitor_examples`, each as a ratio to the update timed beside it (the machine's load
    cancels); `seconds_per_update` (measured where the runs execute) stays the unit."""
    from minidl.experiments.networks import build_network
    from minidl.experiments.training_study import _monitor, eval_loader, seconds_per_update as measure_update
    from minidl.experiments.training_study import study_trainer

    model, probe = build_network(data.n_inputs, config.depth, config.width, data.n_classes, activation,
                                 "xavier_uniform", seed=0)
    trainer = study_trainer(data, config, model, lr=0.0, seed=0)
    loader = eval_loader(data.x_test[:config.eval_examples], data.y_test[:config.eval_examples])
    x_monitor = data.x_test[:config.monitor_examples]
    trainer.evaluate(loader)                                  # warm
    ratios = []
    for _ in range(3):
        local = measure_update(data, config, activation, warmup=5, timed=10)
        started = time.perf_counter()
        trainer.evaluate(loader)
        evaluation = time.perf_counter() - started
        started = time.perf_counter()
        _monitor(model, probe, x_monitor, config.depth)
        snapshot = time.perf_counter() - started
        ratios.append((evaluation / config.eval_examples / local, snapshot / config.monitor_examples / local))
    return Costs(seconds_per_update, eval_example=sorted(r[0] for r in ratios)[1],
                 monitor_example=sorted(r[1] for r in ratios)[1])
