"""The console of a run: one line per node, each distinct warning once, no secret anywhere."""

from __future__ import annotations

import logging
import os
import re
from collections import Counter
from pathlib import Path

import pytest

from mtneuro.console import ConsoleFilter, SecretRedactingFilter, credential_secrets

PROJECT = Path(__file__).resolve().parents[2]


def _record(name: str, msg: str, args: tuple = (), level: int = logging.INFO) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, msg, args, None)


def test_each_distinct_warning_reaches_the_console_once():
    console = ConsoleFilter()
    first = _record("py.warnings", "/x/a.py:21: DeprecationWarning: old API\n  warnings.warn(", level=logging.WARNING)
    again = _record("py.warnings", "/y/b.py:99: DeprecationWarning: old API\n  warnings.warn(", level=logging.WARNING)
    other = _record("py.warnings", "/x/a.py:30: UserWarning: something else\n", level=logging.WARNING)
    assert [console.filter(r) for r in (first, again, other)] == [True, False, True]
    assert first.getMessage() == "/x/a.py:21: DeprecationWarning: old API"  # one line


def test_kedro_vizs_note_on_non_sequential_runners_stays_in_the_log_file():
    """The default Dask runner would print kedro-viz's workflow-tracking warning on every run."""
    console = ConsoleFilter()
    viz = _record(
        "kedro_viz.integrations.kedro.run_hooks",
        "Workflow tracking is disabled for non-sequential runners. `.viz/kedro_pipeline_events.json` ...",
        level=logging.WARNING,
    )
    other = _record("kedro_viz.integrations.kedro.run_hooks", "Something else is wrong", level=logging.WARNING)
    assert [console.filter(viz), console.filter(other)] == [False, True]


def test_a_node_gets_one_finish_line_with_its_position_and_time():
    console = ConsoleFilter()
    console.node_started("classification.byol.roi_c1.seed0.train")
    assert not console.filter(_record("kedro.pipeline.node", "Running node: %s", ("train: fit(...)",)))
    assert not console.filter(
        _record("kedro.runner.sequential_runner", "Completed node: %s", ("classification.byol.roi_c1.seed0.train",))
    )
    done = _record("kedro.runner.sequential_runner", "Completed %d out of %d tasks", (3, 10))
    assert console.filter(done)
    assert done.getMessage().startswith("Completed node: classification.byol.roi_c1.seed0.train (3/10) in ")
    assert not console.filter(_record("kedro.io.data_catalog", "Loading data from %s", ("cubes",)))
    assert not console.filter(_record("mtneuro.ssl", "epoch %d loss %.3f", (1, 0.5)))
    assert console.filter(_record("mtneuro.pipelines.reporting", "Report: %s", ("x",))) is False
    flagged = _record("mtneuro.pipelines.reporting", "Report: %s", ("x",))
    flagged.console = True
    assert console.filter(flagged)


def test_credentials_are_masked_in_every_handler(tmp_path: Path):
    secrets = credential_secrets(
        {"bossdb": {"protocol": "https", "host": "h", "token": "FAKE-SECRET-TOKEN-42"}, "other": {"token": "public"}}
    )
    assert secrets == {"FAKE-SECRET-TOKEN-42"}
    log_file = tmp_path / "info.log"
    handler = logging.FileHandler(log_file)
    redactor = SecretRedactingFilter()
    redactor.secrets = secrets
    handler.addFilter(redactor)
    logger = logging.getLogger("test.secrets")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        logger.debug("after_catalog_created(conf_creds=%s)", {"bossdb": {"token": "FAKE-SECRET-TOKEN-42"}})
    finally:
        logger.removeHandler(handler)
        handler.close()
    text = log_file.read_text()
    assert "FAKE-SECRET-TOKEN-42" not in text and "***" in text


