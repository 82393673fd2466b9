"""Reporting nodes: pure functions from the three task tables to the paper's tables and a report.

Every table is first built as a *numeric* long table (the CSV written to ``08_reporting``), one
row per table cell, with this project's mean and standard deviation over seeds beside the
paper's number (:mod:`.tables`, :mod:`mtneuro.paper_results`).  The Markdown files
(:mod:`.formatting`), the bar charts (:mod:`.charts`) and the HTML report (:mod:`.html`, a
Jinja2 template) are renderings of those numeric tables, so that they always agree.

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

import logging
from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from mtneuro.config.classification import ClassificationParameters
from mtneuro.config.ingestion import IngestionParameters
from mtneuro.config.probing import ProbingParameters
from mtneuro.config.reporting import ReportingParameters
from mtneuro.config.segmentation import SegmentationParameters
from mtneuro.config.volume import VolumeParameters

from . import tables
from .charts import confusion_matrices_figure, task1_chart, task2_chart, task3_chart, training_curves_figure
from .formatting import render_departures, render_markdown
from .html import render_report
from .tables import ReportingError

log = logging.getLogger(__name__)

__all__ = [
    "ReportingError",
    "build_html_report",
    "build_profile_departures",
    "build_table1",
    "build_table2",
    "build_table3",
    "compare_phantom_to_real",
    "draw_confusion_matrices",
    "draw_task2_training_curves",
    "draw_training_curves",
    "make_report_builder",
    "paper_tables_markdown",
    "table1_markdown",
    "table2_markdown",
    "table3_markdown",
    "task1_chart",
    "task2_chart",
    "task3_chart",
]


def build_table1(task1: pd.DataFrame, reporting: ReportingParameters) -> pd.DataFrame:
    """Table 1: Task 1 ``reporting.task1_metric`` per (method, configuration), ours and paper's."""
    return tables.table1(task1, reporting.profile, reporting.task1_metric)


def build_table2(task2: pd.DataFrame, reporting: ReportingParameters) -> pd.DataFrame:
    """Table 2: per-class and mean F1/IoU per (dims, model, setting), ours and paper's."""
    return tables.table2(task2, reporting.profile)


def build_table3(task3: pd.DataFrame, reporting: ReportingParameters) -> pd.DataFrame:
    """Table 3: in-sample and cross-validated R^2 per (training set, method, feature), ours and paper's."""
    return tables.table3(task3, reporting.profile)


def table1_markdown(table: pd.DataFrame, reporting: ReportingParameters) -> str:
    return render_markdown(table, "table1", reporting.decimals)


def table2_markdown(table: pd.DataFrame, reporting: ReportingParameters) -> str:
    return render_markdown(table, "table2", reporting.decimals)


def table3_markdown(table: pd.DataFrame, reporting: ReportingParameters) -> str:
    return render_markdown(table, "table3", reporting.decimals)


def build_profile_departures(
    classification: ClassificationParameters,
    segmentation: SegmentationParameters,
    probing: ProbingParameters,
    ingestion: IngestionParameters,
    reporting: ReportingParameters,
) -> pd.DataFrame:
    """The active profile's settings beside the paper's, from the parsed parameters
    (:func:`.tables.profile_departures`)."""
    return tables.profile_departures(classification, segmentation, probing, ingestion, reporting.profile)


def paper_tables_markdown(
    table1: pd.DataFrame,
    table2: pd.DataFrame,
    table3: pd.DataFrame,
    reporting: ReportingParameters,
    departures: pd.DataFrame | None = None,
) -> str:
    """Tables 1-3 beside the paper's, as one Markdown document (one file to paste or diff),
    opened by the settings in which the profile departs from the paper (``departures``)."""
    parts = [table1_markdown(table1, reporting), table2_markdown(table2, reporting), table3_markdown(table3, reporting)]
    if departures is not None:
        parts.insert(0, render_departures(departures))
    return "\n\n".join(part.strip() for part in parts) + "\n"


