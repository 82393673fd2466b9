"""The ``reporting`` parameter block (``conf/base/parameters_reporting.yml``)."""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import Field, NonNegativeInt, PositiveInt, model_validator

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
    #: Further tables (names in ``tables``) folded away in report.html (a details element).
    folded_tables: list[str] = Field(default_factory=list)
    #: Methods per row of the training-curve figure (a loss and an lr panel each).
    curve_columns: PositiveInt = 4
    #: Methods per row of the confusion-matrix figure (a panel per test configuration each).
    confusion_columns: PositiveInt = 9
    #: Legends drawn under a figure of ``figures``: catalog dataset -> brain-map layers.
    legends: dict[str, list[Literal["regions", "microstructure"]]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _names_are_shown(self) -> Self:
        """A folded table must be one of ``tables``, a legend's figure one of ``figures`` (a typo
        would silently do nothing)."""
        unknown = [n for n in self.folded_tables if n not in self.tables]
        if unknown:
            raise ValueError(f"folded_tables names {unknown}, not among reporting.tables {sorted(self.tables)}")
        unknown = [n for n in self.legends if n not in self.figures]
        if unknown:
            raise ValueError(f"legends names {unknown}, not among reporting.figures {sorted(self.figures)}")
        return self
