"""The study's figures (matplotlib, Agg backend), named after the paper's figures they mirror.

Each function takes the results dict (layout in results.py) and the output folder, draws one PNG and
returns its path, or None when the run holds no data for it (e.g. an interrupted study).
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from minidl import init
from minidl.experiments import paper
from minidl.serialization import write_atomically

PAIR = ("standard", "xavier_uniform")


def _plt():
    imported = set(sys.modules)
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except BaseException:
        # an import stopped half-way (Ctrl-C) leaves matplotlib's finished submodules bound to a package that
        # never finished ("module 'matplotlib' has no attribute 'get_data_path'" at the next try, when the
        # interrupted study draws what finished): forget those this try added, so the next imports afresh
        for name in set(sys.modules) - imported:
            if name.split(".")[0] == "matplotlib":
                del sys.modules[name]
        raise
    return plt


def _layer_colors(count):
    plt = _plt()
    cmap = plt.get_cmap("viridis")
    return [cmap(i / max(1, count - 1) * 0.9) for i in range(count)]


def _integer_locator():
    from matplotlib.ticker import MaxNLocator

    return MaxNLocator(integer=True)


def _few_log_ticks(ax) -> None:
    """At most 6 labelled decades and no minor labels on a log y axis spanning two decades or more: a log
    axis spanning dozens of decades otherwise labels every tick, and laying out those labels took seconds
    per figure. A narrower axis keeps Matplotlib's minor labels: without them 0.12-0.88 showed no number."""
    from matplotlib.ticker import LogLocator, NullFormatter

    ax.yaxis.set_major_locator(LogLocator(numticks=6))
    low, high = ax.get_ylim()
    if low > 0 and high / low >= 100:
        ax.yaxis.set_minor_formatter(NullFormatter())


def _save(fig, folder: Path, name: str) -> Path:
    path = Path(folder) / name
    fig.tight_layout()
    write_atomically(path, lambda file: fig.savefig(file, format="png", dpi=90))
    _plt().close(fig)
    return path


def _runs(results, activation, scheme):
    runs = (results.get("training") or {}).get("runs") or []
    return [r for r in runs if r["activation"] == activation and r["scheme"] == scheme]


def _at_init(results, activation, scheme, depth=None):
    records = [r for r in results.get("at_init") or [] if r["activation"] == activation and r["scheme"] == scheme]
    if depth is not None:
        records = [r for r in records if r["depth"] == depth]
    return records


def _at_init_depth(results, pick=min):
    depths = sorted({r["depth"] for r in results.get("at_init") or []})
    return pick(depths) if depths else None


def fig2_sigmoid_mean_std(results, folder):
    """Paper Fig. 2: mean (line) and std (band) of each sigmoid hidden layer's activations over training."""
    plt = _plt()
    panels = [(s, _runs(results, "sigmoid", s)) for s in PAIR]
    panels = [(s, runs[0]) for s, runs in panels if runs and runs[0].get("monitor")]
    if not panels:
        return None
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4), squeeze=False)
    for ax, (scheme, run) in zip(axes[0], panels):
        updates = np.array(run["monitor"]["updates"])
        layers = run["monitor"]["layers"]
        for i, (layer, color) in enumerate(zip(layers, _layer_colors(len(layers)))):
            mean, std = np.array(layer["mean"], float), np.array(layer["std"], float)
            ax.plot(updates, mean, color=color, label=f"layer {i + 1}")
            ax.fill_between(updates, mean - std, mean + std, color=color, alpha=0.12)
        ax.set(title=f"sigmoid, {init.get(scheme).label} (seed {run['seed']}, lr {run['lr']:g})",
               xlabel="updates", ylabel="activation mean ± std", ylim=(-0.05, 1.05))
        ax.legend(fontsize=8)
    return _save(fig, folder, "fig2_sigmoid_activation_mean_std.png")


