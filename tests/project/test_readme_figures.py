"""The README's run times are the record that benchmarks/readme_figures.py measured, not typed by hand."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

PROJECT = Path(__file__).resolve().parents[2]


def _figures() -> ModuleType:
    spec = importlib.util.spec_from_file_location("readme_figures", PROJECT / "benchmarks" / "readme_figures.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_readme_block_is_the_measured_record() -> None:
    figures = _figures()
    record = figures.read_record()
    assert {"default"} <= set(record), "benchmarks/readme_figures.json lacks the default run"
    assert all(figure["exit"] == 0 for figure in record.values()), record
    block = figures.readme_block((PROJECT / "README.md").read_text())
    assert block, "README.md lost its readme_figures block"
    assert block == figures.render(record), "README.md's run times differ from the record: run `... write`"


def test_render_and_write_keep_the_rest_of_the_readme(tmp_path: Path) -> None:
    figures = _figures()
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n\n{figures.BEGIN}\nold table\n{figures.END}\n\nrest\n")
    record = {
        "tiny": {
            "seconds": 201.4,
            "exit": 0,
            "cores": 2,
            "load_before": 0.1,
            "load_after": 1.9,
            "commit": "abc1234",
            "date": "2026-12-03",
        },
        "suite": {
            "seconds": 59.0,
            "exit": 1,
            "cores": 1,
            "load_before": 0.0,
            "load_after": 1.0,
            "commit": "abc1234",
            "date": "2026-12-03",
            "result": "3 failed, 500 passed",
        },
    }
    figures.write_readme(record, readme)
    text = readme.read_text()
    assert text.startswith("intro\n\n") and text.endswith("\n\nrest\n")
    assert "old table" not in text
    assert (
        "| `uv run kedro run --env=tiny` | the tiny profile (every pipeline, smoke-test sizes) | 3 min 21 s |" in text
    )
    assert "| 59 s, exit 1; 3 failed, 500 passed | 1 cores, load 0.0 -> 1.0, abc1234, 2026-12-03 |" in text
    assert text.index("--env=tiny") < text.index("`uv run pytest`")  # the README's order, not the record's
    assert figures._summary("...\n===== 531 passed, 2 skipped in 812.33s (0:13:32) =====\n") == "531 passed, 2 skipped"
