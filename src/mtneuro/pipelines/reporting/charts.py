"""Bar charts of the three tables: ours (mean ± std over seeds) as bars, the paper's values as
diamonds, and a "no run" mark wherever ours is missing, so that a missing bar is never read as zero;
and Task 1's confusion matrices and training curves, small multiples, one panel per method."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from mtneuro import spec

from .formatting import first_value, is_missing
from .labels import PAPER_LABEL, SEG_METRIC_SHORT_LABELS, model_label, ours_label, short_method_label
from .tables import TABLE1_TRAIN_CONFIG

_BAR_COLOURS = ("#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860", "#DA8BC3")


def _grouped_bars(ax, groups: list[str], series: list[tuple[str, list[float], list[float], list[float]]]) -> None:
    """Bars per group and series (ours mean/std), the paper's values as black diamonds, and a
    "no run" mark wherever ours is missing, so that a missing bar is never read as zero.  The
    legend goes to the right of the axes."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    x = np.arange(len(groups))
    width = 0.8 / max(len(series), 1)
    handles: list[Any] = []
    low, high = 0.0, 1.05
    any_paper = False
    for i, (label, means, stds, paper_means) in enumerate(series):
        colour = _BAR_COLOURS[i % len(_BAR_COLOURS)]
        pos = x - 0.4 + width * (i + 0.5)
        means_arr = np.asarray(means, dtype=float)
        stds_arr = np.nan_to_num(np.asarray(stds, dtype=float))
        ok = np.isfinite(means_arr)
        if ok.any():
            ax.bar(pos[ok], means_arr[ok], width, yerr=stds_arr[ok], capsize=2, color=colour)
            low = min(low, float(np.min(means_arr[ok] - stds_arr[ok])) - 0.05)
            high = max(high, float(np.max(means_arr[ok] + stds_arr[ok])) + 0.02)
        for p in pos[~ok]:
            ax.text(p, 0.01, "no run", rotation=90, ha="center", va="bottom", fontsize=6, color="0.4")
        paper_arr = np.asarray(paper_means, dtype=float)
        has_paper = np.isfinite(paper_arr)
        if has_paper.any():
            ax.scatter(pos[has_paper], paper_arr[has_paper], marker="D", s=14, color="black", zorder=3)
            any_paper = True
        handles.append(Patch(facecolor=colour, label=label))
    if any_paper:
        handles.append(Line2D([], [], marker="D", color="black", linestyle="none", markersize=4, label=PAPER_LABEL))
    ax.axhline(0, color="0.3", linewidth=0.6)
    ax.set_xticks(x, groups, rotation=30, ha="right", fontsize=8)
    ax.set_ylim(low, high)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.005, 1.0), borderaxespad=0)


def _cell(table: pd.DataFrame, **where: Any) -> pd.Series | None:
    mask = np.ones(len(table), dtype=bool)
    for column, value in where.items():
        mask &= (table[column] == value).to_numpy()
    part = table[mask]
    return None if part.empty else part.iloc[0]


def _label(table: pd.DataFrame, column: str, **where: Any) -> str:
    """The label column of the first row matching ``where`` (a value taken from the table itself)."""
    row = _cell(table, **where)
    if row is None:
        raise ValueError(f"No row of the table has {where}")
    return str(row[column])


def _get(row: pd.Series | None, column: str) -> float:
    return float("nan") if row is None or is_missing(row[column]) else float(row[column])


def _chart_title(table: pd.DataFrame, what: str) -> str:
    return (
        f"{what} — {ours_label(first_value(table, 'source', 'unknown'))}, "
        f"profile {first_value(table, 'profile', 'unspecified')}; ◆ {PAPER_LABEL}"
    )


def task1_chart(table: pd.DataFrame) -> Figure:
    """Accuracy per method, one bar per configuration, with the paper's values."""
    fig = Figure(figsize=(9, 4), layout="constrained")
    ax = fig.add_subplot()
    methods = list(dict.fromkeys(table["method"]))
    labels = [short_method_label(m) for m in methods]
    series = []
    for config in dict.fromkeys(table["config"]):
        rows = [_cell(table, method=m, config=config) for m in methods]
        series.append(
            (
                config,
                [_get(r, "ours_mean") for r in rows],
                [_get(r, "ours_spread" if "ours_spread" in table.columns else "ours_std") for r in rows],
                [_get(r, "paper_mean") for r in rows],
            )
        )
    _grouped_bars(ax, labels, series)
    ax.set_ylabel(first_value(table, "metric", "accuracy").replace("_", " "))
    fig.suptitle(_chart_title(table, "Task 1"), fontsize=9)
    return fig


