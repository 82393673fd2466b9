"""Reporting nodes: pure functions from the three task tables to the paper's tables and a report.

Every table is first built as a *numeric* long table (the CSV written to ``08_reporting``), one
row per table cell, with this project's mean and standard deviation over seeds beside the
paper's number (:mod:`mtneuro.paper_results`).  The Markdown files and the HTML report are
renderings of those numeric tables, so the three always agree.

Rules every rendering follows:

* the data source (``source`` column of the task tables: phantom, bossdb, local) and the
  profile (parameter ``reporting.profile``) are stated with every table;
* this project's columns are labelled ``ours (<source>)`` and the paper's ``paper (real data)``:
  a phantom number is never presented as a result on the real dataset;
* a cell without any run (or a NaN metric in every seed) is missing -- empty in the CSV,
  ``—`` in Markdown/HTML, a "no run" mark in the charts -- never zero;
* std is the sample standard deviation over seeds (ddof = 1); one seed gives no std.
"""

from __future__ import annotations

import base64
import html
import io
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from mtneuro import paper_results as paper
from mtneuro import spec

log = logging.getLogger(__name__)

MISSING = "—"
PAPER_LABEL = "paper (real data)"

SOURCE_DESCRIPTIONS: dict[str, str] = {
    "phantom": (
        "the synthetic phantom volume built into this project (a stand-in for offline runs); "
        "these numbers are NOT results on the real MTNeuro dataset"
    ),
    "bossdb": "the real prasad2020 volume read from BossDB, with this project's settings (see the profile)",
    "local": "a local volume (Zarr/TIFF) given by the user",
    "unknown": "unknown (the task table has no runs or no source column)",
}

TABLE1_COLUMNS = [
    "source", "profile", "method", "method_label", "config", "metric",
    "n_seeds", "ours_mean", "ours_std", "paper_mean", "paper_std",
]
TABLE2_COLUMNS = [
    "source", "profile", "dims", "model", "model_label", "setting", "metric", "class", "class_label",
    "n_seeds", "ours_mean", "ours_std", "paper_mean", "paper_std",
]
TABLE3_COLUMNS = [
    "source", "profile", "train_config", "method", "method_label", "feature", "feature_label", "r2",
    "n_seeds", "ours_mean", "ours_std", "paper_mean", "paper_std",
]
R2_KINDS: dict[str, tuple[str, str]] = {
    # kind -> (task 3 column, label)
    "in_sample": ("r2_in_sample", "in-sample"),
    "cv": ("r2_cv", "cross-validated"),
}


class ReportingError(ValueError):
    """A task table lacks what the reporting pipeline needs."""


# --- normalisation of the task tables' values ---------------------------------------------------


def _key(value: Any) -> str:
    return re.sub(r"[^a-z0-9+]", "", str(value).lower())


def normalise_config(value: Any) -> str:
    """``roi_c1``, ``ROI-C1``, ``c1`` -> ``ROI-C1``; anything else unchanged."""
    match = re.search(r"c\s*[-_]?\s*([123])\b", str(value).lower())
    return f"ROI-C{match.group(1)}" if match else str(value)


_METHOD_ALIASES = {
    "sup": "supervised",
    "supervised": "supervised",
    "mixup": "mixup",
    "supmixup": "mixup",
    "supervisedmixup": "mixup",
    "supwmixup": "mixup",
    "byol": "byol",
    "myow": "myow",
    "myowm": "myow_merged",
    "myowmerged": "myow_merged",
    "myowmerge": "myow_merged",
    "pca": "pca",
    "nmf": "nmf",
}


def normalise_method(value: Any) -> str:
    return _METHOD_ALIASES.get(_key(value).replace("+", ""), str(value))


def normalise_dims(value: Any) -> str:
    key = _key(value)
    return {"2d": "2D", "2": "2D", "3d": "3D", "3": "3D"}.get(key, str(value))


def normalise_setting(value: Any) -> str:
    """``3-class``, ``seg_3class``, ``3`` -> ``3-class``."""
    match = re.search(r"([34])", str(value))
    return f"{match.group(1)}-class" if match else str(value)


_MODEL_ALIASES = {
    "unet": "unet",
    "manet": "manet",
    "fpn": "fpn",
    "unetplusplus": "unetplusplus",
    "unetpp": "unetplusplus",
    "pan": "pan",
    "pspnet": "pspnet",
    "vnet": "vnet",
    "vnetlight": "vnet",
    "highresnet": "highresnet",
    "highresnet3d": "highresnet",
}
_MODELS_3D = {"vnet", "highresnet"}


def infer_dims(model: Any) -> str:
    key = _key(model)
    return "3D" if "3d" in key or _MODEL_ALIASES.get(key) in _MODELS_3D else "2D"