def compare_phantom_to_real(volume: VolumeParameters) -> tuple[pd.DataFrame, Figure]:
    """The phantom beside the real section it is calibrated on (crops, histograms, statistics;
    :mod:`mtneuro.pipelines.reporting.calibration`), so that a report on the phantom says how far its data are
    from real. Other sources get a one-row table saying the comparison does not apply."""
    from mtneuro.pipelines.reporting import calibration

    if volume.source != "phantom":
        note = f"volume.source is {volume.source!r}: the phantom-vs-real comparison applies to the phantom only"
        figure = Figure(figsize=(6, 1))
        figure.text(0.5, 0.5, note, ha="center", va="center", wrap=True)
        return pd.DataFrame({"statistic": ["not applicable"], "description": [note]}), figure
    reference = calibration.load_reference()
    real = calibration.samples_from_reference(reference)
    phantom = calibration.phantom_samples(seed=int(volume.source_options().get("seed", 0)))
    table = calibration.phantom_vs_real_table(phantom, real, reference.palette)
    log.info(
        "Phantom vs real section: %d of %d statistics within %.0f%%",
        int(table["within_tolerance"].sum()),
        len(table),
        100 * calibration.TOLERANCE,
    )
    return table, calibration.plot_phantom_vs_real(phantom, real, table, reference.palette)


def draw_confusion_matrices(matrices: pd.DataFrame, reporting: ReportingParameters) -> Figure:
    """Task 1's confusion matrices (``task1_confusion_matrices``), a panel per method and test
    configuration (:func:`.charts.confusion_matrices_figure`)."""
    return confusion_matrices_figure(matrices, reporting.confusion_columns, reporting.profile)


def draw_training_curves(histories: pd.DataFrame, reporting: ReportingParameters) -> Figure:
    """Every Task 1 run's loss and learning rate per epoch (``task1_training_histories``;
    :func:`.charts.training_curves_figure`)."""
    return training_curves_figure(histories, reporting.curve_columns, reporting.profile, task=1)


def draw_task2_training_curves(histories: pd.DataFrame, reporting: ReportingParameters) -> Figure:
    """Every Task 2 run's loss and learning rate per epoch (``task2_training_histories``), drawn
    as Task 1's (:func:`.charts.training_curves_figure`): a panel pair per model, a line per
    label setting and seed."""
    return training_curves_figure(histories, reporting.curve_columns, reporting.profile, task=2)


def build_html_report(
    table1: pd.DataFrame,
    table2: pd.DataFrame,
    table3: pd.DataFrame,
    chart1: Any,
    chart2: Any,
    chart3: Any,
    reporting: ReportingParameters,
    *extras: Any,
    figure_names: Sequence[str],
    table_names: Sequence[str] = (),
) -> str:
    """One self-contained HTML page (figures inlined as base64): the three tables, a bar chart
    per task, the further tables and the task figures. ``extras`` are the figures
    (``figure_names``, catalog names) followed by the further tables (``table_names``)."""
    if len(figure_names) + len(table_names) != len(extras):
        raise ReportingError(
            f"{len(extras)} figure(s)/table(s) for the names {list(figure_names)} + {list(table_names)}"
        )
    figures, further = extras[: len(figure_names)], extras[len(figure_names) :]
    for name, table in zip(table_names, further, strict=True):
        if not isinstance(table, pd.DataFrame):
            raise ReportingError(f"reporting.tables: {name!r} loaded as {type(table).__name__}, not a table")
    return render_report(
        table1,
        table2,
        table3,
        (chart1, chart2, chart3),
        dict(zip(figure_names, figures, strict=True)),
        reporting.figures,
        reporting.decimals,
        further_tables=dict(zip(table_names, further, strict=True)),
        table_captions=reporting.tables,
        primary_rows={"table2": reporting.table2_metric, "table3": reporting.table3_r2},
        folded_tables=reporting.folded_tables,
        legends=reporting.legends,
    )


def make_report_builder(figure_names: Sequence[str], table_names: Sequence[str] = ()) -> Callable[..., str]:
    """:func:`build_html_report` bound to the catalog names of the figures and further tables it shows."""
    figures, tables_ = tuple(figure_names), tuple(table_names)

    def build_report(
        table1: pd.DataFrame,
        table2: pd.DataFrame,
        table3: pd.DataFrame,
        chart1: Any,
        chart2: Any,
        chart3: Any,
        reporting: ReportingParameters,
        *extras: Any,
    ) -> str:
        return build_html_report(
            table1,
            table2,
            table3,
            chart1,
            chart2,
            chart3,
            reporting,
            *extras,
            figure_names=figures,
            table_names=tables_,
        )

    return build_report