@pytest.mark.slow
def test_a_tiny_run_prints_one_line_per_node_and_no_repeated_warning(tiny_default_run):
    """The whole tiny benchmark as ``kedro run`` prints it when its output is not a terminal."""
    lines = tiny_default_run.output.splitlines()
    finished = [line for line in lines if "Completed node:" in line]
    n_nodes = int(finished[-1].split("(")[1].split("/")[1].split(")")[0])
    assert len(finished) == n_nodes
    # A node still running after START_LINE_AFTER_S says so once: how many do depends on the
    # machine's speed and load, so those lines have their own budget (at most one per node).
    announced = [line for line in lines if "Running node:" in line]
    assert len({line.split("Running node:")[1].strip() for line in announced}) == len(announced) <= n_nodes
    others = [line for line in lines if "Running node:" not in line]
    assert len(others) <= n_nodes + 40, "\n".join(others[:80])
    warnings = Counter(line.split("WARNING", 1)[1].strip() for line in lines if "WARNING" in line)
    assert all(count == 1 for count in warnings.values()), warnings
    assert not [line for line in lines if "Loading data from" in line or "GPU available" in line]


def test_announce_report_gives_absolute_path(tmp_path, capsys) -> None:
    from mtneuro.console import announce_report

    announce_report(tmp_path / "x" / ".." / "report.html")
    assert str((tmp_path / "report.html").resolve()) in capsys.readouterr().out


@pytest.mark.parametrize("typed", [True, False])
def test_a_run_that_writes_the_report_ends_with_its_path(tmp_path: Path, capsys, typed: bool) -> None:
    from kedro.io import DataCatalog, MemoryDataset
    from kedro.pipeline import Node, Pipeline

    from mtneuro.config.reporting import ReportingParameters
    from mtneuro.console import ConsoleHook

    values = {
        "profile": "p",
        "report_path": str(tmp_path / "r" / "report.html"),
        "task1_metric": "accuracy",
        "decimals": 3,
        "figures": {},
        "tables": {},
    }
    # Kedro's parameter validation may hand the hook the typed block instead of the dict
    catalog = DataCatalog({"params:reporting": MemoryDataset(ReportingParameters(**values) if typed else values)})
    writes = Pipeline([Node(lambda: "<html></html>", None, "report_html", name="build")])
    hook = ConsoleHook()
    hook.before_pipeline_run({}, writes, catalog)
    hook.after_pipeline_run()
    assert str((tmp_path / "r" / "report.html").resolve()) in capsys.readouterr().out
    hook.before_pipeline_run({}, Pipeline([Node(lambda: 1, None, "other", name="other")]), catalog)
    hook.after_pipeline_run()
    assert "report.html" not in capsys.readouterr().out  # a run that does not write it says nothing


@pytest.mark.slow
def test_a_training_with_its_epoch_bar_ends_well_in_a_terminal(tiny_cubes, tmp_path: Path) -> None:
    """Lightning's epoch bar on (as in the base profile), in a pseudo-terminal: the run's n/N
    bar and the training's epochs share one live display, and the run exits 0 without a traceback."""
    from kedro_process import kedro_command, run_in_terminal

    tiny_cubes(tmp_path)
    status, shown = run_in_terminal(
        kedro_command(
            "run",
            "--env=tiny",
            "--pipelines=classification",
            "--params",
            f"data_root={tmp_path},training.progress_bar=true,"
            "classification.methods=[supervised],classification.configs=[roi_c1]",
        ),
        timeout=600,
        columns=200,
    )
    assert status == 0, shown[-4000:]
    assert "Traceback" not in shown and "Error" not in shown, shown[-4000:]
    assert "Pipeline execution completed successfully" in shown
    assert "Completed node: classification.supervised.roi_c1.seed0.train" in shown
    assert re.search(r"kedro run .*\d+/\d+", shown), "the run's n/N bar was not drawn"
    assert re.search(r"training .*epoch \d+/2", shown), "the training's epochs were not a line of the run's bar"
    assert "Epoch 0/1" not in shown, "Lightning drew its own live display"
    assert (tmp_path / "08_reporting" / "task1_region_classification.csv").exists()


def test_the_suite_logs_outside_the_project() -> None:
    """Kedro runs of the tests (in this process and in subprocesses) never write the project's info.log."""
    files = [Path(h.baseFilename) for h in logging.getLogger().handlers if isinstance(h, logging.FileHandler)]
    assert files, "no log file handler: conf/logging.yml was not applied"
    assert all(PROJECT not in f.parents for f in files), files
    configured = Path(os.environ["KEDRO_LOGGING_CONFIG"])
    assert PROJECT not in configured.parents and str(files[0]) in configured.read_text()
