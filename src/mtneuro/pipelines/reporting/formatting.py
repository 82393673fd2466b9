"""Renderings of the numeric tables: formatted cells, captions, display blocks and Markdown.

Every rendering states the data source and the profile; this project's columns are labelled
``ours (<source>)`` and the paper's ``paper (real data)``, and a missing value is ``—``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from mtneuro import paper_results as paper

from .labels import MISSING, PAPER_LABEL, R2_KINDS, SEG_METRIC_LABELS, SOURCE_DESCRIPTIONS, ours_label


def is_missing(x: Any) -> bool:
    try:
        return x is None or bool(np.isnan(float(x)))
    except (TypeError, ValueError):
        return True


def format_ours(mean: Any, std: Any, n: Any, n_full: int, decimals: int) -> str:
    """``0.812 ± 0.021``; ``(n=k)`` when fewer seeds than the table's most; ``—`` when missing."""
    n = 0 if is_missing(n) else int(n)
    if n == 0 or is_missing(mean):
        return MISSING
    text = f"{float(mean):.{decimals}f}"
    if not is_missing(std):
        text += f" ± {float(std):.{decimals}f}"
    if n < n_full or n == 1:
        text += f" (n={n})"
    return text


def _paper_number(x: float) -> str:
    return f"{x:.2f}" if round(x, 2) == round(x, 6) else f"{x:.3f}"


def format_paper(mean: Any, std: Any) -> str:
    """The paper's number as printed (two decimals, three where the paper gives three)."""
    if is_missing(mean):
        return MISSING
    return _paper_number(float(mean)) + ("" if is_missing(std) else f" ± {_paper_number(float(std))}")


def _n_full(table: pd.DataFrame) -> int:
    n = pd.to_numeric(table.get("n_seeds", pd.Series(dtype=float)), errors="coerce")
    return int(n.max()) if n.notna().any() and n.max() > 0 else 0


def first_value(table: pd.DataFrame, column: str, default: str) -> str:
    """The first non-missing value of ``column`` (the source or profile of a table)."""
    if column not in table.columns or table[column].dropna().empty:
        return default
    return str(table[column].dropna().iloc[0])


def table_caption(table: pd.DataFrame, paper_table: str, what: str) -> list[str]:
    """Lines stating the source, profile, statistics and the paper's provenance of one table."""
    source, profile = first_value(table, "source", "unknown"), first_value(table, "profile", "unspecified")
    description = "; ".join(SOURCE_DESCRIPTIONS.get(s, s) for s in source.split("+"))
    n = _n_full(table)
    seeds = f"{n} seed{'s' if n != 1 else ''}" if n else "no completed run"
    return [
        f"Data source: {source} — {description}.",
        f"Profile: {profile}.",
        f"{ours_label(source)}: {what}, mean ± sample std over seeds ({seeds} per cell unless marked n=k).",
        f"{PAPER_LABEL}: {paper.CITATION}, {paper_table}, obtained on the real prasad2020 volume.",
        f"{MISSING} = no run (ours) or not reported (paper); a missing value is never shown as 0.",
    ]


# --- display blocks: the tables as printed (groups of ours/paper columns) ------------------------


def table1_blocks(table: pd.DataFrame, decimals: int) -> list[tuple[str, pd.DataFrame]]:
    """Table 1 as display blocks: methods x (configuration, ours/paper)."""
    source, n_full = first_value(table, "source", "unknown"), _n_full(table)
    metric = first_value(table, "metric", "accuracy")
    configs = list(dict.fromkeys(table["config"]))
    rows = []
    for _, group in table.groupby("method", sort=False):
        row = {"Method": str(group["method_label"].iloc[0])}
        for config in configs:
            cell = group[group["config"] == config]
            if cell.empty:
                row[f"{config} · {ours_label(source)}"] = MISSING
                row[f"{config} · {PAPER_LABEL}"] = MISSING
                continue
            r = cell.iloc[0]
            row[f"{config} · {ours_label(source)}"] = format_ours(r.ours_mean, r.ours_std, r.n_seeds, n_full, decimals)
            row[f"{config} · {PAPER_LABEL}"] = format_paper(r.paper_mean, r.paper_std)
        rows.append(row)
    return [(f"Task 1 {metric.replace('_', ' ')}", pd.DataFrame(rows))]


def table2_blocks(table: pd.DataFrame, decimals: int) -> list[tuple[str, pd.DataFrame]]:
    """Table 2 as display blocks, one per (dims, setting): (model, metric) x (class, ours/paper).

    Every model has a row per metric of :data:`SEG_METRIC_LABELS` (pooled F1, pooled IoU, IoU per
    slice of present classes, the authors' per-sample IoU), in that order, all ``—`` where the table has none (an older table); the paper's
    cells are those of the table (its IoU on the authors' row)."""
    source, n_full = first_value(table, "source", "unknown"), _n_full(table)
    blocks = []
    for (dims, setting), part in table.groupby(["dims", "setting"], sort=False):
        classes = list(dict.fromkeys(zip(part["class"], part["class_label"], strict=True)))
        metrics = list(dict.fromkeys([*SEG_METRIC_LABELS, *part["metric"]]))
        rows = []
        for _, by_model in part.groupby("model", sort=False):
            for metric in metrics:
                row = {"Model": str(by_model["model_label"].iloc[0]), "Metric": SEG_METRIC_LABELS.get(metric, metric)}
                group = by_model[by_model["metric"] == metric]
                rows.append(_ours_and_paper(row, group, "class", classes, source, n_full, decimals))
        blocks.append((f"{dims} segmentation, {setting}", pd.DataFrame(rows)))
    return blocks


