"""What the report prints for names: labels from the registries, and the report's fixed wording.

Method, model and feature labels are defined once, in their registries
(:mod:`mtneuro.classification_methods`, :mod:`mtneuro.segmentation_models`,
:mod:`mtneuro.features`); a name a registry does not know is printed as it is.
"""

from __future__ import annotations

from typing import Any

from mtneuro import features

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

#: Task 3 R^2 kinds: kind -> (column of the task table, label).
R2_KINDS: dict[str, tuple[str, str]] = {
    "in_sample": ("r2_in_sample", "in-sample"),
    "in_sample_noise": ("r2_in_sample_noise", "in-sample noise floor (Gaussian embedding, same D and N)"),
    "cv": ("r2_cv", "cross-validated"),
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
