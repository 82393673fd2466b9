"""The published MTNeuro results (Tables 1-3 of the paper), in one place, as typed constants.

Source: Quesada, Sathidevi, Liu, et al., "MTNeuro: A Benchmark for Evaluating Representations of
Brain Structure Across Multiple Levels of Abstraction" (NeurIPS 2022 Datasets and Benchmarks),
``shared/reference/mtneuro-paper.md``.  These numbers were obtained on the *real* prasad2020
volume; the reporting pipeline prints them beside this project's numbers, always labelled as the
paper's, and never as results of a run of this project.

Numbers are transcribed exactly as printed, including entries that do not agree with each other
(e.g. the 2D U-Net 4-class axon IoU of 0.60 next to an F1 of 0.94).  Where the paper prints no
standard deviation (PCA and NMF are deterministic; per-class entries of Table 2) ``std`` is None.

Keys are the names of the project's registries and task tables, so that nothing here defines a
name or a label a second time:

* methods (Tasks 1 and 3): the names of :mod:`mtneuro.classification_methods`;
* configurations: ``ROI-C1``, ``ROI-C2``, ``ROI-C3`` (the ``config`` column of the task tables);
* segmentation: dims ``2D``/``3D``, settings ``3-class``/``4-class``, models: the names of
  :mod:`mtneuro.segmentation_models`, classes ``background``, ``vessel``, ``cell``, ``axon`` (in
  the 3-class setting ``background`` is background + axons) and ``mean`` (the paper's "Avg.");
* probing features: the names of :mod:`mtneuro.features`.

Labels (the paper's row and column headers) come from those registries; the order of the rows
and columns of the paper's tables is the order of the keys below.
"""

from __future__ import annotations

from dataclasses import dataclass

CITATION = (
    "Quesada et al., MTNeuro: A Benchmark for Evaluating Representations of Brain Structure "
    "Across Multiple Levels of Abstraction, NeurIPS 2022 Datasets and Benchmarks"
)


@dataclass(frozen=True)
class PaperValue:
    """One published number: a mean over seeds and its standard deviation, if printed."""

    mean: float
    std: float | None = None


def _v(mean: float, std: float | None = None) -> PaperValue:
    return PaperValue(mean, std)


# --- the layout of the paper's tables ------------------------------------------------------

SEG_METRICS: tuple[str, ...] = ("f1", "iou")
#: Classes of each setting, in the paper's column order (without the mean).
SEG_CLASSES: dict[str, tuple[str, ...]] = {
    "3-class": ("background", "vessel", "cell"),
    "4-class": ("background", "vessel", "cell", "axon"),
}
#: Table 3 columns as printed, as feature names.
TABLE3_FEATURES: tuple[str, ...] = (
    "vessel_fraction",
    "axon_fraction",
    "cell_count",
    "mean_cell_area",
    "mean_nn_distance",
)


# --- Table 1: Task 1 accuracy, method -> configuration -> value --------------------------------

TABLE1_ACCURACY: dict[str, dict[str, PaperValue]] = {
    "supervised": {"ROI-C1": _v(0.88, 0.03), "ROI-C2": _v(0.77, 0.03), "ROI-C3": _v(0.88, 0.02)},
    "mixup": {"ROI-C1": _v(0.90, 0.04), "ROI-C2": _v(0.78, 0.03), "ROI-C3": _v(0.90, 0.02)},
    "byol": {"ROI-C1": _v(0.88, 0.02), "ROI-C2": _v(0.76, 0.02), "ROI-C3": _v(0.97, 0.01)},
    "myow": {"ROI-C1": _v(0.90, 0.02), "ROI-C2": _v(0.78, 0.05), "ROI-C3": _v(0.98, 0.01)},
    "myow_merged": {"ROI-C1": _v(0.94, 0.02), "ROI-C2": _v(0.78, 0.03), "ROI-C3": _v(0.98, 0.01)},
    "pca": {"ROI-C1": _v(0.59), "ROI-C2": _v(0.25), "ROI-C3": _v(0.07)},
    "nmf": {"ROI-C1": _v(0.62), "ROI-C2": _v(0.27), "ROI-C3": _v(0.50)},
}

#: Human experts naming the region of single images (6 classes, 180 images): accuracy range.
HUMAN_EXPERT_ACCURACY: tuple[float, float] = (0.78, 0.85)


# --- Table 2: Task 2 segmentation -------------------------------------------------------------
# dims -> model -> setting -> metric -> class -> value; per-class entries have no std, the
# "mean" entry (the paper's "Avg.") carries the std over seeds.


def _seg(per_class: tuple[float, ...], mean: float, std: float, setting: str) -> dict[str, PaperValue]:
    classes = SEG_CLASSES[setting]
    assert len(per_class) == len(classes), (per_class, setting)
    row = {c: _v(x) for c, x in zip(classes, per_class, strict=True)}
    row["mean"] = _v(mean, std)
    return row


