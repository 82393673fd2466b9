"""Renderings of the numeric tables: formatted cells, captions, display blocks and Markdown.

Every rendering states the data source and the profile; this project's columns are labelled
``ours (<source>)`` and the paper's ``paper (real data)``, and a missing value is ``—``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from mtneuro import paper_results as paper

from .labels import (
    MISSING,
    PAPER_LABEL,
    R2_KINDS,
    R2_SHORT_LABELS,
    SEG_METRIC_LABELS,
    SEG_METRIC_SHORT_LABELS,
    SOURCE_DESCRIPTIONS,
    ours_label,
)
from .tables import RANGE_UP_TO_SEEDS


def is_missing(x: Any) -> bool:
    try:
        return x is None or bool(np.isnan(float(x)))
    except (TypeError, ValueError):
        return True


def format_ours(
    mean: Any,
    std: Any,
    n: Any,
    n_full: int,
    decimals: int,
    low: Any = float("nan"),
    high: Any = float("nan"),
    ci_halfwidth: Any = float("nan"),
) -> str:
    """One cell of this project's numbers over seeds:

    * one seed: ``0.500 (n=1)``;
    * every seed the same value (deterministic methods: PCA, NMF, the intensity baseline):
      ``0.590 (2 seeds, identical)`` -- no ``± 0.000``;
    * up to :data:`~.tables.RANGE_UP_TO_SEEDS` seeds: the mean and the seeds' range,
      ``0.783 (0.725–0.840)`` (two values say nothing about a standard deviation);
    * more seeds: ``0.812 ± 0.021`` (sample std);

    then ``(n=k)`` when fewer seeds than the table's most, and ``; CI ±0.061`` when the runs have a
    bootstrap interval over test images (mean half-width over the seeds). ``—`` when missing.
    Without ``low``/``high`` (an older table) the std is shown as before."""
    n = 0 if is_missing(n) else int(n)
    if n == 0 or is_missing(mean):
        return MISSING
    text = f"{float(mean):.{decimals}f}"
    notes = []
    has_range = not (is_missing(low) or is_missing(high))
    if n >= 2 and has_range and float(low) == float(high):
        notes.append(f"{n} seeds, identical")
    elif n >= 2 and has_range and n <= RANGE_UP_TO_SEEDS:
        notes.append(f"{float(low):.{decimals}f}–{float(high):.{decimals}f}")
    elif not is_missing(std):
        text += f" ± {float(std):.{decimals}f}"
    if n < n_full or n == 1:
        notes.append(f"n={n}")
    if not is_missing(ci_halfwidth):
        notes.append(f"CI ±{float(ci_halfwidth):.{decimals}f}")
    return text + (f" ({'; '.join(notes)})" if notes else "")


def format_row(r: Any, n_full: int, decimals: int) -> str:
    """:func:`format_ours` of one row of a numeric table (columns absent from an older table: NaN)."""
    nan = float("nan")
    return format_ours(
        r.ours_mean,
        r.ours_std,
        r.n_seeds,
        n_full,
        decimals,
        getattr(r, "ours_min", nan),
        getattr(r, "ours_max", nan),
        getattr(r, "run_ci_halfwidth", nan),
    )


def format_number(value: Any, decimals: int, integer: bool = False) -> str:
    """A number of a further table: ``—`` when missing; an integer (``187611136``) when
    ``integer`` (a column of whole numbers) or when it is a whole number of 1000 or more (a
    count among fractions); else ``decimals`` decimals. Text is returned as it is."""
    if isinstance(value, str):
        return value
    if is_missing(value):
        return MISSING
    x = float(value)
    if x.is_integer() and (integer or abs(x) >= 1000):
        return str(int(x))
    return f"{x:.{decimals}f}"


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


#: Which numbers repeat where (docs/CONTRACTS.md, determinism; tests/project/test_determinism.py).
REPRODUCIBILITY = (
    "Reproducibility: the same seeds give these numbers again, digit for digit, on the same machine with the "
    "same thread counts (only the timing columns of the task tables change). On another CPU or with other "
    "thread counts the learned numbers may differ in their last digits: floating-point sums run in another "
    "order (vector width, threads); Task 2 with 2 torch threads instead of 1 moved 9 of its 81 tiny-profile "
    "rows, each by less than 0.001 (a few pixels). The volume data, the phantom, the cubes and the splits do not differ."
)


def table_caption(table: pd.DataFrame, paper_table: str, what: str) -> list[str]:
    """Lines stating the source, profile, statistics and the paper's provenance of one table."""
    source, profile = first_value(table, "source", "unknown"), first_value(table, "profile", "unspecified")
    description = "; ".join(SOURCE_DESCRIPTIONS.get(s, s) for s in source.split("+"))
    n = _n_full(table)
    seeds = f"{n} seed{'s' if n != 1 else ''}" if n else "no completed run"
    return [
        f"Data source: {source} — {description}.",
        f"Profile: {profile}.",
        f"{ours_label(source)}: {what}; the mean over seeds ({seeds} per cell unless marked n=k) with, for up to "
        f"{RANGE_UP_TO_SEEDS} seeds, the smallest and largest seed value (a–b; two seeds say nothing about a "
        "standard deviation), for more seeds ± the sample std; 'identical' where every seed gave the same "
        "value (a deterministic method), shown once.",
        f"{PAPER_LABEL}: {paper.CITATION}, {paper_table}, obtained on the real prasad2020 volume.",
        f"{MISSING} = no run (ours) or not reported (paper); a missing value is never shown as 0.",
        REPRODUCIBILITY,
    ]