def task2_chart(table: pd.DataFrame) -> Figure:
    """Mean F1 and IoU over classes per model, one bar per setting, with the paper's values."""
    fig = Figure(figsize=(9, 6), layout="constrained")
    means = table[table["class"] == "mean"]
    models = list(dict.fromkeys(zip(means["dims"], means["model"], strict=True)))
    labels = [f"{_label(means, 'model_label', dims=d, model=m)} ({d})" for d, m in models]
    settings = list(dict.fromkeys(means["setting"]))
    # The paper's values sit beside the matching definitions: F1 pooled, IoU per sample (authors').
    chart_metrics = ("f1", "iou_authors")
    for k, metric in enumerate(chart_metrics):
        ax = fig.add_subplot(len(chart_metrics), 1, k + 1)
        series = []
        for setting in settings:
            rows = [_cell(means, dims=d, model=m, setting=setting, metric=metric) for d, m in models]
            series.append(
                (
                    setting,
                    [_get(r, "ours_mean") for r in rows],
                    [_get(r, "ours_spread" if "ours_spread" in table.columns else "ours_std") for r in rows],
                    [_get(r, "paper_mean") for r in rows],
                )
            )
        _grouped_bars(ax, labels, series)
        ax.set_ylabel(f"mean {SEG_METRIC_SHORT_LABELS[metric]}")
    fig.suptitle(_chart_title(table, "Task 2 (mean over classes)"), fontsize=9)
    return fig


def task3_chart(table: pd.DataFrame) -> Figure:
    """In-sample R^2 per feature, one bar per method, one panel per encoder training set."""
    fig = Figure(figsize=(10, 6.5), layout="constrained")
    part = table[table["r2"] == "in_sample"]
    configs = list(dict.fromkeys(part["train_config"]))
    features = list(dict.fromkeys(part["feature"]))
    feature_labels = [_label(part, "feature_label", feature=f) for f in features]
    methods = list(dict.fromkeys(part["method"]))
    for k, config in enumerate(configs):
        ax = fig.add_subplot(max(len(configs), 1), 1, k + 1)
        series = []
        for method in methods:
            rows = [_cell(part, train_config=config, method=method, feature=f) for f in features]
            label = short_method_label(method)
            series.append(
                (
                    label,
                    [_get(r, "ours_mean") for r in rows],
                    [_get(r, "ours_spread" if "ours_spread" in table.columns else "ours_std") for r in rows],
                    [_get(r, "paper_mean") for r in rows],
                )
            )
        _grouped_bars(ax, feature_labels, series)
        ax.set_ylabel(f"in-sample R² ({config} encoders)")
    fig.suptitle(_chart_title(table, "Task 3 (in-sample R²)"), fontsize=9)
    return fig


# --- Task 1: confusion matrices and training curves ------------------------------------------------


def _no_data(fig: Figure, what: str, task: int = 1) -> Figure:
    fig.text(0.5, 0.5, f"no {what} (no Task {task} run)", ha="center", va="center", color="0.4")
    return fig


def _methods(frame: pd.DataFrame) -> list[str]:
    """The methods of a table in the registry's order, then any other."""
    from mtneuro.classification_methods import method_names

    seen = list(dict.fromkeys(frame["method"]))
    return [m for m in method_names() if m in seen] + [m for m in seen if m not in method_names()]


