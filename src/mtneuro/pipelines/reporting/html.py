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

from .formatting import TABLES, first_value, table_caption
from .labels import MISSING, PAPER_LABEL, SOURCE_DESCRIPTIONS, ours_label
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


def display_table(block: pd.DataFrame, table_id: str, title: str) -> dict[str, Any]:
    """A display block for the template's two-row header: ``group · who`` columns are grouped
    under ``group`` (a configuration, class or feature) with ``ours``/``paper`` below it."""
    split = [tuple(str(c).split(" · ", 1)) if " · " in str(c) else (str(c), None) for c in block.columns]
    groups: list[dict[str, Any]] = []
    for group, who in split:
        if who is not None and groups and not groups[-1]["is_label"] and groups[-1]["name"] == group:
            groups[-1]["span"] += 1
        else:
            groups.append({"name": group, "is_label": who is None, "span": 1})
    kinds = ["label" if who is None else "paper" if who.startswith("paper") else "ours" for _, who in split]
    subheaders = [{"kind": kind, "text": who} for (_, who), kind in zip(split, kinds, strict=True) if who is not None]
    rows = [
        [
            {"css": f"{kind} missing" if str(value) == MISSING else kind, "text": str(value)}
            for kind, value in zip(kinds, values, strict=True)
        ]
        for values in block.itertuples(index=False)
    ]
    return {"id": table_id, "title": title, "groups": groups, "subheaders": subheaders, "rows": rows}


def table_section(which: str, table: pd.DataFrame, decimals: int) -> dict[str, Any]:
    info = TABLES[which]
    return {
        "id": which,
        "title": info.title,
        "caption": [*table_caption(table, info.paper_table, info.what), *(f"Note: {n}" for n in info.notes)],
        "tables": [
            display_table(block, f"{which}-{k + 1}", title)
            for k, (title, block) in enumerate(info.blocks(table, decimals))
        ],
    }


def further_table(name: str, table: pd.DataFrame, caption: str, decimals: int) -> dict[str, Any]:
    """A table other than Tables 1-3 (e.g. the brain map's validation), shown as it is, with
    floats at ``decimals`` and the catalog name it came from."""
    shown = table.copy()
    for column in shown.columns:
        if pd.api.types.is_float_dtype(shown[column]):
            shown[column] = shown[column].map(lambda v: MISSING if pd.isna(v) else f"{v:.{decimals}f}")
    shown = shown.astype(str).rename(columns=str)
    table_id = f"table-{re.sub(r'[^A-Za-z0-9_-]', '-', name)}"
    return {"id": table_id, "title": caption, "name": name, "table": display_table(shown, table_id, caption)}


def _figure(figure_id: str, caption: str, uris: list[str]) -> dict[str, Any]:
    return {"id": figure_id, "caption": caption, "uris": uris}


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
) -> str:
    """The report page: the three tables, the ``further_tables`` (catalog name -> table,
    captioned by ``table_captions``), the three ``charts`` and the task ``figures`` (catalog
    name -> loaded figure, captioned by ``captions``, default the name)."""
    sources = sorted({first_value(t, "source", "unknown") for t in (table1, table2, table3)})
    profiles = sorted({first_value(t, "profile", "unspecified") for t in (table1, table2, table3)})
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
            paper_label=PAPER_LABEL,
            missing=MISSING,
            sections=[
                table_section(which, table, decimals)
                for which, table in (("table1", table1), ("table2", table2), ("table3", table3))
            ],
            further=[
                further_table(name, table, str((table_captions or {}).get(name) or name), decimals)
                for name, table in (further_tables or {}).items()
            ],
            figures=figure_list,
        )
    )
