"""Typed parameters of the base profile for the ingestion tests."""

from __future__ import annotations

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