def _model(
    f1_3: tuple[tuple[float, ...], float, float],
    iou_3: tuple[tuple[float, ...], float, float],
    f1_4: tuple[tuple[float, ...], float, float],
    iou_4: tuple[tuple[float, ...], float, float],
) -> dict[str, dict[str, dict[str, PaperValue]]]:
    return {
        "3-class": {"f1": _seg(*f1_3, "3-class"), "iou": _seg(*iou_3, "3-class")},
        "4-class": {"f1": _seg(*f1_4, "4-class"), "iou": _seg(*iou_4, "4-class")},
    }


# Rows as printed: (Bg + Axons, Vessels, Cells), Avg., std | (Bg, Vessels, Cells, Axons), Avg., std
TABLE2_SEGMENTATION: dict[str, dict[str, dict[str, dict[str, dict[str, PaperValue]]]]] = {
    "2D": {
        "unet": _model(
            ((0.99, 0.76, 0.85), 0.87, 0.012),
            ((0.98, 0.64, 0.75), 0.79, 0.014),
            ((0.97, 0.82, 0.87, 0.94), 0.90, 0.003),
            ((0.89, 0.70, 0.77, 0.60), 0.74, 0.008),
        ),
        "manet": _model(
            ((0.99, 0.79, 0.87), 0.88, 0.003),
            ((0.98, 0.68, 0.78), 0.81, 0.003),
            ((0.97, 0.83, 0.87, 0.94), 0.90, 0.002),
            ((0.89, 0.71, 0.78, 0.76), 0.78, 0.011),
        ),
        "fpn": _model(
            ((0.99, 0.72, 0.84), 0.85, 0.01),
            ((0.97, 0.59, 0.73), 0.76, 0.015),
            ((0.96, 0.73, 0.84, 0.93), 0.86, 0.004),
            ((0.87, 0.59, 0.72, 0.72), 0.72, 0.021),
        ),
        "unetplusplus": _model(
            ((0.99, 0.79, 0.87), 0.89, 0.002),
            ((0.98, 0.68, 0.78), 0.81, 0.002),
            ((0.97, 0.81, 0.85, 0.93), 0.89, 0.015),
            ((0.88, 0.68, 0.75, 0.73), 0.76, 0.036),
        ),
        "pan": _model(
            ((0.98, 0.60, 0.80), 0.79, 0.035),
            ((0.96, 0.46, 0.66), 0.69, 0.039),
            ((0.95, 0.69, 0.80, 0.93), 0.84, 0.007),
            ((0.85, 0.53, 0.67, 0.76), 0.70, 0.014),
        ),
        "pspnet": _model(
            ((0.97, 0.48, 0.74), 0.73, 0.013),
            ((0.94, 0.39, 0.61), 0.65, 0.043),
            ((0.94, 0.54, 0.71, 0.91), 0.78, 0.012),
            ((0.82, 0.38, 0.55, 0.74), 0.62, 0.015),
        ),
    },
    "3D": {
        "unet3d": _model(
            ((0.99, 0.77, 0.87), 0.88, 0.006),
            ((0.98, 0.65, 0.76), 0.80, 0.007),
            ((0.93, 0.76, 0.80, 0.87), 0.84, 0.032),
            ((0.81, 0.62, 0.67, 0.50), 0.65, 0.045),
        ),
        "vnet": _model(
            ((0.99, 0.75, 0.83), 0.85, 0.012),
            ((0.97, 0.61, 0.70), 0.76, 0.013),
            ((0.90, 0.65, 0.73, 0.76), 0.76, 0.063),
            ((0.78, 0.46, 0.58, 0.43), 0.56, 0.061),
        ),
        "highresnet": _model(
            ((0.99, 0.74, 0.84), 0.85, 0.019),
            ((0.97, 0.61, 0.72), 0.77, 0.026),
            ((0.89, 0.51, 0.73, 0.77), 0.72, 0.083),
            ((0.73, 0.35, 0.58, 0.42), 0.52, 0.075),
        ),
    },
}


# --- Table 3: Task 3 in-sample R^2, encoder training configuration -> method -> feature -------


def _r2(*values: PaperValue) -> dict[str, PaperValue]:
    return dict(zip(TABLE3_FEATURES, values, strict=True))


