"""Typed parameters of the base profile for the ingestion tests."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mtneuro.config import ProjectParameters, load_parameters
from mtneuro.config.ingestion import IngestionParameters
from mtneuro.config.volume import VolumeParameters


def nested(flat: dict[str, Any]) -> dict[str, Any]:
    """``{"a.b": 1}`` -> ``{"a": {"b": 1}}`` (runtime parameters as ``--params`` gives them)."""
    out: dict[str, Any] = {}
    for key, value in flat.items():
        *parents, last = key.split(".")
        node = out
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    return out


@pytest.fixture(scope="session")
def parameters_with(project_path: Path) -> Callable[..., ProjectParameters]:
    """A profile (default: ``conf/base`` + ``conf/local``) with single keys overridden.

    ``parameters_with("tiny", **{"ingestion.cube_size_yx": 64})``; ``project_path`` bootstraps
    the project, so the config loader merges profiles key by key as in a real run.
    """

    def load(env: str = "local", **overrides: Any) -> ProjectParameters:
        return load_parameters(project_path / "conf", env, nested(overrides))

    return load


@pytest.fixture(scope="session")
def volume(parameters_with) -> VolumeParameters:
    return parameters_with().volume


@pytest.fixture(scope="session")
def ingestion(parameters_with) -> IngestionParameters:
    return parameters_with().ingestion


@pytest.fixture
def ingest(project_path: Path, tmp_path: Path) -> Callable[..., Path]:
    """Run the ingestion pipeline in a real Kedro session on a copy of ``conf/``.

    ``ingest(data_root, env="tiny", params={...}, credentials={"host": ..., "token": ...})``
    writes ``credentials`` to the copy's ``conf/local/credentials.yml`` (key ``bossdb``), as a
    user would, since a token is never a parameter; ``log_handler`` is attached to the root
    logger while the pipeline runs. Returns the configuration folder used.
    """
    import shutil

    import yaml
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    conf = tmp_path / "conf"

    def run(
        data_root: Path,
        env: str = "tiny",
        params: dict[str, Any] | None = None,
        credentials: dict[str, Any] | None = None,
        log_handler: Any = None,
    ) -> Path:
        if not conf.exists():
            shutil.copytree(project_path / "conf", conf)
        (conf / "local").mkdir(exist_ok=True)
        for old in (conf / "local").glob("credentials*"):
            old.unlink()
        if credentials:
            (conf / "local" / "credentials.yml").write_text(yaml.safe_dump({"bossdb": credentials}))
        bootstrap_project(project_path)
        runtime = {"data_root": str(data_root), **(params or {})}
        with KedroSession.create(
            project_path=project_path, env=env, runtime_params=runtime, conf_source=str(conf)
        ) as session:
            root, project = logging.getLogger(), logging.getLogger("mtneuro")
            level = project.level
            if log_handler is not None:  # after Kedro configured logging for the session
                root.addHandler(log_handler)
                project.setLevel(min(level or logging.INFO, log_handler.level or logging.INFO))
            try:
                session.run(pipeline_names=["ingestion"])
            finally:
                root.removeHandler(log_handler)
                project.setLevel(level)
        return conf

    return run
