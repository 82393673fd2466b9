"""report.html: one self-contained page (figures inlined as base64) rendered from the Jinja2
template ``templates/report.html.j2``: the three tables, a bar chart per task and the task figures.

This module prepares plain data for the template (table headers, cells, figure URIs); the
template holds the markup. Every value is escaped as :func:`html.escape` does.
"""

from __future__ import annotations

import base64
import html as _html
import io
import re
from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any

import jinja2
import numpy as np
import pandas as pd
from markupsafe import Markup

from mtneuro import paper_results as paper

from .formatting import TABLES, first_value, format_number, table_caption
from .labels import (
    LEGEND_TITLES,
    MISSING,
    PAPER_LABEL,
    SEG_METRIC_SHORT_LABELS,
    SOURCE_DESCRIPTIONS,
    display_text,
    legend,
    ours_label,
    short_method_label,
)
from .tables import ReportingError

TEMPLATE = "report.html.j2"

_IMAGE_SIGNATURES = {b"\x89PNG\r\n\x1a\n": "image/png", b"\xff\xd8\xff": "image/jpeg", b"GIF8": "image/gif"}


def image_data_uris(obj: Any) -> list[str]:
    """``data:`` URIs for a figure in any form a dataset may load: PNG/JPEG bytes, a matplotlib
    Figure, a PIL image, an image array, or a list/dict of those."""
    if obj is None:
        return []
    if isinstance(obj, Mapping):
        return [uri for value in obj.values() for uri in image_data_uris(value)]
    if isinstance(obj, (list, tuple)):
        return [uri for value in obj for uri in image_data_uris(value)]
    if isinstance(obj, (bytes, bytearray, memoryview)):
        data = bytes(obj)
        mime = next((m for sig, m in _IMAGE_SIGNATURES.items() if data.startswith(sig)), None)
        if mime is None:
            raise ReportingError("A figure loaded as bytes that are neither PNG, JPEG nor GIF")
        return [f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"]
    buffer = io.BytesIO()
    if hasattr(obj, "savefig"):  # matplotlib Figure
        obj.savefig(buffer, format="png", dpi=110)
    else:
        from PIL import Image

        image = obj if isinstance(obj, Image.Image) else Image.fromarray(np.asarray(obj))
        image.save(buffer, format="PNG")
    return image_data_uris(buffer.getvalue())


# --- data for the template ----------------------------------------------------------------------


def display_table(
    block: pd.DataFrame, table_id: str, title: str, row_kind: str | None = None, primary: str | None = None
) -> dict[str, Any]:
    """A display block for the template's two-row header: ``group · who`` columns are grouped
    under ``group`` (a configuration, class or feature) with ``ours``/``paper`` below it.

    With ``row_kind`` (a column saying which metric a row holds) and ``primary`` (its value to
    show), the rows of the other metrics are ``extra``: behind the table's toggle."""
    split = [tuple(str(c).split(" · ", 1)) if " · " in str(c) else (str(c), None) for c in block.columns]
    groups: list[dict[str, Any]] = []
    for group, who in split:
        if who is not None and groups and not groups[-1]["is_label"] and groups[-1]["name"] == group:
            groups[-1]["span"] += 1
        else:
            groups.append({"name": group, "is_label": who is None, "span": 1})
    kinds = ["label" if who is None else "paper" if who.startswith("paper") else "ours" for _, who in split]
    subheaders = [{"kind": kind, "text": who} for (_, who), kind in zip(split, kinds, strict=True) if who is not None]
    css = [f"{kind} kind" if str(c) == row_kind else kind for c, kind in zip(block.columns, kinds, strict=True)]
    marks = (
        [str(v) != primary for v in block[row_kind]]
        if row_kind is not None and primary is not None and row_kind in block.columns
        else [False] * len(block)
    )
    rows = [
        {
            "extra": extra,
            "cells": [
                {"css": f"{kind} missing" if str(value) == MISSING else kind, "text": str(value)}
                for kind, value in zip(css, values, strict=True)
            ],
        }
        for values, extra in zip(block.itertuples(index=False), marks, strict=True)
    ]
    hidden = (
        list(dict.fromkeys(str(v) for v, extra in zip(block[row_kind], marks, strict=True) if extra))
        if any(marks)
        else []
    )
    return {
        "id": table_id,
        "title": title,
        "groups": groups,
        "subheaders": subheaders,
        "rows": rows,
        "extra": sum(marks),
        "extra_kinds": hidden,
        "primary": primary,
    }


def table_section(which: str, table: pd.DataFrame, decimals: int, primary: str | None = None) -> dict[str, Any]:
    """One of Tables 1-3 as the report shows it: compact blocks (:func:`.formatting.table2_blocks`
    ...), one row per model of the ``primary`` metric (a key of the table's ``row_kind_labels``)."""
    info = TABLES[which]
    shown = None if primary is None or info.row_kind_labels is None else info.row_kind_labels.get(primary, primary)
    caption = [*table_caption(table, info.paper_table, info.what), *(f"Note: {n}" for n in info.notes)]
    if shown is not None and info.row_kind_labels is not None:
        caption.append(
            f"{info.row_kind} ({', '.join(info.row_kind_labels.values())}): one row per model shows {shown}; "
            "tick “all metrics” above a table for the others."
        )
    return {
        "id": which,
        "title": info.title,
        "caption": caption,
        "tables": [
            display_table(block, f"{which}-{k + 1}", title, info.row_kind, shown)
            for k, (title, block) in enumerate(info.blocks(table, decimals, compact=True))
        ],
    }


def further_table(name: str, table: pd.DataFrame, caption: str, decimals: int, folded: bool = False) -> dict[str, Any]:
    """A table other than Tables 1-3 (e.g. the brain map's validation), shown as it is, with
    numbers as :func:`.formatting.format_number` prints them (a column of whole numbers, and
    counts, as integers), display names for internal ones (:func:`.labels.display_text`) and
    the catalog name it came from; ``folded`` away (a details element) when asked."""
    shown = table.copy()
    for column in shown.columns:
        values = shown[column]
        if pd.api.types.is_bool_dtype(values):
            shown[column] = values.map({True: "yes", False: "no"})
        elif pd.api.types.is_numeric_dtype(values):
            finite = pd.to_numeric(values, errors="coerce").dropna()
            whole = bool(len(finite)) and bool((finite == finite.round()).all())
            shown[column] = values.map(lambda v, whole=whole: format_number(v, decimals, integer=whole))
        else:
            shown[column] = values.map(lambda v: MISSING if pd.isna(v) else display_text(str(v)))
    shown = shown.astype(str).rename(columns=str)
    table_id = f"table-{re.sub(r'[^A-Za-z0-9_-]', '-', name)}"
    return {
        "id": table_id,
        "title": caption,
        "name": name,
        "rows": len(table),
        "folded": folded,
        "table": display_table(shown, table_id, caption),
    }


def _figure(figure_id: str, caption: str, uris: list[str], legends: Sequence[str] = ()) -> dict[str, Any]:
    return {
        "id": figure_id,
        "caption": caption,
        "uris": uris,
        "legends": [
            {
                "kind": kind,
                "title": LEGEND_TITLES.get(kind, kind),
                "entries": [{"label": t, "colour": c} for t, c in legend(kind)],
            }
            for kind in legends
        ],
    }


def _best(frame: pd.DataFrame, label: str, column: str, decimals: int) -> str:
    """``<label> <value>`` of the row with the largest ``column`` (``—`` when none); a Task 1
    method by its short name (:func:`.labels.short_method_label`)."""
    values = pd.to_numeric(frame[column], errors="coerce") if column in frame.columns else pd.Series(dtype=float)
    if values.notna().sum() == 0:
        return MISSING
    row = frame.loc[values.idxmax()]
    name = short_method_label(str(row["method"])) if "method" in frame.columns else str(row[label])
    return f"{name} {float(row[column]):.{decimals}f}"


def summary_lines(
    table1: pd.DataFrame, table2: pd.DataFrame, table3: pd.DataFrame, decimals: int, table2_metric: str = "f1"
) -> list[dict[str, str]]:
    """The report's summary: per task the best method (ours: mean over seeds) beside the paper's best."""
    lines = []
    if not table1.empty:
        metric = first_value(table1, "metric", "accuracy").replace("_", " ")
        parts = [
            f"{config}: {_best(part, 'method_label', 'ours_mean', decimals)} (paper {_best(part, 'method_label', 'paper_mean', 2)})"
            for config, part in table1.groupby("config", sort=False)
        ]
        lines.append({"task": f"Task 1, best {metric} per test configuration", "text": "; ".join(parts)})
    if not table2.empty:
        means = table2[(table2["class"] == "mean") & (table2["metric"] == table2_metric)]
        parts = [
            f"{dims} {setting}: {_best(part, 'model_label', 'ours_mean', decimals)} (paper {_best(part, 'model_label', 'paper_mean', 2)})"
            for (dims, setting), part in means.groupby(["dims", "setting"], sort=False)
        ]
        label = SEG_METRIC_SHORT_LABELS.get(table2_metric, table2_metric)
        lines.append({"task": f"Task 2, best mean {label} over classes per setting", "text": "; ".join(parts)})
    if not table3.empty:
        part = table3[(table3["r2"] == "in_sample") & table3["paper_mean"].notna()]
        parts = []
        for config, rows in part.groupby("train_config", sort=False):
            mean = rows.groupby("method", sort=False)[["ours_mean", "paper_mean"]].mean().reset_index()
            parts.append(
                f"{config}: {_best(mean, 'method_label', 'ours_mean', decimals)} "
                f"(paper {_best(mean, 'method_label', 'paper_mean', 2)})"
            )
        lines.append(
            {
                "task": "Task 3, best in-sample R² (mean over the paper's features) per training set",
                "text": "; ".join(parts),
            }
        )
    return lines


# --- rendering ----------------------------------------------------------------------------------


def _escape(value: Any) -> Markup:
    """The report's escaping (:func:`html.escape`, quotes included) for every template value."""
    return value if isinstance(value, Markup) else Markup(_html.escape(str(value)))


@cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("mtneuro.pipelines.reporting", "templates"),
        autoescape=True,
        finalize=_escape,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )


