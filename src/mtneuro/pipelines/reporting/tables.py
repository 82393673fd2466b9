"""The paper's Tables 1-3 as numeric long tables: this project's statistics over seeds beside the
paper's numbers (:mod:`mtneuro.paper_results`), one row per table cell.

The task tables carry the registries' names (methods, models, features) and the configuration
names ``ROI-C1``..``ROI-C3``; rows follow the paper's order, then any other name seen. A cell
without any run (or a NaN metric in every seed) is missing -- NaN, never zero. Each cell carries
the mean over seeds, the sample standard deviation (ddof = 1, none for one seed), the smallest
and largest seed value (``ours_min``/``ours_max``) and ``ours_spread``, what the renderings show
as the seed scatter: the half range for up to :data:`RANGE_UP_TO_SEEDS` seeds (two seeds say
nothing about a standard deviation), else the std.

Table 2 has four metrics (:data:`TABLE2_METRICS`): F1 and IoU pooled over every test pixel of a
run, IoU averaged per image over the images where a class is present (this project's), and the
authors' IoU (smp per test sample, a class absent from a sample scoring 1; :mod:`mtneuro.metrics`).
Each is compared with the paper's number of the same definition only
(:data:`TABLE2_PAPER_METRIC`): the paper's F1 with the pooled F1, the paper's IoU with
``iou_authors``; the pooled and present-only IoUs have no paper value.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd

from mtneuro import paper_results as paper
from mtneuro import spec
from mtneuro.classification_methods import method_settings
from mtneuro.config.classification import ClassificationParameters
from mtneuro.config.ingestion import IngestionParameters
from mtneuro.config.probing import ProbingParameters
from mtneuro.config.segmentation import SegmentationParameters
from mtneuro.errors import MtneuroError
from mtneuro.segmentation_models import run_settings

from .labels import R2_KINDS, SEG_CLASS_LABELS, dims_label, feature_label, method_label, model_dims, model_label

log = logging.getLogger(__name__)

TABLE1_COLUMNS = [
    "source",
    "profile",
    "method",
    "method_label",
    "config",
    "metric",
    "n_seeds",
    "ours_mean",
    "ours_std",
    "ours_min",
    "ours_max",
    "ours_spread",
    "run_ci_halfwidth",
    "ci_level",
    "paper_mean",
    "paper_std",
]
TABLE2_COLUMNS = [
    "source",
    "profile",
    "dims",
    "model",
    "model_label",
    "setting",
    "metric",
    "class",
    "class_label",
    "n_seeds",
    "ours_mean",
    "ours_std",
    "ours_min",
    "ours_max",
    "ours_spread",
    "paper_mean",
    "paper_std",
]
TABLE3_COLUMNS = [
    "source",
    "profile",
    "train_config",
    "method",
    "method_label",
    "feature",
    "feature_label",
    "r2",
    "n_seeds",
    "ours_mean",
    "ours_std",
    "ours_min",
    "ours_max",
    "ours_spread",
    "paper_mean",
    "paper_std",
]

#: Table 2 metrics, in display order (columns of the Task 2 table).
TABLE2_METRICS: tuple[str, ...] = ("f1", "iou", "iou_per_image", "iou_authors")
#: The paper's metric of the same definition as each Table 2 metric (None: the paper has none).
#: The authors' code (scripts/task2_main.py) pools F1 over all pixels (line 276) but averages smp's
#: per-sample IoU, absent classes scoring 1 (lines 244-245, printed at line 280).
TABLE2_PAPER_METRIC: dict[str, str | None] = {"f1": "f1", "iou": None, "iou_per_image": None, "iou_authors": "iou"}

#: The paper's Table 3 column each feature is compared with (None: none). The authors label cells
#: in 3D over the whole cube before cutting images (MTNeuro annots/features.py, lines 19-20), so
#: the paper's cell columns sit beside the ``*_authors`` features; this project's per-image cells
#: (``cell_count``, ...) have no paper value of their definition.
TABLE3_PAPER_FEATURE: dict[str, str | None] = {
    "vessel_fraction": "vessel_fraction",
    "axon_fraction": "axon_fraction",
    "cell_count": None,
    "mean_cell_area": None,
    "mean_nn_distance": None,
    "cell_count_authors": "cell_count",
    "mean_cell_area_authors": "mean_cell_area",
    "mean_nn_distance_authors": "mean_nn_distance",
}
#: Table 3 rows in the paper's column order, each paper column next to the feature compared with it.
TABLE3_FEATURE_ORDER: tuple[str, ...] = (
    "vessel_fraction",
    "axon_fraction",
    "cell_count_authors",
    "mean_cell_area_authors",
    "mean_nn_distance_authors",
    "cell_count",
    "mean_cell_area",
    "mean_nn_distance",
)

#: Training set of each Task 1 configuration: ROI-C2 tests the ROI-C1 models on the extra cubes.
TABLE1_TRAIN_CONFIG: dict[str, str] = {"ROI-C1": "ROI-C1", "ROI-C2": "ROI-C1", "ROI-C3": "ROI-C3"}


class ReportingError(MtneuroError, ValueError):
    """A task table lacks what the reporting pipeline needs."""


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


#: Up to this many seeds a cell shows the seed values' range, not a standard deviation.
RANGE_UP_TO_SEEDS = 3


class SeedStats(NamedTuple):
    """One cell over seeds: count, mean, sample std, smallest and largest value, spread."""

    n: int
    mean: float
    std: float
    low: float
    high: float

    @property
    def spread(self) -> float:
        """Half the range for up to :data:`RANGE_UP_TO_SEEDS` seeds, else the std; NaN for < 2."""
        if self.n < 2:
            return float("nan")
        return (self.high - self.low) / 2 if self.n <= RANGE_UP_TO_SEEDS else self.std


NO_STATS = SeedStats(0, float("nan"), float("nan"), float("nan"), float("nan"))


def seed_stats(values: Iterable[float]) -> SeedStats:
    """(n, mean, sample std, min, max) over seeds, NaNs ignored; mean is NaN for no value, std for < 2."""
    arr = np.asarray([v for v in values if v is not None and np.isfinite(v)], dtype=float)
    if arr.size == 0:
        return NO_STATS
    std = float(arr.std(ddof=1)) if arr.size > 1 else float("nan")
    return SeedStats(int(arr.size), float(arr.mean()), std, float(arr.min()), float(arr.max()))


def _stats_lookup(frame: pd.DataFrame, keys: Sequence[str], value_column: str) -> dict[tuple, SeedStats]:
    if frame.empty:
        return {}
    return {
        (key if isinstance(key, tuple) else (key,)): seed_stats(group[value_column].to_numpy())
        for key, group in frame.groupby(list(keys), dropna=False, sort=False)
    }


def _cells(st: SeedStats) -> list[float]:
    """The table columns of one cell's statistics: n_seeds, ours_mean, ours_std, ours_min, ours_max, ours_spread."""
    return [st.n, st.mean, st.std, st.low, st.high, st.spread]