# --- display blocks: the tables as printed (groups of ours/paper columns) ------------------------


def table1_blocks(table: pd.DataFrame, decimals: int, compact: bool = False) -> list[tuple[str, pd.DataFrame]]:
    """Table 1 as display blocks: methods x (configuration, ours/paper) (``compact``: the same)."""
    del compact  # one metric, three configurations: as narrow as it gets
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
            row[f"{config} · {ours_label(source)}"] = format_row(r, n_full, decimals)
            row[f"{config} · {PAPER_LABEL}"] = format_paper(r.paper_mean, r.paper_std)
        rows.append(row)
    return [(f"Task 1 {metric.replace('_', ' ')}", pd.DataFrame(rows))]


def table2_blocks(table: pd.DataFrame, decimals: int, compact: bool = False) -> list[tuple[str, pd.DataFrame]]:
    """Table 2 as display blocks, one per (dims, setting): (model, metric) x (class, ours/paper).

    Every model has a row per metric of :data:`SEG_METRIC_LABELS` (pooled F1, pooled IoU, IoU per
    slice of present classes, the authors' per-sample IoU), in that order, all ``—`` where the table has none (an older table); the paper's
    cells are those of the table (its IoU on the authors' row). ``compact`` (report.html): the
    metrics' short labels (:data:`SEG_METRIC_SHORT_LABELS`)."""
    source, n_full = first_value(table, "source", "unknown"), _n_full(table)
    metric_labels = SEG_METRIC_SHORT_LABELS if compact else SEG_METRIC_LABELS
    blocks = []
    for (dims, setting), part in table.groupby(["dims", "setting"], sort=False):
        classes = list(dict.fromkeys(zip(part["class"], part["class_label"], strict=True)))
        metrics = list(dict.fromkeys([*SEG_METRIC_LABELS, *part["metric"]]))
        rows = []
        for _, by_model in part.groupby("model", sort=False):
            for metric in metrics:
                row = {"Model": str(by_model["model_label"].iloc[0]), "Metric": metric_labels.get(metric, metric)}
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
        row[f"{label} · {ours_label(source)}"] = MISSING if r is None else format_row(r, n_full, decimals)
        row[f"{label} · {PAPER_LABEL}"] = MISSING if r is None else format_paper(r.paper_mean, r.paper_std)
    return row