def fig3_percentiles(results, folder):
    """Paper Fig. 3: 2nd/98th percentiles (markers) and std (line) of tanh and softsign activations."""
    plt = _plt()
    cells = [(a, s, _runs(results, a, s)) for a in ("tanh", "softsign") for s in PAIR]
    cells = [(a, s, runs[0]) for a, s, runs in cells if runs and runs[0].get("monitor")]
    if not cells:
        return None
    cols = 2
    rows = (len(cells) + 1) // 2
    fig, axes = plt.subplots(rows, cols, figsize=(12, 3.8 * rows), squeeze=False)
    for ax, (activation, scheme, run) in zip(axes.ravel(), cells):
        updates = np.array(run["monitor"]["updates"])
        layers = run["monitor"]["layers"]
        for i, (layer, color) in enumerate(zip(layers, _layer_colors(len(layers)))):
            ax.plot(updates, layer["p98"], linestyle="none", marker="^", markersize=3, color=color)
            ax.plot(updates, layer["p2"], linestyle="none", marker="v", markersize=3, color=color)
            ax.plot(updates, layer["std"], color=color, label=f"layer {i + 1}")
        ax.set(title=f"{activation}, {init.get(scheme).label}: p98/p2 (markers), std (line)", xlabel="updates",
               ylim=(-1.05, 1.05))
        ax.legend(fontsize=7, ncol=2)
    for ax in axes.ravel()[len(cells):]:
        ax.axis("off")
    return _save(fig, folder, "fig3_tanh_softsign_percentiles.png")


def fig4_final_histograms(results, folder):
    """Paper Fig. 4: histograms of the monitored activations at the end of training."""
    plt = _plt()
    cells = [(a, s, _runs(results, a, s)) for a in ("sigmoid", "tanh", "softsign") for s in PAIR]
    cells = [(a, s, runs[0]) for a, s, runs in cells if runs and runs[0].get("final_histograms")]
    if not cells:
        return None
    rows = (len(cells) + 1) // 2
    fig, axes = plt.subplots(rows, 2, figsize=(12, 3.5 * rows), squeeze=False)
    for ax, (activation, scheme, run) in zip(axes.ravel(), cells):
        hists = run["final_histograms"]
        for i, (h, color) in enumerate(zip(hists, _layer_colors(len(hists)))):
            edges = np.array(h["edges"])
            ax.plot(0.5 * (edges[1:] + edges[:-1]), h["density"], color=color, label=f"layer {i + 1}")
        ax.set(title=f"{activation}, {init.get(scheme).label}: after {run['updates_done']} updates",
               xlabel="activation value", ylabel="density")
        ax.legend(fontsize=7)
    for ax in axes.ravel()[len(cells):]:
        ax.axis("off")
    return _save(fig, folder, "fig4_final_activation_histograms.png")


def _init_histograms(results, folder, quantity, filename, xlabel, title):
    plt = _plt()
    depth = _at_init_depth(results)
    activation = "tanh" if _at_init(results, "tanh", PAIR[0]) else \
        next((r["activation"] for r in results.get("at_init") or []), None)
    if activation is None:
        return None
    cells = [(s, _at_init(results, activation, s, depth)) for s in PAIR]
    cells = [(s, r[0]) for s, r in cells if r and r[0].get("histograms")]
    if not cells:
        return None
    fig, axes = plt.subplots(1, len(cells), figsize=(6 * len(cells), 3.8), squeeze=False, sharey=False)
    for ax, (scheme, record) in zip(axes[0], cells):
        hists = record["histograms"][quantity]
        for i, (h, color) in enumerate(zip(hists, _layer_colors(len(hists)))):
            edges = np.array(h["edges"])
            ax.plot(0.5 * (edges[1:] + edges[:-1]), h["density"], color=color, label=f"layer {i + 1}")
        ax.set(title=f"{title}\n{activation}, {init.get(scheme).label}", xlabel=xlabel, ylabel="density")
        ax.ticklabel_format(axis="x", style="sci", scilimits=(-3, 3))
        ax.legend(fontsize=7)
    return _save(fig, folder, filename)


def fig6_activation_histograms(results, folder):
    return _init_histograms(results, folder, "activation", "fig6_activation_histograms_init.png",
                            "activation value", "Activations at init")


def fig7_backprop_histograms(results, folder):
    return _init_histograms(results, folder, "backprop_gradient", "fig7_backprop_gradient_histograms_init.png",
                            "dC/ds", "Back-propagated gradients at init")


