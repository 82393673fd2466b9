"""Facts of the MTNeuro benchmark that never change between runs.

Everything a user may want to tune (cube sizes, which source, mapping of label values) lives in
``conf/``; this module holds only the published facts those parameters default to, so that code
and tests agree on one definition.  Index order everywhere: ``[z, y, x]``.
"""

from __future__ import annotations

VOLUME_SHAPE: tuple[int, int, int] = (720, 1420, 5805)
VOXEL_SIZE_UM: tuple[float, float, float] = (1.17, 1.17, 1.17)

#: Task classes of Task 1, in class-index order.
REGIONS: tuple[str, ...] = ("CTX", "STR", "VP", "ZI")
REGION_INDEX: dict[str, int] = {name: i for i, name in enumerate(REGIONS)}

#: Full names of the Task 1 regions (legends of the region map).
REGION_NAMES: dict[str, str] = {
    "CTX": "cortex",
    "STR": "striatum",
    "VP": "ventral posterior thalamus",
    "ZI": "zona incerta",
}
#: RGBA colour of each Task 1 region in the brain map and its legends.
REGION_COLOURS: dict[str, tuple[int, int, int, int]] = {
    "CTX": (230, 159, 0, 255),
    "STR": (86, 180, 233, 255),
    "VP": (0, 158, 115, 255),
    "ZI": (204, 121, 167, 255),
}

#: Split-index configurations of Task 1/3 and their names in result tables.
CONFIG_LABELS: dict[str, str] = {"roi_c1": "ROI-C1", "roi_c2": "ROI-C2", "roi_c3": "ROI-C3"}

#: Values of the microstructure (pixel_labels) channel.
BACKGROUND, VESSEL, CELL, AXON = 0, 1, 2, 3
PIXEL_CLASSES: dict[int, str] = {0: "background", 1: "vessel", 2: "cell", 3: "axon"}
#: RGBA colour of each microstructure value in the brain map and its legends (background clear).
PIXEL_COLOURS: dict[int, tuple[int, int, int, int]] = {
    0: (0, 0, 0, 0),
    1: (220, 40, 40, 255),
    2: (40, 200, 60, 255),
    3: (60, 90, 230, 255),
}

#: Task 2 label settings: name -> (name in result tables, class names, class index of each
#: pixel_labels value). In the 3-class setting "background" is background + myelinated axons.
LABEL_SETTINGS: dict[str, tuple[str, tuple[str, ...], tuple[int, ...]]] = {
    "seg_3class": ("3-class", ("background", "vessel", "cell"), (0, 1, 2, 0)),
    "seg_4class": ("4-class", ("background", "vessel", "cell", "axon"), (0, 1, 2, 3)),
}

#: Brain-area values of the dataset's roi_labels annotation (Prasad et al. 2020). The phantom
#: writes these values; which values map to which Task 1 class is a parameter
#: (``volume.region_label_values``), defaulting to the authors' groupings {0,1} CTX, {2,8} STR,
#: {3,4} VP, {5,6,7} ZI (MTNeuro/bossdbdataset.py, lines 225-234).
BRAIN_AREA_VALUES: dict[str, int] = {
    "unlabeled": 0,
    "CTX": 1,
    "STR": 2,
    "TRN": 3,
    "VP": 4,
    "ZI": 5,
    "internal_capsule": 6,
    "hypothalamus": 7,
    "corpus_callosum": 8,
}

#: The four densely labelled main cubes: region -> ((z0, z1), (y0, y1), (x0, x1)), half-open.
MAIN_CUBES: dict[str, tuple[tuple[int, int], tuple[int, int], tuple[int, int]]] = {
    "CTX": ((110, 470), (900, 1156), (4600, 4856)),
    "STR": ((110, 470), (500, 756), (3700, 3956)),
    "VP": ((110, 470), (850, 1106), (3063, 3319)),
    "ZI": ((110, 470), (650, 906), (1543, 1799)),
}

#: Slice splits of the main cubes, absolute z, half-open (authors' task files).
SPLITS_Z: dict[str, tuple[int, int]] = {
    "train": (110, 380),
    "val": (380, 410),
    "test": (420, 470),
}

DEFAULT_URIS: dict[str, str] = {
    "image": "bossdb://prasad/prasad2020/image",
    "roi_labels": "bossdb://prasad/prasad_analysis/roi_labels",
    "pixel_labels": "bossdb://prasad/prasad_analysis/pixel_labels",
}
PHANTOM_URIS: dict[str, str] = {
    "image": "phantom://prasad2020/image",
    "roi_labels": "phantom://prasad2020/roi_labels",
    "pixel_labels": "phantom://prasad2020/pixel_labels",
}
