"""Every run ends with a per-stage and top-10 per-node time table in the log file."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from mtneuro.timing import RUN_TIMES_HOOK, RunTimes


def test_the_table_sums_stages_and_lists_the_slowest_nodes_first() -> None:
    times = RunTimes(
        nodes={f"classification.m{k}.roi_c1.seed0.train": float(k) for k in range(12)}
        | {"ingestion.fetch_cubes": 30.0, "plan": 1.0},
        wall=120.0,
    )
    assert times.stages() == {"classification": (12, 66.0), "ingestion": (1, 30.0), "-": (1, 1.0)}
    table = times.table().splitlines()
    assert table[1].split() == ["classification", "12", "66.0", "68.0", "%"]
    assert "run wall time 120.0 s (outside nodes: 23.0 s)" in table
    slowest = table[table.index("slowest 10 nodes:") + 1 :]
    assert len(slowest) == 10
    assert slowest[0].split()[0] == "ingestion.fetch_cubes"
    assert slowest[1].split()[0] == "classification.m11.roi_c1.seed0.train"
    assert "14 nodes in 120 s; slowest stage classification (66 s)" in times.summary()


def test_cpu_seconds_from_the_workers_add_a_column() -> None:
    times = RunTimes(
        nodes={"mapping.plan_brain_map": 100.0, "probing.a.embed_images": 10.0, "probing.b.embed_images": 5.0},
        cpu={"mapping.plan_brain_map": 180.0, "probing.a.embed_images": 9.0, "probing.b.embed_images": 4.5},
        wall=120.0,
    )
    table = times.table().splitlines()
    assert table[0].split()[-2:] == ["CPU", "s"]
    assert table[1].split() == ["mapping", "1", "100.0", "87.0", "%", "180.0"]
    assert table[2].split() == ["probing", "2", "15.0", "13.0", "%", "13.5"]
    assert table[3].split() == ["all", "nodes", "3", "115.0", "193.5"]
    assert table[table.index("slowest 3 nodes:") + 1].split()[-3:] == ["180.0", "s", "CPU"]
    assert "CPU" not in RunTimes(nodes={"a": 1.0}, wall=1.0).table()  # a sequential run measures none


@pytest.mark.slow
def test_a_tiny_run_logs_its_time_table(kedro_run, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="mtneuro.timing"):
        kedro_run(["ingestion"], tmp_path / "data")
    times = RUN_TIMES_HOOK.last
    assert times is not None and not times.failed
    assert set(times.nodes) >= {"ingestion.fetch_cubes", "ingestion.build_split_index"}
    assert all(seconds >= 0 for seconds in times.nodes.values())
    # a node's time includes its datasets: the cubes are generated as fetch_cubes saves them
    assert times.slowest(1)[0][0] == "ingestion.fetch_cubes", times.table()
    assert times.to_first_node is not None and times.wall >= sum(times.nodes.values())
    tables = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Time per stage")]
    assert len(tables) == 1 and "ingestion" in tables[0] and "slowest 5 nodes:" in tables[0]
    summary = [r for r in caplog.records if r.getMessage().startswith("Run: ")]
    assert len(summary) == 1 and getattr(summary[0], "console", False)  # the one console line
    assert not getattr(next(r for r in caplog.records if r.getMessage().startswith("Time per stage")), "console", False)