def fig8_weight_gradient_histograms(results, folder):
    return _init_histograms(results, folder, "weight_gradient", "fig8_weight_gradient_histograms_init.png",
                            "dC/dW", "Weight gradients at init")


def fig11_12_learning_curves(results, folder):
    """Paper Figs. 11-12: test error and train loss against updates, mean over seeds with min-max band."""
    plt = _plt()
    runs = (results.get("training") or {}).get("runs") or []
    activations = list(dict.fromkeys(r["activation"] for r in runs))
    if not activations:
        return None
    fig, axes = plt.subplots(2, len(activations), figsize=(5 * len(activations), 7), squeeze=False)
    for col, activation in enumerate(activations):
        schemes = list(dict.fromkeys(r["scheme"] for r in runs if r["activation"] == activation))
        for scheme, style in zip(schemes, ("-", "--", ":", "-.")):
            group = [r for r in runs if r["activation"] == activation and r["scheme"] == scheme]
            for row, key in enumerate(("test_error", "train_loss")):
                length = min(len(r["curve"]["updates"]) for r in group)
                updates = np.array(group[0]["curve"]["updates"][:length])
                values = np.array([[np.nan if v is None else v for v in r["curve"][key][:length]] for r in group],
                                  dtype=float) * (100 if key == "test_error" else 1)    # error in %, as the report
                keep = ~np.all(np.isnan(values), axis=0)      # e.g. no train loss before update 1
                if not keep.any():
                    continue
                updates, values = updates[keep], values[:, keep]
                mean = np.nanmean(values, axis=0)
                seeds = f"{len(group)} seed" + "s" * (len(group) > 1)
                line, = axes[row][col].plot(updates, mean, style,
                                            label=f"{init.get(scheme).label} (lr {group[0]['lr']:g}, {seeds})")
                if len(group) > 1:
                    axes[row][col].fill_between(updates, np.nanmin(values, axis=0), np.nanmax(values, axis=0),
                                                color=line.get_color(), alpha=0.15)
        axes[0][col].set(title=f"{activation}: test error", xlabel="updates", ylabel="test error (%)")
        axes[1][col].set(title=f"{activation}: train loss", xlabel="updates", ylabel="NLL")
        axes[0][col].legend(fontsize=7)
    return _save(fig, folder, "fig11_12_learning_curves.png")


def variance_propagation(results, folder):
    """Measured per-layer variances beside the derivation's linear-regime predictions (log scale; each axis
    spans the measured values and a decade either side: a prediction beyond runs off it)."""
    plt = _plt()
    depth = _at_init_depth(results, pick=max)
    records = [r for r in results.get("at_init") or [] if r["depth"] == depth]
    activations = list(dict.fromkeys(r["activation"] for r in records))
    if not activations:
        return None
    fig, axes = plt.subplots(2, len(activations), figsize=(4.5 * len(activations), 7), squeeze=False)
    for col, activation in enumerate(activations):
        shown = ([], [])         # the measured variances of each row: its axis spans them (and a decade more)
        for k, record in enumerate(r for r in records if r["activation"] == activation):
            color = f"C{k}"
            layers = np.arange(1, depth + 1)
            for row, (measured_key, predicted_key) in enumerate(
                    (("activation", "activation_var"), ("backprop_gradient", "backprop_gradient_var"))):
                # float arrays: a NaN statistic, null in results.json, is a gap in the line, not a TypeError
                measured = np.array([L[measured_key]["std"] for L in record["layers"]], dtype=float) ** 2
                predicted = np.array([L["predicted"][predicted_key] for L in record["layers"]], dtype=float)
                axes[row][col].semilogy(layers, measured, "o-", color=color, label=init.get(record["scheme"]).label)
                axes[row][col].semilogy(layers, predicted, "--", color=color)
                shown[row].extend(measured[np.isfinite(measured) & (measured > 0)])
        for ax, measured in zip(axes[:, col], shown):
            if measured:     # a prediction far past every measurement (N(0, 1²) reached 1e24) squeezed the rest
                ax.set_ylim(min(measured) / 10, max(measured) * 10)
            ax.xaxis.set_major_locator(_integer_locator())
            _few_log_ticks(ax)
        axes[0][col].set(title=f"{activation}: Var(z) (o measured, -- predicted)", xlabel="layer", ylabel="Var(z)")
        axes[1][col].set(title=f"{activation}: Var(dC/ds) (o measured, -- predicted)", xlabel="layer",
                         ylabel="Var(dC/ds)")
        axes[0][col].legend(fontsize=6)
    return _save(fig, folder, "variance_propagation.png")