def _ours_and_paper(
    row: dict[str, str],
    group: pd.DataFrame,
    key: str,
    columns: list[tuple[str, str]],
    source: str,
    n_full: int,
    decimals: int,
) -> dict[str, str]:
    """``row`` plus an ours/paper pair of cells per ``(value of key, label)``; ``—`` where absent."""
    for value, label in columns:
        cell = group[group[key] == value]
        r = cell.iloc[0] if not cell.empty else None
        row[f"{label} · {ours_label(source)}"] = (
            MISSING if r is None else format_ours(r.ours_mean, r.ours_std, r.n_seeds, n_full, decimals)
        )
        row[f"{label} · {PAPER_LABEL}"] = MISSING if r is None else format_paper(r.paper_mean, r.paper_std)
    return row


def table3_blocks(table: pd.DataFrame, decimals: int) -> list[tuple[str, pd.DataFrame]]:
    """Table 3 as display blocks, one per encoder training set: (method, R^2 kind) x (feature, ours/paper)."""
    source, n_full = first_value(table, "source", "unknown"), _n_full(table)
    kind_labels = {kind: label for kind, (_, label) in R2_KINDS.items()}
    blocks = []
    for config, part in table.groupby("train_config", sort=False):
        features = list(dict.fromkeys(zip(part["feature"], part["feature_label"], strict=True)))
        rows = []
        for (_, kind), group in part.groupby(["method", "r2"], sort=False):
            row = {"Method": str(group["method_label"].iloc[0]), "R²": kind_labels.get(kind, kind)}
            rows.append(_ours_and_paper(row, group, "feature", features, source, n_full, decimals))
        blocks.append((f"Linear read-outs from encoders trained on {config}", pd.DataFrame(rows)))
    return blocks


@dataclass(frozen=True)
class TableInfo:
    """How one of the paper's tables is titled, captioned and cut into display blocks."""

    title: str
    paper_table: str
    what: str
    blocks: Callable[[pd.DataFrame, int], list[tuple[str, pd.DataFrame]]]


TABLES: dict[str, TableInfo] = {
    "table1": TableInfo(
        title="Table 1 — Task 1: brain-region classification accuracy",
        paper_table="Table 1",
        what="test accuracy of a linear read-out (SSL, PCA, NMF) or of the supervised network",
        blocks=table1_blocks,
    ),
    "table2": TableInfo(
        title="Table 2 — Task 2: microstructure segmentation (per-class and mean F1; IoU pooled, per slice and as the authors)",
        paper_table=(
            "Table 2 (the authors' code, scripts/task2_main.py, pools F1 over all pixels but averages "
            "segmentation_models_pytorch's IoU per test sample: the paper's F1 "
            f"sits beside {SEG_METRIC_LABELS['f1']}, its IoU beside {SEG_METRIC_LABELS['iou_authors']}; "
            f"{SEG_METRIC_LABELS['iou']} and {SEG_METRIC_LABELS['iou_per_image']} have no paper value)"
        ),
        what=(
            "per-class F1 and IoU on the test split and their mean over classes (Avg.); "
            f"{SEG_METRIC_LABELS['f1']} and {SEG_METRIC_LABELS['iou']}: true/false positives and false "
            f"negatives summed over every test pixel of a run; {SEG_METRIC_LABELS['iou_per_image']}: this "
            "project's IoU of each test slice (3D models too), averaged over the slices where the class is in "
            f"the ground truth or the prediction; {SEG_METRIC_LABELS['iou_authors']}: smp.metrics.get_stats and "
            "iou_score(reduction=None) per test sample (a 2D slice; a 3D model's subvolume of train.depth "
            "slices), a class absent from both prediction and truth of a sample scoring 1 (smp's "
            "zero_division=1.0), averaged over the samples"
        ),
        blocks=table2_blocks,
    ),
    "table3": TableInfo(
        title="Table 3 — Task 3: R² of linear read-outs of semantic features from frozen Task 1 encoders",
        paper_table="Table 3 (in-sample R²; the paper reports no cross-validated R²)",
        what=(
            "R² of a linear read-out: in-sample least squares (as the paper) and cross-validated ridge "
            "(penalty chosen inside the training folds by inner blocked folds; column cv_ridge_alpha of "
            "task3_probing); images probed: see image_unit of task3_probing (the authors' code: 128x128 "
            "tiles of 256x256 slices, 5760 images)"
        ),
        blocks=table3_blocks,
    ),
}


def render_markdown(table: pd.DataFrame, which: str, decimals: int) -> str:
    """A Markdown file: title, source/profile/provenance lines, then the table block(s)."""
    info = TABLES[which]
    lines = [f"# {info.title}", ""]
    lines += [f"- {line}" for line in table_caption(table, info.paper_table, info.what)]
    for title, block in info.blocks(table, decimals):
        lines += ["", f"## {title}", "", block.to_markdown(index=False, disable_numparse=True), ""]
    return "\n".join(lines).rstrip() + "\n"