def normalise_model(value: Any, dims: str) -> str:
    """Model names of the segmentation table -> the paper's keys (``unet3d`` for the 3D U-Net)."""
    key = _key(value).replace("++", "plusplus").replace("+", "")
    key = key.replace("3d", "").replace("2d", "")
    model = _MODEL_ALIASES.get(key, str(value))
    if dims == "3D" and model == "unet":
        return "unet3d"
    return model


def normalise_class(value: Any) -> str:
    """Class names of the segmentation table -> ``background/vessel/cell/axon/mean``."""
    if isinstance(value, (int, np.integer)) or str(value).isdigit():
        return spec.PIXEL_CLASSES.get(int(value), str(value))
    key = _key(value)
    if key in {"mean", "avg", "average", "macro", "macroavg", "all", "overall"}:
        return "mean"
    if key.startswith("bg") or "background" in key or key == "other":
        return "background"
    for name in ("vessel", "cell", "axon"):
        if name in key:
            return name
    return str(value)


def normalise_feature(value: Any) -> str:
    key = _key(value)
    if "vessel" in key:
        return "vessel_fraction"
    if "axon" in key:
        return "axon_fraction"
    if "dist" in key or "nn" in key or "neighbo" in key:
        return "mean_nn_distance"
    if "area" in key or "size" in key:
        return "mean_cell_area"
    if "count" in key or key in {"cells", "ncells"}:
        return "cell_count"
    return str(value)


def _ordered(preferred: Iterable[str], seen: Iterable[str]) -> list[str]:
    """The preferred values in their order, then any other value seen, in order of appearance."""
    out = list(dict.fromkeys(preferred))
    out += [v for v in dict.fromkeys(seen) if v not in out]
    return out


# --- statistics over seeds --------------------------------------------------------------------


def _seed_values(runs: pd.DataFrame, value_column: str, keys: Sequence[str]) -> pd.DataFrame:
    """One value per (keys..., seed): repeated rows of one seed are averaged, NaNs dropped."""
    frame = runs[[*keys, *(["seed"] if "seed" in runs.columns else []), value_column]].copy()
    frame[value_column] = pd.to_numeric(frame[value_column], errors="coerce")
    frame = frame.dropna(subset=[value_column])
    if "seed" in frame.columns:
        frame = frame.groupby([*keys, "seed"], as_index=False, dropna=False)[value_column].mean()
    return frame


def seed_stats(values: Iterable[float]) -> tuple[int, float, float]:
    """(n, mean, sample std) over seeds, NaNs ignored; mean is NaN for no value, std for < 2."""
    arr = np.asarray([v for v in values if v is not None and np.isfinite(v)], dtype=float)
    if arr.size == 0:
        return 0, float("nan"), float("nan")
    std = float(arr.std(ddof=1)) if arr.size > 1 else float("nan")
    return int(arr.size), float(arr.mean()), std


def _stats_lookup(frame: pd.DataFrame, keys: Sequence[str], value_column: str) -> dict[tuple, tuple[int, float, float]]:
    if frame.empty:
        return {}
    return {
        (key if isinstance(key, tuple) else (key,)): seed_stats(group[value_column].to_numpy())
        for key, group in frame.groupby(list(keys), dropna=False, sort=False)
    }


def _paper_pair(value: paper.PaperValue | None) -> tuple[float, float]:
    if value is None:
        return float("nan"), float("nan")
    return value.mean, (float("nan") if value.std is None else value.std)


def describe_source(runs: pd.DataFrame) -> str:
    """The ``source`` values of a task table, e.g. ``phantom`` (``unknown`` when absent)."""
    if runs is None or "source" not in runs.columns:
        return "unknown"
    values = sorted({str(v) for v in runs["source"].dropna()})
    return "+".join(values) if values else "unknown"


def _profile(params: Mapping[str, Any]) -> str:
    return str(params.get("profile") or "unspecified")


def _require(runs: pd.DataFrame, columns: Iterable[str], table: str) -> None:
    missing = [c for c in columns if c not in runs.columns]
    if missing and not runs.empty:
        raise ReportingError(f"The task table for {table} lacks the column(s) {missing}; it has {list(runs.columns)}.")


def _as_frame(runs: pd.DataFrame | None) -> pd.DataFrame:
    return pd.DataFrame() if runs is None else runs


# --- Table 1 ----------------------------------------------------------------------------------


#: Training set of each Task 1 configuration: ROI-C2 tests the ROI-C1 models on the extra cubes.
TABLE1_TRAIN_CONFIG: dict[str, str] = {"ROI-C1": "ROI-C1", "ROI-C2": "ROI-C1", "ROI-C3": "ROI-C3"}


