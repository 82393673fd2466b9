"""Bar charts of the three tables: ours (mean ± std over seeds) as bars, the paper's values as
diamonds, and a "no run" mark wherever ours is missing, so that a missing bar is never read as zero."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from .formatting import first_value, is_missing
from .labels import PAPER_LABEL, SEG_METRIC_LABELS, ours_label

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
    labels = [_label(table, "method_label", method=m) for m in methods]
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
        ax.set_ylabel(f"mean {SEG_METRIC_LABELS[metric]}")
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
            label = _label(part, "method_label", method=method)
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