def table3_blocks(table: pd.DataFrame, decimals: int, compact: bool = False) -> list[tuple[str, pd.DataFrame]]:
    """Table 3 as display blocks, one per encoder training set: (method, R^2 kind) x (feature, ours/paper).

    ``compact`` (report.html): the R² kinds' short labels (:data:`R2_SHORT_LABELS`), and the
    features without any paper number (this project's per-image cells) in a block of their own
    with this project's columns only, so that no block is wider than a page."""
    source, n_full = first_value(table, "source", "unknown"), _n_full(table)
    kind_labels = R2_SHORT_LABELS if compact else {kind: label for kind, (_, label) in R2_KINDS.items()}
    blocks = []
    for config, part in table.groupby("train_config", sort=False):
        features = list(dict.fromkeys(zip(part["feature"], part["feature_label"], strict=True)))
        has_paper = set(part.loc[part["paper_mean"].notna(), "feature"])
        groups = [(features, f"Linear read-outs from encoders trained on {config}")]
        if compact and has_paper and len(has_paper) < len(features):
            groups = [
                ([f for f in features if f[0] in has_paper], f"Linear read-outs from encoders trained on {config}"),
                (
                    [f for f in features if f[0] not in has_paper],
                    f"Linear read-outs from encoders trained on {config}: this project's features (no paper number "
                    "of their definition)",
                ),
            ]
        for shown, title in groups:
            rows = []
            for (_, kind), group in part.groupby(["method", "r2"], sort=False):
                row = {"Method": str(group["method_label"].iloc[0]), "R²": kind_labels.get(kind, kind)}
                row = _ours_and_paper(row, group, "feature", shown, source, n_full, decimals)
                if compact and not any(f in has_paper for f, _ in shown):
                    row = {k: v for k, v in row.items() if not k.endswith(f" · {PAPER_LABEL}")}
                rows.append(row)
            blocks.append((title, pd.DataFrame(rows)))
    return blocks


@dataclass(frozen=True)
class TableInfo:
    """How one of the paper's tables is titled, captioned and cut into display blocks; ``notes``:
    where the paper's rows (or this project's) are not what they seem."""

    title: str
    paper_table: str
    what: str
    blocks: Callable[..., list[tuple[str, pd.DataFrame]]]
    notes: tuple[str, ...] = ()
    #: The block column saying which metric a row holds (report.html shows one row per model,
    #: the others behind a toggle), and the short label of each metric it may hold.
    row_kind: str | None = None
    row_kind_labels: Mapping[str, str] | None = None


