"""Fixtures of the Task 1 tests: the synthetic cubes and their prepared images."""

from __future__ import annotations

import pandas as pd
import pytest
from classification_helpers import make_cubes, make_split_index, tiny_params

from mtneuro.cubes import Cube
from mtneuro.pipelines.classification import nodes


@pytest.fixture(scope="module")
def synthetic() -> tuple[dict[str, Cube], pd.DataFrame]:
    cubes = make_cubes()
    return cubes, make_split_index(cubes)


@pytest.fixture(scope="module")
def images(synthetic) -> dict:
    cubes, index = synthetic
    data, summary = nodes.prepare_images(cubes, index, tiny_params())
    assert summary["source"] == "phantom"
    return data
