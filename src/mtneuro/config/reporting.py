"""The ``reporting`` parameter block (``conf/base/parameters_reporting.yml``)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, NonNegativeInt

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
