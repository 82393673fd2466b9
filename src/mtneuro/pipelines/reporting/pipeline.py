"""Reporting pipeline wiring.

Inputs: the task tables ``task1_region_classification``, ``task2_segmentation``,
``task3_probing``, Task 1's ``task1_confusion_matrices`` and ``task1_training_histories``, Task 2's
``task2_training_histories`` and the task figures named in ``reporting.figures`` (catalog name -> caption;
each must load to PNG bytes, a Figure or an image, e.g. ``mtneuro.datasets.html_report.FigureDataset``).
Outputs (``08_reporting``): ``table{1,2,3}_*`` (CSV), ``paper_tables_md`` (Tables 1-3 in Markdown),
``task{1,2,3}_*_chart`` (PNG bar charts), ``task1_confusion_matrices_figure`` and
``task{1,2}_training_curves`` (PNG, one chart function for both), ``phantom_vs_real`` (CSV and PNG: the phantom
beside the real section it is calibrated on) and ``report_html``, all in namespace ``reporting``.
The console hook (:mod:`mtneuro.console`) prints where the report is at the end of the run.
"""

from __future__ import annotations

from collections.abc import Iterable

from kedro.pipeline import Node, Pipeline

from mtneuro.config import ProjectParameters

from . import nodes


def build_pipeline(figure_names: Iterable[str], table_names: Iterable[str] = ()) -> Pipeline:
    """The reporting pipeline inlining the task figures ``figure_names`` and showing the further
    tables ``table_names`` (catalog datasets)."""
    names, tables = list(figure_names), list(table_names)
    params = "params:reporting"
    return Pipeline(
        [
            Node(
                nodes.build_table1,
                ["task1_region_classification", params],
                "table1_region_classification",
                name="build_table1",
                namespace="reporting",
            ),
            Node(
                nodes.build_table2,
                ["task2_segmentation", params],
                "table2_segmentation",
                name="build_table2",
                namespace="reporting",
            ),
            Node(
                nodes.build_table3,
                ["task3_probing", params],
                "table3_probing",
                name="build_table3",
                namespace="reporting",
            ),
            Node(
                nodes.build_profile_departures,
                [
                    "params:classification",
                    "params:segmentation",
                    "params:probing",
                    "params:ingestion",
                    params,
                ],
                "profile_departures",
                name="compare_profile_to_paper",
                namespace="reporting",
            ),
            Node(
                nodes.paper_tables_markdown,
                ["table1_region_classification", "table2_segmentation", "table3_probing", params, "profile_departures"],
                "paper_tables_md",
                name="render_paper_tables_markdown",
                namespace="reporting",
            ),
            Node(
                nodes.compare_phantom_to_real,
                "params:volume",
                ["phantom_vs_real", "phantom_vs_real_figure@matplotlib"],
                name="compare_phantom_to_real",
                namespace="reporting",
            ),
            Node(
                nodes.task1_chart,
                "table1_region_classification",
                "task1_accuracy_chart",
                name="chart_task1",
                namespace="reporting",
            ),
            Node(
                nodes.task2_chart,
                "table2_segmentation",
                "task2_segmentation_chart",
                name="chart_task2",
                namespace="reporting",
            ),
            Node(nodes.task3_chart, "table3_probing", "task3_probing_chart", name="chart_task3", namespace="reporting"),
            Node(
                nodes.draw_confusion_matrices,
                ["task1_confusion_matrices", params],
                "task1_confusion_matrices_figure@matplotlib",
                name="draw_task1_confusion_matrices",
                namespace="reporting",
            ),
            Node(
                nodes.draw_training_curves,
                ["task1_training_histories", params],
                "task1_training_curves@matplotlib",
                name="draw_task1_training_curves",
                namespace="reporting",
            ),
            Node(
                nodes.draw_task2_training_curves,
                ["task2_training_histories", params],
                "task2_training_curves@matplotlib",
                name="draw_task2_training_curves",
                namespace="reporting",
            ),
            Node(
                nodes.make_report_builder(names, tables),
                [
                    "table1_region_classification",
                    "table2_segmentation",
                    "table3_probing",
                    "task1_accuracy_chart",
                    "task2_segmentation_chart",
                    "task3_probing_chart",
                    params,
                    *names,
                    *tables,
                ],
                "report_html",
                name="build_html_report",
                namespace="reporting",
            ),
        ],
        tags={"reporting"},
    )


def create_pipeline(parameters: ProjectParameters) -> Pipeline:
    """The reporting pipeline of the active configuration (``reporting.figures``, ``reporting.tables``)."""
    return build_pipeline(parameters.reporting.figures, parameters.reporting.tables)
