"""The training study in the paper's setting (Glorot & Bengio 2010, Secs. 3 and 4.3; Figs. 2-4, 11-12).

Softmax output + negative log-likelihood, plain SGD on minibatches, zero biases, `depth` hidden layers of
`width` units. During training the activations of a fixed set of `monitor_examples` test images are
recorded per layer (mean, std, 2nd/50th/98th percentiles: Figs. 2-3); learning curves (train loss, test
error against updates: Figs. 11-12); activation histograms at the end (Fig. 4).
"""
from __future__ import annotations

import time

import numpy as np

from minidl.diagnostics import histogram, summarize
from minidl.experiments.networks import build_network

EVAL_CHUNK = 1000
ACTIVATION_RANGES = {"sigmoid": (0.0, 1.0), "tanh": (-1.0, 1.0), "softsign": (-1.0, 1.0), "relu": (0.0, 5.0)}


def error_rate(model, x, y) -> float:
    """Fraction of misclassified rows of `x`, evaluated without a graph in chunks of EVAL_CHUNK."""
    import minidl as mdl

    wrong = 0
    with mdl.no_grad():
        for start in range(0, x.shape[0], EVAL_CHUNK):
            logits = model(mdl.tensor(x[start:start + EVAL_CHUNK])).data
            wrong += int(np.sum(np.argmax(logits, axis=1) != y[start:start + EVAL_CHUNK]))
    return wrong / max(1, x.shape[0])


def _monitor(model, probe, x, depth):
    """Per hidden layer activation summaries on the monitored examples; also returns the raw activations."""
    import minidl as mdl

    with mdl.no_grad(), probe:
        model(mdl.tensor(x))
    return [summarize(probe.activations[i]) for i in range(depth)], [probe.activations[i] for i in range(depth)]


def train_run(data, config, activation: str, scheme: str, seed: int, lr: float, updates: int,
              monitor: bool = True, on_updates=None) -> dict:
    """Train one net with the shared loop (minidl.training.Trainer); returns its JSON-ready record
    (layout in results.py).

    Callbacks of the loop record the monitored activations every `monitor_every` updates and a
    learning-curve point every `eval_every` updates. `on_updates(k)` is told of every 10 updates (for a
    progress bar). A non-finite loss stops the run (TrainingDiverged), recorded as diverged at that update.
    """
    from minidl import optim
    from minidl.data.loader import DataLoader
    from minidl.training import Every, Trainer, TrainingDiverged

    depth = config.depth
    model, probe = build_network(data.n_inputs, depth, config.width, data.n_classes, activation, scheme, seed)
    optimizer = optim.SGD(model.parameters(), lr=lr)
    loader = DataLoader((data.x_train, data.y_train), config.batch_size, shuffle=True, seed=10_000 + seed,
                        drop_last=data.x_train.shape[0] >= config.batch_size)
    x_monitor = data.x_test[:config.monitor_examples]
    x_eval, y_eval = data.x_test[:config.eval_examples], data.y_test[:config.eval_examples]

    curve = {"updates": [], "train_loss": [], "test_error": []}
    series = {"updates": [], "layers": [{"mean": [], "std": [], "p2": [], "p50": [], "p98": []}
                                        for _ in range(depth)]}
    losses = []
    reported = [0]

    def snapshot(trainer):
        summaries, _ = _monitor(model, probe, x_monitor, depth)
        series["updates"].append(trainer.step)
        for layer, summary in zip(series["layers"], summaries):
            for key in layer:
                layer[key].append(summary[key])

    def curve_point(trainer):
        curve["updates"].append(trainer.step)
        curve["train_loss"].append(float(np.mean(losses)) if losses else None)
        curve["test_error"].append(error_rate(model, x_eval, y_eval))
        losses.clear()

    def record_loss(trainer):
        if trainer.step > 0:
            losses.append(trainer.last_loss)

    def progress(trainer):
        if on_updates is not None and trainer.step > reported[0]:
            on_updates(trainer.step - reported[0])
            reported[0] = trainer.step

    callbacks = [Every(1, record_loss), Every(config.eval_every, curve_point), Every(10, progress)]
    if monitor:
        callbacks.append(Every(config.monitor_every, snapshot))
    trainer = Trainer(model, optimizer, loader, callbacks=callbacks, out_dir=None, progress=False, log=None)
    start_time = time.perf_counter()
    diverged_at = None
    try:
        trainer.fit(updates=updates)
    except TrainingDiverged as error:
        diverged_at = error.step
    train_seconds = time.perf_counter() - start_time
    done = trainer.step
    if diverged_at is None and curve["updates"][-1] != done:
        curve_point(trainer)
    if on_updates is not None and updates > reported[0]:
        on_updates(updates - reported[0])        # a diverged run still completes its share of the bar

    record = {
        "activation": activation, "scheme": scheme, "seed": seed, "lr": lr,
        "depth": depth, "width": config.width, "batch_size": config.batch_size,
        "updates_planned": updates, "updates_done": done, "diverged_at": diverged_at,
        "train_seconds": train_seconds, "updates_per_second": done / train_seconds if train_seconds > 0 else None,
        "curve": curve,
    }
    if diverged_at is None:
        record["final_test_error"] = error_rate(model, data.x_test, data.y_test)
        record["final_validation_error"] = error_rate(model, data.x_valid[:2000], data.y_valid[:2000])
    else:
        record["final_test_error"] = None
        record["final_validation_error"] = None
    if monitor:
        if diverged_at is None and series["updates"][-1] != done:
            snapshot(trainer)
        record["monitor"] = series
        _, raw = _monitor(model, probe, x_monitor, depth)
        value_range = ACTIVATION_RANGES.get(activation, (-1.0, 1.0))
        record["final_histograms"] = [histogram(a, value_range, config.bins) for a in raw] \
            if diverged_at is None else None
    return record


def seconds_per_update(data, config, activation: str, warmup: int = 5, timed: int = 15) -> float:
    """Measured wall time of one SGD update of the study's net (`activation`, Xavier init, lr 0)."""
    import minidl as mdl
    from minidl import optim
    from minidl.nn import functional as F

    model, _ = build_network(data.n_inputs, config.depth, config.width, data.n_classes, activation,
                             "xavier_uniform", seed=0)
    optimizer = optim.SGD(model.parameters(), lr=0.0)
    x, y = data.x_train[:config.batch_size], data.y_train[:config.batch_size]
    for i in range(warmup + timed):
        if i == warmup:
            start = time.perf_counter()
        optimizer.zero_grad()
        loss = F.cross_entropy(model(mdl.tensor(x)), y)
        loss.backward()
        optimizer.step()
    return (time.perf_counter() - start) / timed


def search_learning_rate(data, config, activation: str, scheme: str, on_updates=None) -> dict:
    """The paper's choice of learning rate, on a short budget: for each lr of the grid, train
    `lr_search_updates` updates (seed 0) and keep the lr with the lowest validation error (a diverged
    run counts as error 1). Returns {"grid", "validation_error", "chosen"}."""
    errors = []
    for lr in config.lr_search_grid:
        run = train_run(data, config, activation, scheme, seed=0, lr=lr, updates=config.lr_search_updates,
                        monitor=False, on_updates=on_updates)
        errors.append(1.0 if run["final_validation_error"] is None else run["final_validation_error"])
    best = int(np.argmin(errors))
    return {"grid": list(config.lr_search_grid), "validation_error": errors,
            "updates": config.lr_search_updates, "chosen": float(config.lr_search_grid[best])}