def _paper_pair(value: paper.PaperValue | None) -> tuple[float, float]:
    if value is None:
        return float("nan"), float("nan")
    return value.mean, (float("nan") if value.std is None else value.std)


def describe_source(runs: pd.DataFrame | None) -> str:
    """The ``source`` values of a task table, e.g. ``phantom`` (``unknown`` when absent)."""
    if runs is None or "source" not in runs.columns:
        return "unknown"
    values = sorted({str(v) for v in runs["source"].dropna()})
    return "+".join(values) if values else "unknown"


def _require(runs: pd.DataFrame, columns: Iterable[str], table: str) -> None:
    missing = [c for c in columns if c not in runs.columns]
    if missing and not runs.empty:
        raise ReportingError(f"The task table for {table} lacks the column(s) {missing}; it has {list(runs.columns)}.")


def _as_frame(runs: pd.DataFrame | None) -> pd.DataFrame:
    return pd.DataFrame() if runs is None else runs


# --- Table 1 ----------------------------------------------------------------------------------


def _paper_training_sets_only(frame: pd.DataFrame) -> pd.DataFrame:
    """Where the table says which training set a row's model had (``train_config``), keep only
    the pairs the paper reports (a ROI-C3 model tested on the ROI-C1 test split is no Table 1 cell)."""
    if "train_config" not in frame.columns:
        return frame
    train = frame["train_config"]
    expected = frame["config"].map(TABLE1_TRAIN_CONFIG)
    keep = expected.isna() | train.isna() | (train == expected)
    if not keep.all():
        log.info(
            "Table 1 leaves out %d row(s) whose training set is not the paper's for their test set", int((~keep).sum())
        )
    return frame[keep.to_numpy()]


