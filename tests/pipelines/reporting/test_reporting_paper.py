"""The paper's numbers in ``mtneuro.paper_results`` match the paper's text, entry by entry."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mtneuro import paper_results as paper
from mtneuro.classification_methods import get_method
from mtneuro.features import get_feature
from mtneuro.pipelines.reporting.labels import SEG_CLASS_LABELS
from mtneuro.segmentation_models import get_model

#: The text of the paper's Tables 1-3 (an excerpt shipped with the tests, see its first line).
PAPER = Path(__file__).resolve().parents[2] / "data" / "mtneuro_paper_tables.md"

_NUMBER = re.compile(r"\d+\.\d+")


@pytest.fixture(scope="module")
def paper_lines() -> list[str]:
    return PAPER.read_text(encoding="utf-8").splitlines()


def _section(lines: list[str], start: str, stop: str) -> list[str]:
    i = next(k for k, line in enumerate(lines) if line.startswith(start))
    j = next(k for k in range(i + 1, len(lines)) if lines[k].startswith(stop))
    return lines[i:j]


def _rows(lines: list[str], labels: dict[str, str]) -> list[tuple[str, list[float]]]:
    """(key, numbers) of every line that starts with a label followed by a tab."""
    by_label = {label: key for key, label in labels.items()}
    out = []
    for line in lines:
        label = line.split("\t", 1)[0].strip()
        if label in by_label and "\t" in line:
            out.append((by_label[label], [float(x) for x in _NUMBER.findall(line.split("\t", 1)[1])]))
    return out


def _flat(value: paper.PaperValue | None) -> list[float]:
    assert value is not None
    return [value.mean] if value.std is None else [value.mean, value.std]


def _method_labels(methods: tuple[str, ...]) -> dict[str, str]:
    """The registry's labels: the paper's row labels, so that the report prints the paper's names."""
    return {method: get_method(method).label for method in methods}


def test_table1_matches_the_paper(paper_lines: list[str]) -> None:
    rows = _rows(_section(paper_lines, "Table 1:", "Specifically"), _method_labels(paper.TABLE1_METHODS))
    assert [key for key, _ in rows] == list(paper.TABLE1_METHODS)
    for method, numbers in rows:
        expected = [x for config in paper.TABLE1_CONFIGS for x in _flat(paper.table1(method, config))]
        assert numbers == expected, method


def test_table2_matches_the_paper(paper_lines: list[str]) -> None:
    labels = {model: get_model(model).label for models in paper.TABLE2_MODELS.values() for model in models}
    seen = []
    for dims, start, stop in [("2D", "I. 2D", "II. 3D"), ("3D", "II. 3D", "variant is")]:
        lines = _section(paper_lines, start, stop)
        for model, numbers in _rows(lines, labels):
            metric_line = next(
                line
                for line in lines
                if line.startswith(labels[model] + "\t")
                and numbers == [float(x) for x in _NUMBER.findall(line.split("\t", 1)[1])]
            )
            metric = "f1" if "\tF1\t" in metric_line else "iou"
            expected = []
            for setting in paper.TABLE2_SETTINGS:
                for cls in (*paper.SEG_CLASSES[setting], "mean"):
                    expected += _flat(paper.table2(dims, model, setting, metric, cls))
            assert numbers == expected, (dims, model, metric)
            seen.append((dims, model, metric))
    assert len(seen) == len(set(seen)) == 2 * sum(len(m) for m in paper.TABLE2_MODELS.values())
    for dims, models in paper.TABLE2_MODELS.items():
        assert {get_model(model).dims for model in models} == {dims}


def test_table3_matches_the_paper(paper_lines: list[str]) -> None:
    for config, start, stop in [("ROI-C1", "I. Linear", "II. Linear"), ("ROI-C3", "II. Linear", "Figure 4")]:
        rows = _rows(_section(paper_lines, start, stop), _method_labels(paper.TABLE3_METHODS))
        assert [key for key, _ in rows] == list(paper.TABLE3_METHODS), config
        for method, numbers in rows:
            expected = [x for f in paper.TABLE3_FEATURES for x in _flat(paper.table3(config, method, f))]
            assert numbers == expected, (config, method)


def test_table3_header_is_the_feature_registrys_labels(paper_lines: list[str]) -> None:
    lines = _section(paper_lines, "I. Linear", "II. Linear")
    header = next(line for line in lines if "\t" in line and get_feature(paper.TABLE3_FEATURES[0]).label in line)
    columns = [c.strip() for c in header.split("\t") if c.strip()]
    assert columns[0] == "Methods"
    assert [get_feature(f).label for f in paper.TABLE3_FEATURES] == columns[1:]


def test_table2_class_labels_are_the_papers(paper_lines: list[str]) -> None:
    lines = _section(paper_lines, "I. 2D", "II. 3D")
    text = "\n".join(lines)
    for labels in SEG_CLASS_LABELS.values():
        for label in labels.values():
            assert label in text, label
