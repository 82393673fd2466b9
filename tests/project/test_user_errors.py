"""User mistakes end in one paragraph with the fix and exit 2; tracebacks are for bugs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mtneuro.cli import USER_ERROR_EXIT, check_pipeline_names, known_error

PROJECT = Path(__file__).resolve().parents[2]


def _kedro_run(*args: str, cwd: Path = PROJECT) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    return subprocess.run(
        [sys.executable, "-m", "kedro", "run", *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=600
    )


def _lines(run: subprocess.CompletedProcess) -> list[str]:
    return [line for line in (run.stdout + run.stderr).splitlines() if line.strip()]


def test_a_misspelt_parameter_is_one_paragraph_and_exit_2() -> None:
    run = _kedro_run("--params", "classification.nosuchkey=1")
    lines = _lines(run)
    assert run.returncode == USER_ERROR_EXIT, "\n".join(lines)
    assert len(lines) <= 15, "\n".join(lines)
    assert "Traceback" not in run.stdout + run.stderr
    text = "\n".join(lines)
    assert "classification.nosuchkey: unknown key; allowed keys here:" in text
    assert "methods" in text  # the allowed keys, the fix


def test_a_misspelt_pipeline_is_one_paragraph_and_exit_2() -> None:
    run = _kedro_run("--pipelines=clasification")
    lines = _lines(run)
    assert run.returncode == USER_ERROR_EXIT, "\n".join(lines)
    assert len(lines) <= 15, "\n".join(lines)
    assert "Traceback" not in run.stdout + run.stderr
    assert "No pipeline named 'clasification'. Did you mean `--pipelines=classification`?" in "\n".join(lines)


def test_verbose_keeps_the_traceback() -> None:
    run = _kedro_run("--pipelines=nosuch", "--verbose")
    assert run.returncode != 0
    assert "UnknownPipelineError" in run.stdout + run.stderr


def test_known_errors_are_found_behind_kedros_wrapping_and_bugs_are_not() -> None:
    from kedro.io import DatasetError

    from mtneuro.config.base import ConfigurationError
    from mtneuro.errors import MtneuroError
    from mtneuro.volumes.base import SourceUnreachableError

    try:
        try:
            raise SourceUnreachableError("BossDB at https://api.bossdb.io cannot be reached; check volume.source")
        except SourceUnreachableError as exc:
            raise DatasetError("Failed while loading data from dataset cubes") from exc
    except DatasetError as wrapped:
        found = known_error(wrapped)
    assert isinstance(found, SourceUnreachableError)
    assert known_error(ConfigurationError("x")) is not None
    assert known_error(MtneuroError("a node refuses its inputs; rerun ingestion")) is not None  # the one base
    assert known_error(ValueError("Failed to find the pipeline named 'x'")) is not None
    assert known_error(ValueError("operands could not be broadcast together")) is None
    assert known_error(KeyError("cube_id")) is None
    check_pipeline_names(["classification", "__default__"])
    with pytest.raises(ValueError, match="Did you mean `--pipelines=probing`"):
        check_pipeline_names(["probng"])


@pytest.mark.slow
def test_missing_inputs_are_one_paragraph_and_exit_2(tmp_path: Path) -> None:
    run = _kedro_run("--pipelines=reporting", "--params", f"data_root={tmp_path}")
    lines = _lines(run)
    assert run.returncode == USER_ERROR_EXIT, "\n".join(lines)
    assert "Traceback" not in run.stdout + run.stderr
    assert any("kedro run --pipelines=classification" in line for line in lines), "\n".join(lines)