def _run_intervals(runs: pd.DataFrame, metric: str) -> tuple[dict[tuple, float], float]:
    """Per (method, config): the mean over seeds of the half-width of each run's bootstrap
    interval of ``metric`` over its test images (columns ``<metric>_ci_low``/``_ci_high`` of the
    task table), and the intervals' level; empty and NaN where the table has none."""
    low, high = f"{metric}_ci_low", f"{metric}_ci_high"
    if runs.empty or low not in runs.columns or high not in runs.columns:
        return {}, float("nan")
    frame = _paper_training_sets_only(runs).copy()
    frame["_half"] = (pd.to_numeric(frame[high], errors="coerce") - pd.to_numeric(frame[low], errors="coerce")) / 2
    halves = _seed_values(frame, "_half", ["method", "config"])
    table = halves.groupby(["method", "config"], sort=False)["_half"].mean()
    level = float(pd.to_numeric(runs["ci_level"], errors="coerce").max()) if "ci_level" in runs else float("nan")
    return {key: float(v) for key, v in table.items()}, level


def table1(runs: pd.DataFrame | None, profile: str, metric: str) -> pd.DataFrame:
    """Task 1 ``metric``: one row per (method, configuration), ours (mean/std over seeds) and paper's."""
    runs = _as_frame(runs)
    _require(runs, ["method", "config"], "Table 1")
    source = describe_source(runs)
    if runs.empty or metric not in runs.columns:
        if not runs.empty:
            log.warning("Task 1 table has no column %r; Table 1 shows every run as missing", metric)
        frame = pd.DataFrame(columns=["method", "config", metric])
    else:
        frame = _paper_training_sets_only(runs)
        frame = _seed_values(frame, metric, ["method", "config"])
    stats = _stats_lookup(frame, ["method", "config"], metric)
    ci_halfwidth, ci_level = _run_intervals(runs, metric)
    methods = _ordered(paper.TABLE1_METHODS, frame["method"])
    configs = _ordered(paper.TABLE1_CONFIGS, frame["config"])
    rows = []
    for method in methods:
        for config in configs:
            st = stats.get((method, config), NO_STATS)
            p_mean, p_std = _paper_pair(paper.table1(method, config)) if metric == "accuracy" else (float("nan"),) * 2
            half = ci_halfwidth.get((method, config), float("nan"))
            head = [source, profile, method, method_label(method), config, metric]
            rows.append([*head, *_cells(st), half, ci_level, p_mean, p_std])
    return pd.DataFrame(rows, columns=TABLE1_COLUMNS)


# --- Table 2 ----------------------------------------------------------------------------------


def _with_dims(runs: pd.DataFrame) -> pd.DataFrame:
    """``dims`` as the paper's ``2D``/``3D``: the table's column, else the model registry's."""
    frame = runs.copy()
    frame["dims"] = frame["dims"].map(dims_label) if "dims" in frame.columns else frame["model"].map(model_dims)
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