def confusion_matrices_figure(matrices: pd.DataFrame, columns: int, profile: str) -> Figure:
    """A panel per (method, test configuration): the test set's confusion matrix summed over
    seeds, each row (true region) as shares of that row (%), the accuracy in the title. Only the
    training set the paper pairs with each test configuration (:data:`~.tables.TABLE1_TRAIN_CONFIG`);
    methods run ``columns`` to a row, each with a row of panels per test configuration. Laid out
    by hand (a fixed grid; constrained layout costs seconds for this many panels)."""
    if matrices.empty:
        return _no_data(Figure(figsize=(6, 1)), "confusion matrices")
    frame = matrices
    if "train_config" in frame.columns:
        expected = frame["config"].map(TABLE1_TRAIN_CONFIG)
        frame = frame[(expected.isna() | (frame["train_config"] == expected)).to_numpy()]
    regions = [r for r in spec.REGIONS if f"pred_{r}" in frame.columns]
    methods = _methods(frame)
    configs = list(dict.fromkeys(frame["config"]))
    n_cols = min(columns, len(methods))
    groups = -(-len(methods) // n_cols)
    n_rows = groups * len(configs)
    panel, head, foot = 1.45, 0.55, 0.35
    fig = Figure(figsize=(panel * n_cols + 1.2, panel * n_rows + head + foot))
    height = fig.get_figheight()
    fig.subplots_adjust(
        left=0.5 / fig.get_figwidth(),
        right=1 - 0.9 / fig.get_figwidth(),
        top=1 - head / height,
        bottom=foot / height,
        wspace=0.35,
        hspace=0.55,
    )
    axes = fig.subplots(n_rows, n_cols, squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    image = None
    ticks = range(len(regions))
    for m, method in enumerate(methods):
        for c, config in enumerate(configs):
            ax = axes[(m // n_cols) * len(configs) + c, m % n_cols]
            part = frame[(frame["method"] == method) & (frame["config"] == config)]
            if part.empty:
                continue
            counts = (
                part.groupby("true_region")[[f"pred_{r}" for r in regions]].sum().reindex(regions).fillna(0).to_numpy()
            )
            totals = counts.sum(axis=1, keepdims=True)
            shares = np.divide(counts, totals, out=np.zeros_like(counts, dtype=float), where=totals > 0)
            accuracy = np.trace(counts) / counts.sum() if counts.sum() else float("nan")
            ax.set_axis_on()
            image = ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
            for (i, j), share in np.ndenumerate(shares):
                colour = "white" if share > 0.6 else "black"
                ax.text(j, i, f"{100 * share:.0f}", ha="center", va="center", fontsize=6, color=colour)
            ax.set_xticks(ticks, regions if c == len(configs) - 1 else [], fontsize=6)
            ax.set_yticks(ticks, regions if m % n_cols == 0 else [], fontsize=6)
            ax.tick_params(length=0, pad=1)
            title = f"{config}: acc {accuracy:.2f}"
            ax.set_title(f"{short_method_label(method)}\n{title}" if c == 0 else title, fontsize=7)
    if image is not None:
        bar = fig.add_axes((1 - 0.65 / fig.get_figwidth(), 0.25, 0.12 / fig.get_figwidth(), 0.5))
        fig.colorbar(image, cax=bar)
        bar.tick_params(labelsize=6)
        bar.set_ylabel("share of the true region's test images (rows: true, columns: predicted)", fontsize=6)
    source = first_value(frame, "source", "unknown")
    fig.suptitle(f"Task 1 confusion matrices — {ours_label(source)}, profile {profile}", fontsize=9)
    return fig


#: Colours of the training sets and line styles of the seeds in the training curves.
_CONFIG_COLOURS = ("#4C72B0", "#DD8452", "#55A868", "#C44E52")
_SEED_STYLES: tuple[Literal["-", "--", ":", "-."], ...] = ("-", "--", ":", "-.")


#: Per task, the panel title of a method (Task 2: a model) and the legend entry of a training
#: set (Task 2: a label setting) in its training curves.
_CURVE_LABELS: dict[int, tuple[Any, str]] = {
    1: (short_method_label, "trained on {}"),
    2: (model_label, "{} labels"),
}

#: x-axis label and loss label of each ``step_kind`` of a training-history table.
_STEP_AXES: dict[str, tuple[str, str]] = {
    "epoch": ("epoch", "training loss"),
    "components": ("components", "reconstruction error"),
    "iterations": ("solver iterations", "reconstruction error"),
}


def training_curves_figure(histories: pd.DataFrame, columns: int, profile: str, task: int = 1) -> Figure:
    """Task ``task``'s training curves (``task1_training_histories``, ``task2_training_histories``:
    the same columns). Per method (Task 2: model) a loss panel above a learning-rate panel, a line
    per (training set -- Task 2: label setting --, seed): colour the training set, line style the seed. PCA and NMF (``step_kind`` components,
    iterations): the reconstruction error, no learning rate. A method without any run of two
    or more steps (nothing trained: the controls) is named below the panels, not drawn.
    Methods run ``columns`` to a row."""
    if histories.empty or "loss" not in histories.columns:
        return _no_data(Figure(figsize=(6, 1)), "training curves", task)
    panel_label, config_legend = _CURVE_LABELS.get(task, (str, "{}"))
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator

    frame = histories.copy()
    for column, default in (("lr", np.nan), ("step_kind", "epoch")):
        if column not in frame.columns:
            frame[column] = default
    steps = frame.groupby(["method", "train_config", "seed"])["step"].transform("size")
    untrained = [m for m in _methods(frame) if m not in set(frame.loc[steps > 1, "method"])]
    frame = frame[(steps > 1).to_numpy()]
    if frame.empty:
        return _no_data(Figure(figsize=(6, 1)), "training curves", task)
    methods = _methods(frame)
    configs = list(dict.fromkeys(frame["train_config"]))
    seeds = sorted(dict.fromkeys(frame["seed"]))
    colour = {c: _CONFIG_COLOURS[i % len(_CONFIG_COLOURS)] for i, c in enumerate(configs)}
    style = {s: _SEED_STYLES[i % len(_SEED_STYLES)] for i, s in enumerate(seeds)}
    n_cols = min(columns, len(methods))
    groups = -(-len(methods) // n_cols)
    fig = Figure(figsize=(3.0 * n_cols, 3.4 * groups + 0.7), layout="constrained")
    axes = fig.subplots(2 * groups, n_cols, squeeze=False, gridspec_kw={"height_ratios": [1.6, 1] * groups})
    for ax in axes.flat:
        ax.set_axis_off()
    for m, method in enumerate(methods):
        loss_ax, lr_ax = axes[2 * (m // n_cols), m % n_cols], axes[2 * (m // n_cols) + 1, m % n_cols]
        part = frame[frame["method"] == method]
        kind = str(part["step_kind"].iloc[0])
        x_label, loss_label = _STEP_AXES.get(kind, (kind, "loss"))
        loss_ax.set_axis_on()
        lr_ax.set_axis_on()
        has_lr = False
        for (config, seed), run in part.groupby(["train_config", "seed"], sort=False):
            run = run.sort_values("step")
            x = run["step"].to_numpy(dtype=float) + (1 if kind == "epoch" else 0)  # epochs count from 1
            line = {"color": colour[config], "linestyle": style[seed], "linewidth": 1.2}
            if len(run) < 6:
                line["marker"] = "."
            loss_ax.plot(x, run["loss"].to_numpy(dtype=float), **line)
            lr = run["lr"].to_numpy(dtype=float)
            if np.isfinite(lr).any():
                has_lr = True
                lr_ax.plot(x, lr, **line)
        loss_ax.set_title(panel_label(method), fontsize=9)
        loss_ax.set_ylabel(loss_label, fontsize=7)
        if kind == "components":
            loss_ax.set_xscale("log", base=2)
        for ax in (loss_ax, lr_ax):
            ax.tick_params(labelsize=7)
            ax.grid(alpha=0.3)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=6))
        if kind == "components":
            loss_ax.xaxis.set_major_locator(_log2_locator())
        if has_lr:
            lr_ax.sharex(loss_ax)
            lr_ax.set_xlabel(x_label, fontsize=7)
            lr_ax.set_ylabel("learning rate", fontsize=7)
            lr_ax.ticklabel_format(axis="y", style="sci", scilimits=(-2, 3))
            lr_ax.yaxis.get_offset_text().set_fontsize(6)
        else:
            loss_ax.set_xlabel(x_label, fontsize=7)
            lr_ax.set_xticks([])
            lr_ax.set_yticks([])
            lr_ax.grid(False)
            lr_ax.text(
                0.5, 0.5, "no learning rate\n(fitted, not trained)", ha="center", va="center", fontsize=7, color="0.4"
            )
    handles = [Line2D([], [], color=colour[c], label=config_legend.format(c)) for c in configs]
    handles += [Line2D([], [], color="0.3", linestyle=style[s], label=f"seed {s}") for s in seeds]
    fig.legend(handles=handles, loc="outside lower center", ncol=len(handles), fontsize=8, frameon=False)
    source = first_value(frame, "source", "unknown")
    title = f"Task {task} training curves — {ours_label(source)}, profile {profile}"
    if untrained:
        title += f"\nno curve (nothing trained): {', '.join(panel_label(m) for m in untrained)}"
    fig.suptitle(title, fontsize=9)
    return fig


def _log2_locator() -> Any:
    """Ticks at the powers of two (numbers of components)."""
    from matplotlib.ticker import LogLocator

    return LogLocator(base=2)
