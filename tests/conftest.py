"""Shared test fixtures: real Kedro sessions into temporary folders."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

PROJECT_PATH = Path(__file__).resolve().parents[1]
#: Real prasad2020 samples shipped with the tests (CC BY 4.0, see the README beside them).
SAMPLE_DIR = PROJECT_PATH / "tests" / "data" / "prasad2020"


def pytest_configure(config: pytest.Config) -> None:
    """The log file of every Kedro run of the suite (in-process sessions and ``kedro run``
    subprocesses) goes to a temporary folder, never into the project's ``info.log``."""
    from kedro.framework.project import LOGGING

    logs = Path(tempfile.mkdtemp(prefix="mtneuro-test-logs-"))
    logging_config = yaml.safe_load((PROJECT_PATH / "conf" / "logging.yml").read_text(encoding="utf-8"))
    logging_config["handlers"]["info_file_handler"]["filename"] = str(logs / "info.log")
    path = logs / "logging.yml"
    path.write_text(yaml.safe_dump(logging_config), encoding="utf-8")
    os.environ["KEDRO_LOGGING_CONFIG"] = str(path)  # subprocesses
    LOGGING.configure(logging_config)  # this process


@pytest.fixture(autouse=True)
def _tracking_store_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """MLflow runs of the tests go to a temporary store, never into the checkout."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")


@pytest.fixture(scope="session")
def project_path() -> Path:
    bootstrap_project(PROJECT_PATH)
    return PROJECT_PATH


@pytest.fixture
def kedro_run(project_path: Path) -> Callable[..., None]:
    """Run pipelines through a real KedroSession on a profile, writing under ``data_root``."""

    def run(
        pipeline_names: list[str],
        data_root: Path,
        env: str = "tiny",
        extra_params: dict | None = None,
        **run_kwargs: object,
    ) -> None:
        runtime_params = {"data_root": str(data_root), **(extra_params or {})}
        bootstrap_project(project_path)  # a fresh registry: the grids are built from this run's configuration
        with KedroSession.create(project_path=project_path, env=env, runtime_params=runtime_params) as session:
            session.run(pipeline_names=pipeline_names, **run_kwargs)

    return run


@pytest.fixture
def sample_dir() -> Path:
    """The real prasad2020 samples shipped in ``tests/data/prasad2020``."""
    return SAMPLE_DIR
