"""Reporting pipeline wiring.

Inputs: the task tables ``task1_region_classification``, ``task2_segmentation``,
``task3_probing`` and the task figures named in ``reporting.figures`` (catalog name -> caption;
each must load to PNG bytes, a Figure or an image, e.g. ``mtneuro.datasets.html_report.FigureDataset``).
Outputs (``08_reporting``): ``table{1,2,3}_*`` (CSV), ``table{1,2,3}_*_md`` (Markdown),
``task{1,2,3}_*_chart`` (PNG bar charts) and ``report_html``; the last node logs where it is.
"""

from __future__ import annotations

from functools import partial, update_wrapper
from typing import Any

from kedro.pipeline import Node, Pipeline

from mtneuro import run_grid

from . import nodes

#: Task figures embedded when the parameters name none (catalog name -> caption).
DEFAULT_FIGURES: dict[str, str] = {
    "task2_segmentation_overlays@png": "Task 2: test slices with ground truth and predicted segmentation",
    "task3_umap@png": "Task 3: UMAP of frozen embeddings coloured by region and semantic features",
}


def configured_figures() -> dict[str, Any]:
    """Catalog name -> caption of the task figures, from ``reporting.figures`` of the active env."""
    try:
        block = run_grid.task_parameters("reporting")
    except KeyError:
        return dict(DEFAULT_FIGURES)
    figures = block.get("figures", DEFAULT_FIGURES)
    return dict(figures or {})


def create_pipeline(**kwargs: Any) -> Pipeline:
    """``figures`` (catalog name -> caption) overrides the parameters, e.g. in tests."""
    figures = kwargs.get("figures")
    names = list((configured_figures() if figures is None else figures).keys())
    report = update_wrapper(partial(nodes.build_html_report, figure_names=tuple(names)), nodes.build_html_report)
    params = "params:reporting"
    return Pipeline(
        [
            Node(nodes.build_table1, ["task1_region_classification", params], "table1_region_classification",
                 name="build_table1"),
            Node(nodes.build_table2, ["task2_segmentation", params], "table2_segmentation", name="build_table2"),
            Node(nodes.build_table3, ["task3_probing", params], "table3_probing", name="build_table3"),
            Node(nodes.table1_markdown, ["table1_region_classification", params], "table1_region_classification_md",
                 name="render_table1_markdown"),
            Node(nodes.table2_markdown, ["table2_segmentation", params], "table2_segmentation_md",
                 name="render_table2_markdown"),
            Node(nodes.table3_markdown, ["table3_probing", params], "table3_probing_md",
                 name="render_table3_markdown"),
            Node(nodes.task1_chart, "table1_region_classification", "task1_accuracy_chart", name="chart_task1"),
            Node(nodes.task2_chart, "table2_segmentation", "task2_segmentation_chart", name="chart_task2"),
            Node(nodes.task3_chart, "table3_probing", "task3_probing_chart", name="chart_task3"),
            Node(
                report,
                [
                    "table1_region_classification", "table2_segmentation", "table3_probing",
                    "task1_accuracy_chart", "task2_segmentation_chart", "task3_probing_chart",
                    params, *names,
                ],
                "report_html",
                name="build_html_report",
            ),
            Node(nodes.announce_report, ["report_html", params], None, name="announce_report"),
        ],
        tags={"reporting"},
    )
