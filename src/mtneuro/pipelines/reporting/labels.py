"""What the report prints for names: labels from the registries, and the report's fixed wording.

Method, model and feature labels are defined once, in their registries
(:mod:`mtneuro.classification_methods`, :mod:`mtneuro.segmentation_models`,
:mod:`mtneuro.features`); a name a registry does not know is printed as it is.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

from mtneuro import features, spec

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

#: Labels of the Task 2 metrics (columns of the task table), saying how each is averaged: the
#: authors' code pools F1 over all test pixels but averages smp's IoU per test sample, a class
#: absent from a sample scoring 1 (scripts/task2_main.py, lines 212-245 and 280).
SEG_METRIC_LABELS: dict[str, str] = {
    "f1": "F1 (pooled, as the authors' code)",
    "iou": "IoU (pooled)",
    "iou_per_image": "IoU (per slice, present classes only)",
    "iou_authors": "IoU (per sample, absent = 1, as the authors' code)",
}
SEG_CLASS_LABELS: dict[str, dict[str, str]] = {
    "3-class": {"background": "Bg + Axons", "vessel": "Vessels", "cell": "Cells", "mean": "Avg."},
    "4-class": {"background": "Bg", "vessel": "Vessels", "cell": "Cells", "axon": "Axons", "mean": "Avg."},
}

#: The same metrics in a word or two, for the report's narrow Metric column (its caption gives
#: the long labels above).
SEG_METRIC_SHORT_LABELS: dict[str, str] = {
    "f1": "F1",
    "iou": "IoU pooled",
    "iou_per_image": "IoU per slice",
    "iou_authors": "IoU (authors')",
}

#: Task 3 R^2 kinds: kind -> (column of the task table, label).
R2_KINDS: dict[str, tuple[str, str]] = {
    "in_sample": ("r2_in_sample", "in-sample"),
    "in_sample_noise": ("r2_in_sample_noise", "in-sample noise floor (Gaussian embedding, same D and N)"),
    "cv": ("r2_cv", "cross-validated"),
}
#: The same kinds in a word or two (the report's R² column).
R2_SHORT_LABELS: dict[str, str] = {"in_sample": "in-sample", "in_sample_noise": "noise floor", "cv": "cross-validated"}

#: Figure-panel names of the methods whose registry label is a sentence.
SHORT_METHOD_LABELS: dict[str, str] = {
    "intensity_baseline": "Gray-level stats + LR",
    "random_encoder": "Random encoder",
}


def ours_label(source: str) -> str:
    return f"ours ({source})"


def method_label(name: str) -> str:
    """The label of a Task 1 method (``get_method(name).label``)."""
    from mtneuro.classification_methods import get_method, method_names

    return get_method(name).label if name in method_names() else name


def model_label(name: str) -> str:
    """The label of a segmentation model (``get_model(name).label``)."""
    from mtneuro.segmentation_models import get_model, model_names

    return get_model(name).label if name in model_names() else name


def dims_label(dims: Any) -> str:
    """``2``, ``"2"``, ``"2D"`` -> ``2D`` (the paper's keys)."""
    text = str(dims).strip().upper()
    return text if text.endswith("D") else f"{int(float(text))}D"


def model_dims(name: str) -> str:
    """``2D`` or ``3D``: the dimensionality the segmentation registry gives the model."""
    from mtneuro.segmentation_models import get_model

    return dims_label(get_model(name).dims)


def feature_label(name: str) -> str:
    """The report label of a semantic feature (``mtneuro.features.get_feature(name).label``)."""
    return features.get_feature(name).label if name in features.feature_names() else name


def short_method_label(name: str) -> str:
    """A Task 1 method's name for a small figure panel: :data:`SHORT_METHOD_LABELS`, else its label."""
    return SHORT_METHOD_LABELS.get(name) or method_label(name)


def config_label(name: str) -> str:
    """``roi_c1`` -> ``ROI-C1`` (:data:`mtneuro.spec.CONFIG_LABELS`); other names as they are."""
    return spec.CONFIG_LABELS.get(name, name)


@cache
def _setting_labels() -> dict[str, str]:
    from mtneuro.pipelines.segmentation.nodes import SETTINGS

    return {name: setting.label for name, setting in SETTINGS.items()}


@cache
def _name_labels() -> dict[str, str]:
    """Every internal name a report cell may carry -> its display name."""
    from mtneuro.classification_methods import method_names
    from mtneuro.segmentation_models import model_names

    names = {n: method_label(n) for n in method_names()}
    names.update({n: model_label(n) for n in model_names()})
    names.update(_setting_labels())
    names.update(spec.CONFIG_LABELS)
    return names


_RUN_KEY = re.compile(r"\b([a-z0-9_]+)\.([a-z0-9_]+)\.seed(\d+)\b")
_WORD = re.compile(r"\b[a-z][a-z0-9_]*\b")


def display_text(text: str) -> str:
    """A table cell with the display names of the internal ones it names: run keys
    (``myow_merged.roi_c1.seed0`` -> ``MYOW-m, ROI-C1, seed 0``), methods, models, label
    settings and configurations (``unetplusplus, seg_4class`` -> ``U-Net++, 4-class``)."""
    names = _name_labels()

    def run_key(match: re.Match[str]) -> str:
        method, config, seed = match.groups()
        if method not in names:
            return match.group(0)
        return f"{names[method]}, {names.get(config, config)}, seed {seed}"

    text = _RUN_KEY.sub(run_key, text)
    return _WORD.sub(lambda m: names.get(m.group(0), m.group(0)), text)


#: Titles of the brain-map legends (:func:`legend`).
LEGEND_TITLES: dict[str, str] = {"regions": "Region map (Task 1)", "microstructure": "Microstructure map (Task 2)"}


def legend(kind: str) -> list[tuple[str, str]]:
    """(label, CSS colour) of each value of a brain-map layer (``regions``, ``microstructure``),
    in the colours the brain map is drawn with (:mod:`mtneuro.pipelines.mapping.engine`)."""
    from mtneuro.pipelines.mapping import engine

    def css(rgba: tuple[int, int, int, int]) -> str:
        return "#{:02x}{:02x}{:02x}".format(*rgba[:3])

    if kind == "regions":
        return [
            (f"{value} {name} ({spec.REGION_NAMES.get(name, name)})", css(spec.REGION_COLOURS[name]))
            for value, name in engine.REGION_LABELS.items()
        ]
    if kind == "microstructure":
        return [
            (f"{value} {name}", css(spec.PIXEL_COLOURS[value]))
            for value, name in spec.PIXEL_CLASSES.items()
            if value in spec.PIXEL_COLOURS and spec.PIXEL_COLOURS[value][3]
        ]
    raise ValueError(f"Unknown legend {kind!r}; choose from ['microstructure', 'regions']")
