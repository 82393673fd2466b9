"""The paper's numbers in ``mtneuro.paper_results`` match the paper's text, entry by entry."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mtneuro import paper_results as paper

PAPER = Path(__file__).resolve().parents[1].parent / "shared" / "reference" / "mtneuro-paper.md"

_NUMBER = re.compile(r"\d+\.\d+")


@pytest.fixture(scope="module")
def paper_lines() -> list[str]:
    if not PAPER.exists():
        pytest.skip(f"the paper's text is not at {PAPER}")
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


def test_table1_matches_the_paper(paper_lines: list[str]) -> None:
    rows = _rows(_section(paper_lines, "Table 1:", "Specifically"), paper.METHOD_LABELS)
    assert [key for key, _ in rows] == list(paper.METHODS)
    for method, numbers in rows:
        expected = [x for config in paper.CONFIGS for x in _flat(paper.table1(method, config))]
        assert numbers == expected, method


def test_table2_matches_the_paper(paper_lines: list[str]) -> None:
    labels = {**paper.MODEL_LABELS}
    seen = []
    for dims, start, stop in [("2D", "I. 2D", "II. 3D"), ("3D", "II. 3D", "variant is")]:
        lines = _section(paper_lines, start, stop)
        for model, numbers in _rows(lines, labels):
            metric_line = next(line for line in lines if line.startswith(labels[model] + "\t") and numbers ==
                               [float(x) for x in _NUMBER.findall(line.split("\t", 1)[1])])
            metric = "f1" if "\tF1\t" in metric_line else "iou"
            expected = []
            for setting in paper.SETTINGS:
                for cls in (*paper.SEG_CLASSES[setting], "mean"):
                    expected += _flat(paper.table2(dims, model, setting, metric, cls))
            assert numbers == expected, (dims, model, metric)
            seen.append((dims, model, metric))
    assert len(seen) == len(set(seen)) == 2 * sum(len(m) for m in paper.MODELS.values())


def test_table3_matches_the_paper(paper_lines: list[str]) -> None:
    for config, start, stop in [("ROI-C1", "I. Linear", "II. Linear"), ("ROI-C3", "II. Linear", "Figure 4")]:
        rows = _rows(_section(paper_lines, start, stop), paper.METHOD_LABELS)
        assert [key for key, _ in rows] == list(paper.METHODS), config
        for method, numbers in rows:
            expected = [x for f in paper.FEATURES for x in _flat(paper.table3(config, method, f))]
            assert numbers == expected, (config, method)