def table2(runs: pd.DataFrame | None, profile: str) -> pd.DataFrame:
    """Task 2: one row per (dims, model, setting, metric, class or mean), ours and paper's.

    Metrics are :data:`TABLE2_METRICS`; the paper's columns hold the paper's number of the same
    definition (:data:`TABLE2_PAPER_METRIC`). A task table without a metric's column (an older
    output without ``iou_per_image``) gives that metric as missing."""
    runs = _as_frame(runs)
    _require(runs, ["model", "setting", "class"], "Table 2")
    source = describe_source(runs)
    if runs.empty:
        frame = pd.DataFrame(columns=["dims", "model", "setting", "class"])
    else:
        frame = _with_dims(runs)
    stats: dict[str, dict[tuple, SeedStats]] = {}
    for metric in TABLE2_METRICS:
        if metric in frame.columns:
            values = _segmentation_seed_values(frame, metric)
            stats[metric] = _stats_lookup(values, ["dims", "model", "setting", "class"], metric)
        else:
            if not runs.empty:
                log.warning("Task 2 table has no column %r; Table 2 shows it as missing", metric)
            stats[metric] = {}
    dims_list = _ordered(paper.TABLE2_DIMS, frame["dims"])
    settings = _ordered(paper.TABLE2_SETTINGS, frame["setting"])
    rows = []
    for dims in dims_list:
        models = _ordered(paper.TABLE2_MODELS.get(dims, ()), frame.loc[frame["dims"] == dims, "model"])
        for model in models:
            for setting in settings:
                seen = frame.loc[(frame["setting"] == setting) & (frame["class"] != "mean"), "class"]
                classes = [*_ordered(paper.SEG_CLASSES.get(setting, ()), seen), "mean"]
                labels = SEG_CLASS_LABELS.get(setting, {})
                for metric in TABLE2_METRICS:
                    paper_metric = TABLE2_PAPER_METRIC[metric]
                    for cls in classes:
                        st = stats[metric].get((dims, model, setting, cls), NO_STATS)
                        p_mean, p_std = _paper_pair(
                            None if paper_metric is None else paper.table2(dims, model, setting, paper_metric, cls)
                        )
                        rows.append(
                            [
                                source,
                                profile,
                                dims,
                                model,
                                model_label(model),
                                setting,
                                metric,
                                cls,
                                labels.get(cls, cls),
                                *_cells(st),
                                p_mean,
                                p_std,
                            ]
                        )
    return pd.DataFrame(rows, columns=TABLE2_COLUMNS)


# --- Table 3 ----------------------------------------------------------------------------------


def table3(runs: pd.DataFrame | None, profile: str) -> pd.DataFrame:
    """Task 3: one row per (encoder training configuration, method, feature, R^2 kind: in-sample,
    its noise floor, cross-validated); the paper's in-sample R^2 beside the feature of the same
    definition (:data:`TABLE3_PAPER_FEATURE`)."""
    runs = _as_frame(runs)
    _require(runs, ["method", "train_config", "feature"], "Table 3")
    source = describe_source(runs)
    frame = pd.DataFrame(columns=["method", "train_config", "feature"]) if runs.empty else runs
    keys = ["train_config", "method", "feature"]
    stats = {}
    for kind, (column, _) in R2_KINDS.items():
        if column in frame.columns:
            stats[kind] = _stats_lookup(_seed_values(frame, column, keys), keys, column)
        else:
            if not runs.empty:
                log.warning("Task 3 table has no column %r; Table 3 shows it as missing", column)
            stats[kind] = {}
    configs = _ordered(paper.TABLE3_CONFIGS, frame["train_config"])
    methods = _ordered(paper.TABLE3_METHODS, frame["method"])
    seen = set(frame["feature"])  # the paper's columns always; this project's own where probed
    preferred = [f for f in TABLE3_FEATURE_ORDER if f in seen or TABLE3_PAPER_FEATURE[f] is not None]
    features = _ordered(preferred, frame["feature"])
    rows = []
    for config in configs:
        for method in methods:
            for feature in features:
                for kind in R2_KINDS:
                    st = stats[kind].get((config, method, feature), NO_STATS)
                    paper_feature = TABLE3_PAPER_FEATURE.get(feature, feature)
                    p = (
                        paper.table3(config, method, paper_feature)
                        if kind == "in_sample" and paper_feature is not None
                        else None
                    )
                    p_mean, p_std = _paper_pair(p)
                    rows.append(
                        [
                            source,
                            profile,
                            config,
                            method,
                            method_label(method),
                            feature,
                            feature_label(feature),
                            kind,
                            *_cells(st),
                            p_mean,
                            p_std,
                        ]
                    )
    return pd.DataFrame(rows, columns=TABLE3_COLUMNS)