def jacobian_singular_values(results, folder):
    """Mean singular value of each layer's Jacobian at init, per scheme (paper Eq. 17: 0.5 vs 0.8)."""
    plt = _plt()
    records = [r for r in results.get("at_init") or []
               if all(L["jacobian_mean_singular_value"] is not None for L in r["layers"][1:])]
    if not records:
        return None
    depth = min(r["depth"] for r in records)
    records = [r for r in records if r["depth"] == depth]
    activations = list(dict.fromkeys(r["activation"] for r in records))
    fig, axes = plt.subplots(1, len(activations), figsize=(4.5 * len(activations), 3.8), squeeze=False)
    for ax, activation in zip(axes[0], activations):
        for k, record in enumerate(r for r in records if r["activation"] == activation):
            values = [L["jacobian_mean_singular_value"] for L in record["layers"][1:]]
            ax.plot(range(2, depth + 1), values, "o-", color=f"C{k}", label=init.get(record["scheme"]).label)
        if activation == "tanh":        # the paper's values are tanh's (Sec. 4.2.1)
            for scheme, level in paper.JACOBIAN_MEAN_SINGULAR_VALUE.items():
                ax.axhline(level, color="grey", linestyle=":", linewidth=1,
                           label=f"paper, {init.get(scheme).label}: {level}")
        ax.set(title=f"{activation}, {depth} layers", xlabel="layer i",
               ylabel="mean singular value of dz^i/dz^(i-1)", yscale="log")
        ax.xaxis.set_major_locator(_integer_locator())
        _few_log_ticks(ax)
        ax.legend(fontsize=6)
    return _save(fig, folder, "jacobian_singular_values.png")


def relu_he_vs_xavier(results, folder):
    """ReLU under Xavier vs He: activation std per layer at init (o) beside the predictions ×√(1/2) and ×1
    per layer from layer 1 (--), and the deep narrow net's learning curves."""
    from minidl.experiments.extensions import HE_RATIO

    ext = results.get("extensions") or {}
    records, deep = ext.get("relu_init") or [], ext.get("deep_relu")
    if not records:
        return None
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2), squeeze=False)
    ax = axes[0][0]
    depths = list(dict.fromkeys(r["depth"] for r in records))
    for k, scheme in enumerate(HE_RATIO):
        for depth, alpha in zip(depths, np.linspace(0.35, 1.0, len(depths))):
            record = next((r for r in records if (r["scheme"], r["depth"]) == (scheme, depth)), None)
            if record is None:
                continue
            layers = np.arange(1, depth + 1)
            std = np.array(record["activation_std"], float)
            ax.semilogy(layers, std, "o", markersize=3, color=f"C{k}", alpha=alpha)
            ax.semilogy(layers, std[0] * HE_RATIO[scheme] ** (layers - 1.0), "--", color=f"C{k}", alpha=alpha,
                        label=f"{init.get(scheme).label} (prediction ×{HE_RATIO[scheme]:.2f}/layer)"
                        if depth == depths[-1] else None)
    ax.set(title=f"ReLU at init, depths {depths}: activation std per layer", xlabel="layer")
    _few_log_ticks(ax)
    ax.legend(fontsize=7)
    ax = axes[0][1]
    if deep and deep.get("runs"):
        for k, scheme in enumerate(HE_RATIO):
            for run in (r for r in deep["runs"] if r["scheme"] == scheme):
                ax.plot(run["curve"]["updates"], run["curve"]["test_error"], color=f"C{k}",
                        label=f"{init.get(scheme).label} (seed {run['seed']})")
        ax.set(title=f"{deep['depth']}×{deep['width']} ReLU net, SGD lr {deep['lr']:g}", xlabel="updates",
               ylabel="test error", ylim=(0, 1))
        ax.legend(fontsize=7)
    else:
        ax.axis("off")
    return _save(fig, folder, "ext_relu_he_vs_xavier.png")