def _paper_training_sets_only(frame: pd.DataFrame) -> pd.DataFrame:
    """Where the table says which training set a row's model had (``train_config``), keep only
    the pairs the paper reports (a ROI-C3 model tested on the ROI-C1 test split is no Table 1 cell)."""
    if "train_config" not in frame.columns:
        return frame
    train = frame["train_config"].map(normalise_config)
    expected = frame["config"].map(TABLE1_TRAIN_CONFIG)
    keep = expected.isna() | train.isna() | (train == expected)
    if not keep.all():
        log.info("Table 1 leaves out %d row(s) whose training set is not the paper's for their test set",
                 int((~keep).sum()))
    return frame[keep.to_numpy()]


def build_table1(runs: pd.DataFrame, params: Mapping[str, Any]) -> pd.DataFrame:
    """Task 1 accuracy: one row per (method, configuration), ours (mean/std over seeds) and paper's."""
    runs = _as_frame(runs)
    metric = str(params.get("task1_metric", "accuracy"))
    _require(runs, ["method", "config"], "Table 1")
    source, profile = describe_source(runs), _profile(params)
    if runs.empty or metric not in runs.columns:
        if not runs.empty:
            log.warning("Task 1 table has no column %r; Table 1 shows every run as missing", metric)
        frame = pd.DataFrame(columns=["method", "config", metric])
    else:
        frame = runs.assign(method=runs["method"].map(normalise_method), config=runs["config"].map(normalise_config))
        frame = _paper_training_sets_only(frame)
        frame = _seed_values(frame, metric, ["method", "config"])
    stats = _stats_lookup(frame, ["method", "config"], metric)
    methods = _ordered(paper.METHODS, frame["method"])
    configs = _ordered(paper.CONFIGS, frame["config"])
    rows = []
    for method in methods:
        for config in configs:
            n, mean, std = stats.get((method, config), (0, float("nan"), float("nan")))
            p_mean, p_std = _paper_pair(paper.table1(method, config)) if metric == "accuracy" else (float("nan"),) * 2
            rows.append([source, profile, method, paper.METHOD_LABELS.get(method, method), config, metric,
                         n, mean, std, p_mean, p_std])
    return pd.DataFrame(rows, columns=TABLE1_COLUMNS)


# --- Table 2 ----------------------------------------------------------------------------------


def _normalise_segmentation(runs: pd.DataFrame) -> pd.DataFrame:
    frame = runs.copy()
    frame["dims"] = frame["dims"].map(normalise_dims) if "dims" in frame.columns else frame["model"].map(infer_dims)
    frame["model"] = [normalise_model(m, d) for m, d in zip(frame["model"], frame["dims"], strict=True)]
    frame["setting"] = frame["setting"].map(normalise_setting)
    frame["class"] = frame["class"].map(normalise_class)
    return frame