# --- the profile against the paper's settings ----------------------------------------------------

DEPARTURE_COLUMNS = ["profile", "setting", "paper", "this_profile", "departs", "parameter"]


def _values(values: Iterable[object]) -> str:
    """One value, or the distinct values of several runs (``8 / 24 / 40``), as text."""
    distinct = list(dict.fromkeys(str(v) for v in values))
    return " / ".join(distinct)


def profile_departures(
    classification: ClassificationParameters,
    segmentation: SegmentationParameters,
    probing: ProbingParameters,
    ingestion: IngestionParameters,
    profile: str,
) -> pd.DataFrame:
    """Every setting of :data:`mtneuro.paper_results.PAPER_SETTINGS` beside the active profile's
    value, read from the parsed parameters (so the table says what ran, not what a text claims),
    with ``departs`` where they differ and the parameter(s) that set it."""
    from mtneuro.classification_methods import get_method

    data = classification.data
    trained = [m for m in classification.methods if get_method(m).is_network and m != "random_encoder"]
    epochs = [getattr(method_settings(classification, m), "epochs", None) for m in trained]
    seg_runs = [run_settings(segmentation, m) for m in segmentation.models]
    seg_samples = [r.train.samples_per_epoch for r in seg_runs]
    size = int(ingestion.cube_size_yx)
    tile = probing.images.tile_size
    per_slice = 1 if tile is None else (size // int(tile)) ** 2
    tile_px = size if tile is None else int(tile)
    n_slices = len(range(0, 360, int(probing.images.slice_step)))
    probe_images = 4 * n_slices * per_slice
    unit = (
        f"whole {size}x{size} sections" if tile is None else f"{tile_px}x{tile_px} quadrants of {size}x{size} sections"
    )
    max_slices = segmentation.evaluation.max_slices_per_cube
    test_steps = {str(k): v for k, v in data.test_slice_step.items()}
    ours: dict[str, tuple[object, str]] = {
        "section size (pixels)": (size, "ingestion.cube_size_yx"),
        "Task 1 training slices: every k-th": (data.train_slice_step, "classification.data.train_slice_step"),
        **{
            f"Task 1 test slices: every k-th ({spec_label})": (
                test_steps.get(config, 1),
                f"classification.data.test_slice_step.{config}",
            )
            for config, spec_label in spec.CONFIG_LABELS.items()
        },
        "Task 1 network epochs": (
            _values(e for e in epochs if e is not None) or "—",
            "classification.network_training.epochs and the method blocks' epochs",
        ),
        "Task 1 seeds": (len(classification.seeds), "classification.seeds"),
        "Task 2 epochs": (_values(r.train.epochs for r in seg_runs), "segmentation.train.epochs (+ model_settings)"),
        "Task 2 training samples per epoch": (
            _values("every slice / subvolume" if s is None else s for s in seg_samples),
            "segmentation.train.samples_per_epoch (+ model_settings)",
        ),
        "Task 2 test slices scored per cube": (
            50 if max_slices is None else min(50, int(max_slices)),
            "segmentation.evaluation.max_slices_per_cube",
        ),
        "Task 2 seeds": (len(segmentation.seeds), "segmentation.seeds"),
        "Task 3 images (probing)": (
            f"{unit}, {probe_images}",
            "ingestion.cube_size_yx, probing.images.tile_size, probing.images.slice_step",
        ),
    }
    rows = []
    for setting, paper_value in paper.PAPER_SETTINGS.items():
        value, parameter = ours[setting]
        rows.append([profile, setting, str(paper_value), str(value), str(value) != str(paper_value), parameter])
    return pd.DataFrame(rows, columns=DEPARTURE_COLUMNS)