def depth_sweep(results, folder):
    """Test error at the budget and the at-init gradient ratio (top over layer 1) against depth, one panel
    per activation, one line per scheme."""
    sweep = (results.get("extensions") or {}).get("depth_sweep") or []
    if not sweep:
        return None
    plt = _plt()
    activations = list(dict.fromkeys(r["activation"] for r in sweep))
    fig, axes = plt.subplots(2, len(activations), figsize=(4 * len(activations), 7), squeeze=False)
    for col, activation in enumerate(activations):
        for k, scheme in enumerate(dict.fromkeys(r["scheme"] for r in sweep)):
            points = sorted((r for r in sweep if (r["activation"], r["scheme"]) == (activation, scheme)),
                            key=lambda r: r["depth"])
            if not points:
                continue
            depths = [r["depth"] for r in points]
            errors = [np.nan if r["test_error"] is None else r["test_error"] for r in points]
            ratios = [np.nan if r["gradient_ratio"] is None else r["gradient_ratio"] for r in points]
            axes[0][col].plot(depths, errors, "o-", color=f"C{k}", label=init.get(scheme).label)
            axes[1][col].semilogy(depths, ratios, "o-", color=f"C{k}", label=init.get(scheme).label)
        axes[0][col].set(title=f"{activation}: test error after {sweep[0]['updates']} updates", xlabel="depth",
                         ylim=(0, 1))
        axes[1][col].set(title=f"{activation}: at-init dC/ds std, top / layer 1", xlabel="depth")
        axes[1][col].axhline(1.0, color="grey", linestyle=":", linewidth=1)
        for ax in axes[:, col]:
            ax.xaxis.set_major_locator(_integer_locator())
        _few_log_ticks(axes[1][col])
        axes[0][col].legend(fontsize=6)
    return _save(fig, folder, "ext_depth_sweep.png")


def batchnorm_cure(results, folder):
    """Fig. 2's statistics (top hidden layer's mean ± std; lower layers faint) and the test error of the
    standard-init sigmoid net without and with batch norm before each activation."""
    runs = ((results.get("extensions") or {}).get("batchnorm") or {}).get("runs") or []
    if not runs:
        return None
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2), squeeze=False)
    for k, flag in enumerate((False, True)):
        run = next((r for r in runs if r["batchnorm"] is flag), None)
        if run is None:
            continue
        name = "with batch norm" if flag else "plain"
        updates = np.array(run["monitor"]["updates"])
        layers = run["monitor"]["layers"]
        for i, layer in enumerate(layers):
            mean, std = np.array(layer["mean"], float), np.array(layer["std"], float)
            top = i == len(layers) - 1
            axes[0][0].plot(updates, mean, color=f"C{k}", alpha=1.0 if top else 0.25,
                            label=f"{name}: top layer" if top else None)
            if top:
                axes[0][0].fill_between(updates, mean - std, mean + std, color=f"C{k}", alpha=0.12)
        axes[0][1].plot(run["curve"]["updates"], run["curve"]["test_error"], color=f"C{k}",
                        label=f"{name} (seed {run['seed']}, lr {run['lr']:g})")
    axes[0][0].set(title="sigmoid, standard init: activation mean ± std (top layer; others faint)",
                   xlabel="updates", ylim=(-0.05, 1.05))
    axes[0][1].set(title="test error", xlabel="updates", ylim=(0, 1))
    for ax in axes[0]:
        ax.legend(fontsize=7)
    return _save(fig, folder, "ext_batchnorm_sigmoid.png")


ALL_FIGURES = (fig2_sigmoid_mean_std, fig3_percentiles, fig4_final_histograms, fig6_activation_histograms,
               fig7_backprop_histograms, fig8_weight_gradient_histograms, fig11_12_learning_curves,
               variance_propagation, jacobian_singular_values, relu_he_vs_xavier, depth_sweep, batchnorm_cure)


def draw_all(results, folder) -> dict:
    """Draw every figure the results support; returns {function name: path}."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for function in ALL_FIGURES:
        path = function(results, folder)
        if path is not None:
            paths[function.__name__] = path
    return paths