TABLE3_R2_IN_SAMPLE: dict[str, dict[str, dict[str, PaperValue]]] = {
    "ROI-C1": {
        "supervised": _r2(_v(0.77, 0.06), _v(0.94, 0.01), _v(0.67, 0.06), _v(0.61, 0.05), _v(0.48, 0.05)),
        "mixup": _r2(_v(0.82, 0.02), _v(0.95, 0.00), _v(0.71, 0.02), _v(0.67, 0.03), _v(0.47, 0.02)),
        "byol": _r2(_v(0.85, 0.01), _v(0.94, 0.01), _v(0.75, 0.01), _v(0.69, 0.01), _v(0.49, 0.01)),
        "myow": _r2(_v(0.85, 0.01), _v(0.94, 0.01), _v(0.74, 0.01), _v(0.69, 0.01), _v(0.50, 0.02)),
        "myow_merged": _r2(_v(0.87, 0.01), _v(0.95, 0.01), _v(0.77, 0.01), _v(0.69, 0.01), _v(0.51, 0.01)),
        "pca": _r2(_v(0.75), _v(0.82), _v(0.55), _v(0.47), _v(0.31)),
        "nmf": _r2(_v(0.81), _v(0.85), _v(0.59), _v(0.55), _v(0.34)),
    },
    "ROI-C3": {
        "supervised": _r2(_v(0.79, 0.02), _v(0.94, 0.02), _v(0.73, 0.02), _v(0.63, 0.04), _v(0.49, 0.02)),
        "mixup": _r2(_v(0.75, 0.04), _v(0.88, 0.04), _v(0.64, 0.04), _v(0.54, 0.07), _v(0.37, 0.05)),
        "byol": _r2(_v(0.88, 0.00), _v(0.96, 0.00), _v(0.79, 0.00), _v(0.73, 0.01), _v(0.53, 0.02)),
        "myow": _r2(_v(0.88, 0.01), _v(0.96, 0.00), _v(0.79, 0.01), _v(0.72, 0.01), _v(0.52, 0.01)),
        "myow_merged": _r2(_v(0.87, 0.01), _v(0.96, 0.01), _v(0.78, 0.01), _v(0.72, 0.01), _v(0.53, 0.01)),
        "pca": _r2(_v(0.75), _v(0.82), _v(0.53), _v(0.46), _v(0.29)),
        "nmf": _r2(_v(0.75), _v(0.83), _v(0.56), _v(0.49), _v(0.31)),
    },
}


# --- rows and columns of the tables, in the paper's order (derived from the numbers) ------------

TABLE1_METHODS: tuple[str, ...] = tuple(TABLE1_ACCURACY)
TABLE1_CONFIGS: tuple[str, ...] = tuple(TABLE1_ACCURACY[TABLE1_METHODS[0]])
TABLE2_DIMS: tuple[str, ...] = tuple(TABLE2_SEGMENTATION)
TABLE2_MODELS: dict[str, tuple[str, ...]] = {dims: tuple(models) for dims, models in TABLE2_SEGMENTATION.items()}
TABLE2_SETTINGS: tuple[str, ...] = tuple(SEG_CLASSES)
TABLE3_CONFIGS: tuple[str, ...] = tuple(TABLE3_R2_IN_SAMPLE)
TABLE3_METHODS: tuple[str, ...] = tuple(TABLE3_R2_IN_SAMPLE[TABLE3_CONFIGS[0]])


# --- look-ups ---------------------------------------------------------------------------------


def table1(method: str, config: str) -> PaperValue | None:
    """The paper's Task 1 accuracy, or None where the paper has no such entry."""
    return TABLE1_ACCURACY.get(method, {}).get(config)


def table2(dims: str, model: str, setting: str, metric: str, cls: str) -> PaperValue | None:
    """The paper's Task 2 F1/IoU of one class (or ``mean``), or None where it has none."""
    return TABLE2_SEGMENTATION.get(dims, {}).get(model, {}).get(setting, {}).get(metric, {}).get(cls)


def table3(train_config: str, method: str, feature: str) -> PaperValue | None:
    """The paper's Task 3 in-sample R^2, or None where it has none (it reports no CV R^2)."""
    return TABLE3_R2_IN_SAMPLE.get(train_config, {}).get(method, {}).get(feature)


# --- the paper's settings (what a profile is compared with) ------------------------------------
# The paper's protocol (shared/reference/benchmark-spec.md; the authors' task and network
# configs): 256 x 256 sections of the four 360-slice main cubes, every slice, 5 seeds, 100 epochs
# for Task 1 networks, 20 for Task 2, every test slice scored, Task 3 on the 128 x 128 quadrants
# of every slice (4 x 360 x 4 = 5760 images). Keys name the setting; values are as the paper has them.

PAPER_SETTINGS: dict[str, int | str] = {
    "section size (pixels)": 256,
    "Task 1 training slices: every k-th": 1,
    "Task 1 test slices: every k-th (ROI-C1)": 1,
    "Task 1 test slices: every k-th (ROI-C2)": 1,
    "Task 1 test slices: every k-th (ROI-C3)": 1,
    "Task 1 network epochs": 100,
    "Task 1 seeds": 5,
    "Task 2 epochs": 20,
    "Task 2 training samples per epoch": "every slice / subvolume",
    "Task 2 test slices scored per cube": 50,
    "Task 2 seeds": 5,
    "Task 3 images (probing)": "128x128 quadrants of 256x256 sections, 5760",
}