#: Table 1 notes (MTNeuro file:line references are to the authors' public repository).
TABLE1_NOTES: tuple[str, ...] = (
    "Control rows (this project's; the paper has none, shown —): '4 gray-level statistics (mean, std, p10, "
    "p90) + logistic regression' (method intensity_baseline) shows how much of an accuracy first-order "
    "intensity alone gives; 'Random encoder' (random_encoder) is the network untrained, frozen, read out "
    "linearly. Nothing is trained for either.",
    "CI ±: the half-width of each run's bootstrap interval of the accuracy over its test images "
    "(classification.bootstrap, level in column ci_level), averaged over the seeds. ROI-C1's test set is one "
    "contiguous block of slices per cube (z = 420-470 of each main cube): neighbouring slices share cells and "
    "vessels, so neither that interval nor the seed range (a–b) is an error over independent images; the "
    "seed scatter of ROI-C1 largely reflects where one run's errors fall on four correlated blocks.",
)
#: Table 3 notes.
TABLE3_NOTES: tuple[str, ...] = (
    "Noise floor: in-sample least squares reaches about D / (N - 1) from pure noise (D embedding "
    "dimensions, N images); the row 'in-sample noise floor' is the in-sample R² of a random Gaussian "
    "embedding of the same D and N (probing.readout.noise_floor_seed), to read every in-sample R² against.",
    "Cells: 'Cell Count', 'Cell Size', 'Dist (k=1)' are this project's (4-connected components of each "
    "image); the '(3D labels)' columns label cells as the authors do, 6-connected in 3D over the whole cube "
    "before cutting images (MTNeuro annots/features.py, lines 19-20, cc3d connectivity=6), and carry the "
    "paper's numbers.",
    "The paper's 'Supervised' row probes a randomly initialised encoder: get_latents(..., ssl=0) builds "
    "resnet_xray('resnet18') and loads a checkpoint only for ssl == 1 (MTNeuro annots/latents.py, lines "
    "29-31); compare it with this project's random_encoder row.",
    "The paper's PCA and NMF are fitted on the probe images themselves (get_unsup_latents fits PCA(256) / "
    "NMF(256) on the probed cut-out, annots/latents.py, lines 48-65), this project's on Task 1 training "
    "images (a frozen encoder like the others).",
    "The paper's 'Dist (k=1)': an image with fewer than two cells gets the sentinel 64 and no cell size "
    "(left 0), and every cell's zero distance to itself enters the mean, halving it (annots/features.py, "
    "lines 51-53 and 60-64); with many such quadrants the sentinel dominates that feature's variance. This "
    "project leaves those images out (NaN) and excludes the self-distance, in both labellings.",
    "Images the authors' encoders see: each 256-px section is resized to 64 px and cut into four 32-px "
    "quadrants (BrainRegionDatasetInfer, default tresize=64; annots/latents.py, line 23); PCA/NMF: 64-px "
    "quadrants of 128-px sections (line 50). This project passes each probing image at the encoder's "
    "input size (classification.encoder.input_size): the paper profile's 128-px tiles are upsampled to "
    "256 px, which the authors do not do.",
)


TABLES: dict[str, TableInfo] = {
    "table1": TableInfo(
        title="Table 1 — Task 1: brain-region classification accuracy",
        paper_table="Table 1",
        what="test accuracy of a linear read-out (SSL, PCA, NMF, controls) or of the supervised network",
        blocks=table1_blocks,
        notes=TABLE1_NOTES,
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
        row_kind="Metric",
        row_kind_labels=SEG_METRIC_SHORT_LABELS,
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
        notes=TABLE3_NOTES,
        row_kind="R²",
        row_kind_labels=R2_SHORT_LABELS,
    ),
}


def render_markdown(table: pd.DataFrame, which: str, decimals: int) -> str:
    """A Markdown file: title, source/profile/provenance lines, then the table block(s)."""
    info = TABLES[which]
    lines = [f"# {info.title}", ""]
    lines += [f"- {line}" for line in table_caption(table, info.paper_table, info.what)]
    lines += [f"- Note: {note}" for note in info.notes]
    for title, block in info.blocks(table, decimals):
        lines += ["", f"## {title}", "", block.to_markdown(index=False, disable_numparse=True), ""]
    return "\n".join(lines).rstrip() + "\n"


def render_departures(departures: pd.DataFrame) -> str:
    """The settings in which the profile departs from the paper, as Markdown (from the parsed
    parameters, :func:`.tables.profile_departures`)."""
    profile = first_value(departures, "profile", "unspecified")
    differ = departures[departures["departs"].astype(bool)] if len(departures) else departures
    lines = [f"# Settings: profile {profile} against the paper", ""]
    if differ.empty:
        lines.append("Every compared setting is the paper's.")
    else:
        lines.append(f"{len(differ)} of {len(departures)} compared settings depart from the paper:")
    lines.append("")
    shown = departures.rename(
        columns={"setting": "Setting", "paper": "Paper", "this_profile": "This profile", "parameter": "Parameter"}
    ).assign(Departs=departures["departs"].map({True: "yes", False: "no"}))
    lines.append(shown[["Setting", "Paper", "This profile", "Departs", "Parameter"]].to_markdown(index=False))
    return "\n".join(lines) + "\n"
