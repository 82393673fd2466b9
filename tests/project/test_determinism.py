"""Determinism (issue 26, item 7): the same seed gives the same tables byte for byte on the same
machine. The Task 2 grid of the tiny profile (18 trainings from their seeds) is run again on a
copy of the shared tiny run's cubes; its table equals the shared run's, byte for byte, but for
the wall-clock column ``train_seconds``. (The brain map and its tables, and the ingestion
outputs, are compared byte for byte with the shared run in ``test_interruptions.py``.)"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from kedro.runner import SequentialRunner

#: Wall-clock measurements: the only columns of the tables that differ between two runs.
TIMING_COLUMNS = ("train_seconds", "train_images_per_second", "test_seconds", "train_seconds_mean")
TABLE = Path("08_reporting") / "task2_segmentation.csv"


def without_timings(text: str) -> str:
    """The CSV text without its timing columns, every other field exactly as written."""
    rows = list(csv.reader(io.StringIO(text)))
    keep = [i for i, name in enumerate(rows[0]) if name not in TIMING_COLUMNS]
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows([[row[i] for i in keep] for row in rows])
    return out.getvalue()


def test_without_timings_keeps_every_other_field_as_written() -> None:
    text = "model,f1,train_seconds\nunet,0.1234567890123,12.5\n"
    assert without_timings(text) == "model,f1\nunet,0.1234567890123\n"


@pytest.mark.slow
def test_the_same_seeds_give_the_same_task2_table_byte_for_byte(tiny_default_run, kedro_run, tmp_path: Path) -> None:
    root = tiny_default_run.copy_to(tmp_path / "data", ("01_raw", "02_intermediate", "03_primary"))
    # in this process (a real KedroSession, the same threads as the shared run's process): a
    # ``kedro run`` child would add ~10-15 s CPU of imports for the same grid
    kedro_run(["segmentation"], root, runner=SequentialRunner())
    again = (root / TABLE).read_text()
    first = (tiny_default_run.data_root / TABLE).read_text()
    assert len(again.splitlines()) > 18
    assert without_timings(again) == without_timings(first)