def render_report(
    table1: pd.DataFrame,
    table2: pd.DataFrame,
    table3: pd.DataFrame,
    charts: Sequence[Any],
    figures: Mapping[str, Any],
    captions: Mapping[str, str],
    decimals: int,
    further_tables: Mapping[str, pd.DataFrame] | None = None,
    table_captions: Mapping[str, str] | None = None,
    *,
    primary_rows: Mapping[str, str] | None = None,
    folded_tables: Sequence[str] = (),
    legends: Mapping[str, Sequence[str]] | None = None,
) -> str:
    """The report page, in the order a reader looks: the summary, the three ``charts`` and the
    task ``figures`` (catalog name -> loaded figure, captioned by ``captions``, default the name,
    with the brain-map ``legends`` under the figures they name), then the three tables (one row
    per model of the metric ``primary_rows[table]``, the others behind a toggle) and the
    ``further_tables`` (catalog name -> table, captioned by ``table_captions``; longer than
    ``folded_tables``: folded away)."""
    sources = sorted({first_value(t, "source", "unknown") for t in (table1, table2, table3)})
    profiles = sorted({first_value(t, "profile", "unspecified") for t in (table1, table2, table3)})
    primary = dict(primary_rows or {})
    chart1, chart2, chart3 = charts
    figure_list = [
        _figure(
            "chart-task1",
            f"Task 1: accuracy per method and configuration (bars: ours, mean; whiskers: half the seed range for "
            f"up to 3 seeds, else ± std; ◆: {PAPER_LABEL}).",
            image_data_uris(chart1),
        ),
        _figure(
            "chart-task2",
            f"Task 2: mean F1 and IoU over classes per model and setting (bars: ours; ◆: {PAPER_LABEL}).",
            image_data_uris(chart2),
        ),
        _figure(
            "chart-task3",
            f"Task 3: in-sample R² per feature and method (bars: ours; ◆: {PAPER_LABEL}).",
            image_data_uris(chart3),
        ),
    ]
    for name, figure in figures.items():
        caption = str(captions.get(name) or name)
        figure_list.append(
            _figure(
                f"figure-{re.sub(r'[^A-Za-z0-9_-]', '-', name)}",
                f"{caption} ({ours_label(', '.join(sources))})",
                image_data_uris(figure),
                (legends or {}).get(name, ()),
            )
        )
    return (
        _environment()
        .get_template(TEMPLATE)
        .render(
            sources=", ".join(sources),
            source_text="; ".join(f"{s}: {SOURCE_DESCRIPTIONS.get(s, s)}" for s in sources),
            profiles=", ".join(profiles),
            citation=paper.CITATION,
            phantom=any("phantom" in s for s in sources),
            phantom_label=ours_label("phantom"),
            ours_label=ours_label(", ".join(sources)),
            paper_label=PAPER_LABEL,
            missing=MISSING,
            summary=summary_lines(table1, table2, table3, decimals, primary.get("table2", "f1")),
            sections=[
                table_section(which, table, decimals, primary.get(which))
                for which, table in (("table1", table1), ("table2", table2), ("table3", table3))
            ],
            further=[
                further_table(
                    name, table, str((table_captions or {}).get(name) or name), decimals, name in folded_tables
                )
                for name, table in (further_tables or {}).items()
            ],
            figures=figure_list,
        )
    )