def _segmentation_seed_values(frame: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Per (dims, model, setting, class, seed) values, with the per-seed mean over classes added
    where the table has no ``mean`` row for that run."""
    keys = ["dims", "model", "setting", "class"]
    values = _seed_values(frame, metric, keys)
    run_keys = ["dims", "model", "setting", *(["seed"] if "seed" in values.columns else [])]
    per_class = values[values["class"] != "mean"]
    computed = per_class.groupby(run_keys, as_index=False, dropna=False)[metric].mean().assign(**{"class": "mean"})
    given = values[values["class"] == "mean"]
    if not given.empty:  # keep the runs' own mean rows; compute only the runs that lack one
        have = set(map(tuple, given[run_keys].to_numpy().tolist()))
        computed = computed[[tuple(r) not in have for r in computed[run_keys].to_numpy().tolist()]]
    return pd.concat([per_class, given, computed[values.columns]], ignore_index=True)


def build_table2(runs: pd.DataFrame, params: Mapping[str, Any]) -> pd.DataFrame:
    """Task 2: one row per (dims, model, setting, metric, class or mean), ours and paper's."""
    runs = _as_frame(runs)
    _require(runs, ["model", "setting", "class"], "Table 2")
    source, profile = describe_source(runs), _profile(params)
    if runs.empty:
        frame = pd.DataFrame(columns=["dims", "model", "setting", "class"])
    else:
        frame = _normalise_segmentation(runs)
    stats: dict[str, dict[tuple, tuple[int, float, float]]] = {}
    for metric in paper.SEG_METRICS:
        if metric in frame.columns:
            values = _segmentation_seed_values(frame, metric)
            stats[metric] = _stats_lookup(values, ["dims", "model", "setting", "class"], metric)
        else:
            if not runs.empty:
                log.warning("Task 2 table has no column %r; Table 2 shows it as missing", metric)
            stats[metric] = {}
    dims_list = _ordered(paper.DIMS, frame["dims"])
    settings = _ordered(paper.SETTINGS, frame["setting"])
    rows = []
    for dims in dims_list:
        models = _ordered(paper.MODELS.get(dims, ()), frame.loc[frame["dims"] == dims, "model"])
        for model in models:
            for setting in settings:
                seen = frame.loc[(frame["setting"] == setting) & (frame["class"] != "mean"), "class"]
                classes = [*_ordered(paper.SEG_CLASSES.get(setting, ()), seen), "mean"]
                labels = paper.SEG_CLASS_LABELS.get(setting, {})
                for metric in paper.SEG_METRICS:
                    for cls in classes:
                        n, mean, std = stats[metric].get((dims, model, setting, cls), (0, float("nan"), float("nan")))
                        p_mean, p_std = _paper_pair(paper.table2(dims, model, setting, metric, cls))
                        rows.append([source, profile, dims, model, paper.MODEL_LABELS.get(model, model), setting,
                                     metric, cls, labels.get(cls, cls), n, mean, std, p_mean, p_std])
    return pd.DataFrame(rows, columns=TABLE2_COLUMNS)


# --- Table 3 ----------------------------------------------------------------------------------


def build_table3(runs: pd.DataFrame, params: Mapping[str, Any]) -> pd.DataFrame:
    """Task 3: one row per (encoder training configuration, method, feature, R^2 kind)."""
    runs = _as_frame(runs)
    _require(runs, ["method", "train_config", "feature"], "Table 3")
    source, profile = describe_source(runs), _profile(params)
    if runs.empty:
        frame = pd.DataFrame(columns=["method", "train_config", "feature"])
    else:
        frame = runs.assign(
            method=runs["method"].map(normalise_method),
            train_config=runs["train_config"].map(normalise_config),
            feature=runs["feature"].map(normalise_feature),
        )
    keys = ["train_config", "method", "feature"]
    stats = {}
    for kind, (column, _) in R2_KINDS.items():
        if column in frame.columns:
            stats[kind] = _stats_lookup(_seed_values(frame, column, keys), keys, column)
        else:
            if not runs.empty:
                log.warning("Task 3 table has no column %r; Table 3 shows it as missing", column)
            stats[kind] = {}
    configs = _ordered(paper.PROBING_CONFIGS, frame["train_config"])
    methods = _ordered(paper.METHODS, frame["method"])
    features = _ordered(paper.FEATURES, frame["feature"])
    rows = []
    for config in configs:
        for method in methods:
            for feature in features:
                for kind in R2_KINDS:
                    n, mean, std = stats[kind].get((config, method, feature), (0, float("nan"), float("nan")))
                    p = paper.table3(config, method, feature) if kind == "in_sample" else None
                    p_mean, p_std = _paper_pair(p)
                    rows.append([source, profile, config, method, paper.METHOD_LABELS.get(method, method), feature,
                                 paper.FEATURE_LABELS.get(feature, feature), kind, n, mean, std, p_mean, p_std])
    return pd.DataFrame(rows, columns=TABLE3_COLUMNS)


# --- formatting -------------------------------------------------------------------------------


def _isnan(x: Any) -> bool:
    try:
        return x is None or bool(np.isnan(float(x)))
    except (TypeError, ValueError):
        return True


def format_ours(mean: Any, std: Any, n: Any, n_full: int, decimals: int = 3) -> str:
    """``0.812 ± 0.021``; ``(n=k)`` when fewer seeds than the table's most; ``—`` when missing."""
    n = 0 if _isnan(n) else int(n)
    if n == 0 or _isnan(mean):
        return MISSING
    text = f"{float(mean):.{decimals}f}"
    if not _isnan(std):
        text += f" ± {float(std):.{decimals}f}"
    if n < n_full or n == 1:
        text += f" (n={n})"
    return text


def _paper_number(x: float) -> str:
    return f"{x:.2f}" if round(x, 2) == round(x, 6) else f"{x:.3f}"


def format_paper(mean: Any, std: Any) -> str:
    """The paper's number as printed (two decimals, three where the paper gives three)."""
    if _isnan(mean):
        return MISSING
    return _paper_number(float(mean)) + ("" if _isnan(std) else f" ± {_paper_number(float(std))}")


def _n_full(table: pd.DataFrame) -> int:
    n = pd.to_numeric(table.get("n_seeds", pd.Series(dtype=float)), errors="coerce")
    return int(n.max()) if n.notna().any() and n.max() > 0 else 0


def _first(table: pd.DataFrame, column: str, default: str) -> str:
    if column not in table.columns or table[column].dropna().empty:
        return default
    return str(table[column].dropna().iloc[0])


def ours_label(source: str) -> str:
    return f"ours ({source})"


def table_caption(table: pd.DataFrame, paper_table: str, what: str) -> list[str]:
    """Lines stating the source, profile, statistics and the paper's provenance of one table."""
    source, profile = _first(table, "source", "unknown"), _first(table, "profile", "unspecified")
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


def table1_blocks(table: pd.DataFrame, decimals: int = 3) -> list[tuple[str, pd.DataFrame]]:
    """Table 1 as display blocks: methods x (configuration, ours/paper)."""
    source, n_full = _first(table, "source", "unknown"), _n_full(table)
    metric = _first(table, "metric", "accuracy")
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


def table2_blocks(table: pd.DataFrame, decimals: int = 3) -> list[tuple[str, pd.DataFrame]]:
    """Table 2 as display blocks, one per (dims, setting): (model, metric) x (class, ours/paper)."""
    source, n_full = _first(table, "source", "unknown"), _n_full(table)
    blocks = []
    for (dims, setting), part in table.groupby(["dims", "setting"], sort=False):
        classes = list(dict.fromkeys(zip(part["class"], part["class_label"], strict=True)))
        rows = []
        for (_, metric), group in part.groupby(["model", "metric"], sort=False):
            row = {"Model": str(group["model_label"].iloc[0]), "Metric": paper.SEG_METRIC_LABELS.get(metric, metric)}
            for cls, label in classes:
                cell = group[group["class"] == cls]
                r = cell.iloc[0] if not cell.empty else None
                row[f"{label} · {ours_label(source)}"] = (
                    MISSING if r is None else format_ours(r.ours_mean, r.ours_std, r.n_seeds, n_full, decimals)
                )
                row[f"{label} · {PAPER_LABEL}"] = MISSING if r is None else format_paper(r.paper_mean, r.paper_std)
            rows.append(row)
        blocks.append((f"{dims} segmentation, {setting}", pd.DataFrame(rows)))
    return blocks


def table3_blocks(table: pd.DataFrame, decimals: int = 3) -> list[tuple[str, pd.DataFrame]]:
    """Table 3 as display blocks, one per encoder training set: (method, R^2 kind) x (feature, ours/paper)."""
    source, n_full = _first(table, "source", "unknown"), _n_full(table)
    kind_labels = {kind: label for kind, (_, label) in R2_KINDS.items()}
    blocks = []
    for config, part in table.groupby("train_config", sort=False):
        features = list(dict.fromkeys(zip(part["feature"], part["feature_label"], strict=True)))
        rows = []
        for (_, kind), group in part.groupby(["method", "r2"], sort=False):
            row = {"Method": str(group["method_label"].iloc[0]), "R²": kind_labels.get(kind, kind)}
            for feature, label in features:
                cell = group[group["feature"] == feature]
                r = cell.iloc[0] if not cell.empty else None
                row[f"{label} · {ours_label(source)}"] = (
                    MISSING if r is None else format_ours(r.ours_mean, r.ours_std, r.n_seeds, n_full, decimals)
                )
                row[f"{label} · {PAPER_LABEL}"] = (
                    MISSING if r is None else format_paper(r.paper_mean, r.paper_std)
                )
            rows.append(row)
        blocks.append((f"Linear read-outs from encoders trained on {config}", pd.DataFrame(rows)))
    return blocks


TABLES: dict[str, dict[str, Any]] = {
    "table1": {
        "title": "Table 1 — Task 1: brain-region classification accuracy",
        "paper_table": "Table 1",
        "what": "test accuracy of a linear read-out (SSL, PCA, NMF) or of the supervised network",
        "blocks": table1_blocks,
    },
    "table2": {
        "title": "Table 2 — Task 2: microstructure segmentation (per-class and mean F1 and IoU)",
        "paper_table": "Table 2",
        "what": "per-class F1 and IoU on the test split and their mean over classes (Avg.)",
        "blocks": table2_blocks,
    },
    "table3": {
        "title": "Table 3 — Task 3: R² of linear read-outs of semantic features from frozen Task 1 encoders",
        "paper_table": "Table 3 (in-sample R²; the paper reports no cross-validated R²)",
        "what": "R² of a linear regression, in-sample (as the paper) and cross-validated",
        "blocks": table3_blocks,
    },
}


def render_markdown(table: pd.DataFrame, which: str, decimals: int = 3) -> str:
    """A Markdown file: title, source/profile/provenance lines, then the table block(s)."""
    info = TABLES[which]
    lines = [f"# {info['title']}", ""]
    lines += [f"- {line}" for line in table_caption(table, info["paper_table"], info["what"])]
    for title, block in info["blocks"](table, decimals):
        lines += ["", f"## {title}", "", block.to_markdown(index=False, disable_numparse=True), ""]
    return "\n".join(lines).rstrip() + "\n"


def table1_markdown(table: pd.DataFrame, params: Mapping[str, Any]) -> str:
    return render_markdown(table, "table1", int(params.get("decimals", 3)))


def table2_markdown(table: pd.DataFrame, params: Mapping[str, Any]) -> str:
    return render_markdown(table, "table2", int(params.get("decimals", 3)))


def table3_markdown(table: pd.DataFrame, params: Mapping[str, Any]) -> str:
    return render_markdown(table, "table3", int(params.get("decimals", 3)))


# --- bar charts -------------------------------------------------------------------------------

_BAR_COLOURS = ("#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860", "#DA8BC3")


def _grouped_bars(ax, groups: list[str], series: list[tuple[str, list[float], list[float], list[float]]]) -> None:  # noqa: ANN001
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


def _get(row: pd.Series | None, column: str) -> float:
    return float("nan") if row is None or _isnan(row[column]) else float(row[column])


def _chart_title(table: pd.DataFrame, what: str) -> str:
    return (f"{what} — {ours_label(_first(table, 'source', 'unknown'))}, "
            f"profile {_first(table, 'profile', 'unspecified')}; ◆ {PAPER_LABEL}")


def task1_chart(table: pd.DataFrame) -> Figure:
    """Accuracy per method, one bar per configuration, with the paper's values."""
    fig = Figure(figsize=(9, 4), layout="constrained")
    ax = fig.add_subplot()
    methods = list(dict.fromkeys(table["method"]))
    labels = [str(_cell(table, method=m)["method_label"]) for m in methods]
    series = []
    for config in dict.fromkeys(table["config"]):
        rows = [_cell(table, method=m, config=config) for m in methods]
        series.append((config, [_get(r, "ours_mean") for r in rows], [_get(r, "ours_std") for r in rows],
                       [_get(r, "paper_mean") for r in rows]))
    _grouped_bars(ax, labels, series)
    ax.set_ylabel(_first(table, "metric", "accuracy").replace("_", " "))
    fig.suptitle(_chart_title(table, "Task 1"), fontsize=9)
    return fig


def task2_chart(table: pd.DataFrame) -> Figure:
    """Mean F1 and IoU over classes per model, one bar per setting, with the paper's values."""
    fig = Figure(figsize=(9, 6), layout="constrained")
    means = table[table["class"] == "mean"]
    models = list(dict.fromkeys(zip(means["dims"], means["model"], strict=True)))
    labels = [f"{str(_cell(means, dims=d, model=m)['model_label'])} ({d})" for d, m in models]
    settings = list(dict.fromkeys(means["setting"]))
    for k, metric in enumerate(paper.SEG_METRICS):
        ax = fig.add_subplot(len(paper.SEG_METRICS), 1, k + 1)
        series = []
        for setting in settings:
            rows = [_cell(means, dims=d, model=m, setting=setting, metric=metric) for d, m in models]
            series.append((setting, [_get(r, "ours_mean") for r in rows], [_get(r, "ours_std") for r in rows],
                           [_get(r, "paper_mean") for r in rows]))
        _grouped_bars(ax, labels, series)
        ax.set_ylabel(f"mean {paper.SEG_METRIC_LABELS[metric]}")
    fig.suptitle(_chart_title(table, "Task 2 (mean over classes)"), fontsize=9)
    return fig


def task3_chart(table: pd.DataFrame) -> Figure:
    """In-sample R^2 per feature, one bar per method, one panel per encoder training set."""
    fig = Figure(figsize=(10, 6.5), layout="constrained")
    part = table[table["r2"] == "in_sample"]
    configs = list(dict.fromkeys(part["train_config"]))
    features = list(dict.fromkeys(part["feature"]))
    feature_labels = [str(_cell(part, feature=f)["feature_label"]) for f in features]
    methods = list(dict.fromkeys(part["method"]))
    for k, config in enumerate(configs):
        ax = fig.add_subplot(max(len(configs), 1), 1, k + 1)
        series = []
        for method in methods:
            rows = [_cell(part, train_config=config, method=method, feature=f) for f in features]
            label = str(_cell(part, method=method)["method_label"])
            series.append((label, [_get(r, "ours_mean") for r in rows], [_get(r, "ours_std") for r in rows],
                           [_get(r, "paper_mean") for r in rows]))
        _grouped_bars(ax, feature_labels, series)
        ax.set_ylabel(f"in-sample R² ({config} encoders)")
    fig.suptitle(_chart_title(table, "Task 3 (in-sample R²)"), fontsize=9)
    return fig


# --- HTML report ------------------------------------------------------------------------------

_IMAGE_SIGNATURES = {b"\x89PNG\r\n\x1a\n": "image/png", b"\xff\xd8\xff": "image/jpeg", b"GIF8": "image/gif"}


def image_data_uris(obj: Any) -> list[str]:
    """``data:`` URIs for a figure in any form a dataset may load: PNG/JPEG bytes, a matplotlib
    Figure, a PIL image, an image array, or a list/dict of those."""
    if obj is None:
        return []
    if isinstance(obj, Mapping):
        return [uri for value in obj.values() for uri in image_data_uris(value)]
    if isinstance(obj, (list, tuple)):
        return [uri for value in obj for uri in image_data_uris(value)]
    if isinstance(obj, (bytes, bytearray, memoryview)):
        data = bytes(obj)
        mime = next((m for sig, m in _IMAGE_SIGNATURES.items() if data.startswith(sig)), None)
        if mime is None:
            raise ReportingError("A figure loaded as bytes that are neither PNG, JPEG nor GIF")
        return [f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"]
    buffer = io.BytesIO()
    if hasattr(obj, "savefig"):  # matplotlib Figure
        obj.savefig(buffer, format="png", dpi=110)
    else:
        from PIL import Image

        image = obj if isinstance(obj, Image.Image) else Image.fromarray(np.asarray(obj))
        image.save(buffer, format="PNG")
    return image_data_uris(buffer.getvalue())


_CSS = """
body { font-family: system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif; margin: 2em auto; max-width: 1700px;
       padding: 0 1em; color: #222; }
h1 { font-size: 1.6em; } h2 { margin-top: 2em; border-bottom: 1px solid #ccc; } h3 { font-size: 1.05em; }
.banner { background: #fff4d6; border: 1px solid #e0b84c; padding: 0.7em 1em; border-radius: 4px; }
.caption { color: #444; font-size: 0.9em; margin: 0.3em 0 0.8em 1.2em; }
.scroll { overflow-x: auto; }
table.results { border-collapse: collapse; font-size: 0.82em; margin-bottom: 1em; }
table.results th, table.results td { border: 1px solid #ccc; padding: 2px 5px; text-align: right; white-space: nowrap; }
table.results th { background: #f2f2f2; }
table.results td.label { text-align: left; } table.results th.group { text-align: center; }
table.results td.paper, table.results th.paper { background: #f4f6fa; color: #335; font-style: italic; }
table.results td.missing { color: #999; text-align: center; }
figure { margin: 1.5em 0; } figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { font-size: 0.9em; color: #444; }
"""


def block_html(block: pd.DataFrame, table_id: str) -> str:
    """A display block as an HTML table with a two-row header: ``group · who`` columns are grouped
    under ``group`` (a configuration, class or feature) with ``ours``/``paper`` below it."""
    split = [tuple(str(c).split(" · ", 1)) if " · " in str(c) else (str(c), None) for c in block.columns]
    groups: list[list[Any]] = []  # [name, is_label, count]
    for group, who in split:
        if who is not None and groups and not groups[-1][1] and groups[-1][0] == group:
            groups[-1][2] += 1
        else:
            groups.append([group, who is None, 1])
    top = [
        f'<th rowspan="2">{html.escape(name)}</th>' if is_label
        else f'<th colspan="{n}" class="group">{html.escape(name)}</th>'
        for name, is_label, n in groups
    ]
    kinds = ["label" if who is None else "paper" if who.startswith("paper") else "ours" for _, who in split]
    bottom = [f'<th class="{kind}">{html.escape(who)}</th>' for (_, who), kind in zip(split, kinds, strict=True)
              if who is not None]
    rows = []
    for values in block.itertuples(index=False):
        cells = []
        for kind, value in zip(kinds, values, strict=True):
            css = f"{kind} missing" if str(value) == MISSING else kind
            cells.append(f'<td class="{css}">{html.escape(str(value))}</td>')
        rows.append("<tr>" + "".join(cells) + "</tr>")
    header = "<tr>" + "".join(top) + "</tr>" + ("<tr>" + "".join(bottom) + "</tr>" if bottom else "")
    return (f'<table id="{table_id}" class="results"><thead>{header}</thead>'
            "<tbody>" + "".join(rows) + "</tbody></table>")


def _html_table_section(which: str, table: pd.DataFrame, decimals: int) -> str:
    info = TABLES[which]
    lines = table_caption(table, info["paper_table"], info["what"])
    caption = "".join(f"<li>{html.escape(line)}</li>" for line in lines)
    parts = [f'<section id="{which}" class="table-section">', f"<h2>{html.escape(info['title'])}</h2>",
             f'<ul class="caption">{caption}</ul>']
    for k, (title, block) in enumerate(info["blocks"](table, decimals)):
        table_html = block_html(block, f"{which}-{k + 1}")
        parts += [f"<h3>{html.escape(title)}</h3>", f'<div class="scroll">{table_html}</div>']
    parts.append("</section>")
    return "\n".join(parts)


def _html_figure(figure_id: str, caption: str, uris: list[str]) -> str:
    if not uris:
        text = f"{html.escape(caption)} — {MISSING} (no figure)"
        return f'<figure id="{figure_id}"><figcaption>{text}</figcaption></figure>'
    images = "\n".join(f'<img src="{uri}" alt="{html.escape(caption)}">' for uri in uris)
    return f'<figure id="{figure_id}">{images}<figcaption>{html.escape(caption)}</figcaption></figure>'


def build_html_report(
    table1: pd.DataFrame,
    table2: pd.DataFrame,
    table3: pd.DataFrame,
    chart1: Any,
    chart2: Any,
    chart3: Any,
    params: Mapping[str, Any],
    *figures: Any,
    figure_names: Sequence[str] = (),
) -> str:
    """One self-contained HTML page (figures inlined as base64): the three tables, a bar chart
    per task and the task figures (``figure_names`` gives the catalog names of ``figures``)."""
    decimals = int(params.get("decimals", 3))
    captions = dict(params.get("figures") or {})
    sources = sorted({_first(t, "source", "unknown") for t in (table1, table2, table3)})
    profiles = sorted({_first(t, "profile", "unspecified") for t in (table1, table2, table3)})
    source_text = "; ".join(f"{s}: {SOURCE_DESCRIPTIONS.get(s, s)}" for s in sources)
    warning = (
        "<p><strong>These are not results on the real MTNeuro dataset.</strong> Columns marked "
        f"“{html.escape(ours_label('phantom'))}” come from a synthetic stand-in volume; only the columns "
        f"marked “{PAPER_LABEL}” are the published results on the real data.</p>"
        if any("phantom" in s for s in sources) else ""
    )
    body = [
        "<h1>MTNeuro benchmark — results of this project beside the paper's</h1>",
        f'<div class="banner"><p><strong>Data source:</strong> {html.escape(source_text)}.<br>'
        f"<strong>Profile:</strong> {html.escape(', '.join(profiles))}.<br>"
        f"<strong>Paper:</strong> {html.escape(paper.CITATION)}.</p>{warning}</div>",
        '<nav><a href="#table1">Table 1</a> · <a href="#table2">Table 2</a> · <a href="#table3">Table 3</a> · '
        '<a href="#figures">Figures</a></nav>',
        _html_table_section("table1", table1, decimals),
        _html_table_section("table2", table2, decimals),
        _html_table_section("table3", table3, decimals),
        '<section id="figures"><h2>Figures</h2>',
        _html_figure("chart-task1", "Task 1: accuracy per method and configuration (bars: ours, mean ± std; "
                     f"◆: {PAPER_LABEL}).", image_data_uris(chart1)),
        _html_figure("chart-task2", "Task 2: mean F1 and IoU over classes per model and setting (bars: ours; "
                     f"◆: {PAPER_LABEL}).", image_data_uris(chart2)),
        _html_figure("chart-task3", "Task 3: in-sample R² per feature and method (bars: ours; "
                     f"◆: {PAPER_LABEL}).", image_data_uris(chart3)),
    ]
    if len(figure_names) != len(figures):
        raise ReportingError(f"{len(figures)} figure(s) for {len(figure_names)} name(s) {list(figure_names)}")
    for name, figure in zip(figure_names, figures, strict=True):
        caption = str(captions.get(name) or name)
        body.append(_html_figure(f"figure-{re.sub(r'[^A-Za-z0-9_-]', '-', name)}",
                                 f"{caption} ({ours_label(', '.join(sources))})", image_data_uris(figure)))
    body.append("</section>")
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>MTNeuro report — {html.escape(', '.join(sources))}</title>\n<style>{_CSS}</style>\n</head>\n"
        "<body>\n" + "\n".join(body) + "\n</body>\n</html>\n"
    )


def announce_report(report_html: str, params: Mapping[str, Any]) -> None:
    """Log (and print) where the report is; runs after the report was saved (it loads it)."""
    path = Path(str(params.get("report_path", "data/08_reporting/report.html"))).expanduser().resolve()
    size = len(report_html.encode("utf-8")) if report_html else 0
    message = f"MTNeuro report ({size / 1024:.0f} KiB): {path}"
    log.info(message)
    print(f"\nReport: {path}\n        {path.as_uri()}\n", flush=True)  # noqa: T201 - the user asked for it
