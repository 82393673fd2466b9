"""The ``reporting`` parameter block (``conf/base/parameters_reporting.yml``)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, NonNegativeInt, PositiveInt

from mtneuro.config.base import StrictModel


class ReportingParameters(StrictModel):
    """How the paper's tables and ``report.html`` are rendered."""

    #: Stated with every table and in report.html: which settings produced the numbers.
    profile: Annotated[str, Field(min_length=1)]
    #: Where report.html is written (the catalog's ``report_html``); the last node prints it.
    report_path: Annotated[str, Field(min_length=1)]
    #: Task 1 column shown in Table 1 (the paper reports accuracy only).
    task1_metric: Literal["accuracy", "balanced_accuracy"]
    #: Decimals of this project's numbers (the paper's are printed as published).
    decimals: Annotated[NonNegativeInt, Field(le=12)]
    #: Task figures inlined in report.html: catalog dataset -> caption.
    figures: dict[str, Annotated[str, Field(min_length=1)]]
    #: Further tables shown in report.html (after Tables 1-3): catalog dataset (a DataFrame) -> caption.
    tables: dict[str, Annotated[str, Field(min_length=1)]]
    #: report.html shows one metric row per model, this one; the others behind a toggle.
    #: (Defaults: conf/base's, for blocks built in code.)
    table2_metric: Literal["f1", "iou", "iou_per_image", "iou_authors"] = "f1"
    #: The same for Table 3's R² kinds.
    table3_r2: Literal["in_sample", "in_sample_noise", "cv"] = "in_sample"
    #: A further table longer than this many rows is folded away (a details element).
    fold_rows: PositiveInt = 20
    #: Methods per row of the training-curve figure (a loss and an lr panel each).
    curve_columns: PositiveInt = 4
    #: Methods per row of the confusion-matrix figure (a panel per test configuration each).
    confusion_columns: PositiveInt = 9
    #: Legends drawn under a figure of ``figures``: catalog dataset -> brain-map layers.
    legends: dict[str, list[Literal["regions", "microstructure"]]] = Field(default_factory=dict)
