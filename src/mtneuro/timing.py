"""Where a run's time goes: a per-stage and top-10 per-node time table at the end of every run.

:class:`RunTimesHook` times every node (from the first load of its inputs to the last save of
its outputs) and, when the run ends, writes the table to the log file (``info.log``)
and one summary line to the console. ``benchmarks/profile_run.py`` prints the same table for a
profile, with the peak memory of the run.
"""

from __future__ import annotations

import logging
import resource
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from kedro.framework.hooks import hook_impl

log = logging.getLogger(__name__)

#: Nodes listed by name in the table (the slowest first).
TOP_NODES = 10


@dataclass
class RunTimes:
    """Seconds per node of one run, and its wall time."""

    nodes: dict[str, float] = field(default_factory=dict)
    #: CPU seconds per node, where the runner measured them (a Dask worker's process, every thread).
    cpu: dict[str, float] = field(default_factory=dict)
    wall: float = 0.0
    #: Seconds from the run's start (``before_pipeline_run``) to its first node.
    to_first_node: float | None = None
    #: ``time.perf_counter()`` when the first node started (start-up figures of benchmarks).
    first_node_at: float | None = None
    failed: bool = False

    def stages(self) -> dict[str, tuple[int, float]]:
        """Per stage (a node's outermost namespace; ``-`` for top-level nodes): nodes, seconds."""
        result: dict[str, tuple[int, float]] = {}
        for name, seconds in self.nodes.items():
            stage = _stage(name)
            count, total = result.get(stage, (0, 0.0))
            result[stage] = (count + 1, total + seconds)
        return dict(sorted(result.items(), key=lambda item: -item[1][1]))

    def stage_cpu(self, stage: str) -> float:
        return sum(seconds for name, seconds in self.cpu.items() if _stage(name) == stage)

    def slowest(self, n: int = TOP_NODES) -> list[tuple[str, float]]:
        return sorted(self.nodes.items(), key=lambda item: -item[1])[:n]

    def table(self) -> str:
        """The per-stage table, then the slowest nodes, as aligned text."""
        in_nodes = sum(self.nodes.values())
        share = (lambda s: f"{100 * s / in_nodes:5.1f} %") if in_nodes > 0 else (lambda _: "    - ")
        stages = self.stages()
        width = max([len("stage"), *map(len, stages)])
        cpu = (lambda s: f"  {s:7.1f}") if self.cpu else (lambda _: "")
        lines = [f"{'stage':<{width}}  nodes  seconds   share" + ("  CPU s" if self.cpu else "")]
        lines += [
            f"{stage:<{width}}  {count:5d}  {total:7.1f}  {share(total)}" + cpu(self.stage_cpu(stage))
            for stage, (count, total) in stages.items()
        ]
        lines.append(f"{'all nodes':<{width}}  {len(self.nodes):5d}  {in_nodes:7.1f}" + cpu(sum(self.cpu.values())))
        lines.append(f"run wall time {self.wall:.1f} s (outside nodes: {max(0.0, self.wall - in_nodes):.1f} s)")
        slowest = self.slowest()
        if slowest:
            name_width = max(len(name) for name, _ in slowest)
            lines.append(f"slowest {len(slowest)} nodes:")
            lines += [
                f"  {name:<{name_width}}  {seconds:7.1f} s  {share(seconds)}"
                + (f"  {self.cpu[name]:7.1f} s CPU" if name in self.cpu else "")
                for name, seconds in slowest
            ]
        return "\n".join(lines)

    def summary(self) -> str:
        stages = self.stages()
        top = next(iter(stages.items()), None)
        slowest = f"; slowest stage {top[0]} ({top[1][1]:.0f} s)" if top else ""
        return f"{len(self.nodes)} nodes in {self.wall:.0f} s{slowest}; time table in the log file"


def _stage(name: str) -> str:
    return name.split(".", 1)[0] if "." in name else "-"


def peak_rss_bytes() -> int:
    """The peak resident memory of this process (``ru_maxrss`` is KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


class RunTimesHook:
    """Times the nodes of each run; the last run's figures stay in :attr:`last`.

    A node's time runs from the first load of its inputs to the last save of its outputs (Kedro
    calls ``before_node_run``/``after_node_run`` around the function alone, and much of a
    stage's work happens in its datasets: cubes are generated as they are saved).
    """

    def __init__(self) -> None:
        self.last: RunTimes | None = None
        self._current = RunTimes()
        self._run_started = 0.0
        self._spans: dict[str, list[float]] = {}
        self._cpu: dict[str, float] = {}

    @hook_impl
    def before_pipeline_run(self) -> None:
        self._current = RunTimes()
        self._spans = {}
        self._cpu = {}
        self._run_started = time.perf_counter()

    def _mark(self, node: Any) -> None:
        if node is None:
            return
        now = time.perf_counter()
        span = self._spans.get(node.name)
        if span is None:
            self._spans[node.name] = [now, now]
            if self._current.first_node_at is None:
                self._current.first_node_at = now
                self._current.to_first_node = now - self._run_started
        else:
            span[1] = now

    def record(self, name: str, seconds: float, cpu_seconds: float | None = None) -> None:
        """A node timed in another process (a Dask worker runs its own hooks): it ends now."""
        now = time.perf_counter()
        self._spans[name] = [now - seconds, now]
        if cpu_seconds is not None:
            self._cpu[name] = cpu_seconds
        if self._current.first_node_at is None or now - seconds < self._current.first_node_at:
            self._current.first_node_at = now - seconds
            self._current.to_first_node = max(0.0, now - seconds - self._run_started)

    @hook_impl
    def before_dataset_loaded(self, node: Any) -> None:
        self._mark(node)

    @hook_impl
    def before_node_run(self, node: Any) -> None:
        self._mark(node)

    @hook_impl
    def after_node_run(self, node: Any) -> None:
        self._mark(node)

    @hook_impl
    def after_dataset_saved(self, node: Any) -> None:
        self._mark(node)

    @hook_impl
    def on_node_error(self, node: Any) -> None:
        self._mark(node)

    def _finish(self, failed: bool) -> RunTimes:
        times = self._current
        times.nodes = {name: end - start for name, (start, end) in self._spans.items()}
        times.cpu = dict(self._cpu)
        times.wall = time.perf_counter() - self._run_started
        times.failed = failed
        self.last = times
        log.info(
            "Time per stage and slowest nodes%s (peak RSS %.2f GB):\n%s",
            " (run failed)" if failed else "",
            peak_rss_bytes() / 1e9,
            times.table(),
        )
        return times

    @hook_impl
    def after_pipeline_run(self) -> None:
        times = self._finish(failed=False)
        log.info("Run: %s", times.summary(), extra={"console": True})

    @hook_impl
    def on_pipeline_error(self) -> None:
        self._finish(failed=True)


RUN_TIMES_HOOK = RunTimesHook()
