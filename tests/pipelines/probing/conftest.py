"""Fixtures of the probing tests: typed parameters of the profiles (and copies with keys changed),
synthetic cubes with their split index, and a stand-in frozen encoder."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd
import pytest
from pydantic import BaseModel

from mtneuro import spec
from mtneuro.config import ProjectParameters, load_parameters
from mtneuro.config.probing import ProbingParameters
from mtneuro.cubes import Cube, CubeSpec
from mtneuro.volumes import Window

M = TypeVar("M", bound=BaseModel)


@pytest.fixture(scope="session")
def base_parameters(project_path: Path) -> ProjectParameters:
    """The base profile (``conf/base``; ``local`` adds nothing to the parameters)."""
    return load_parameters(project_path / "conf", "local")


@pytest.fixture(scope="session")
def tiny_parameters(project_path: Path) -> ProjectParameters:
    return load_parameters(project_path / "conf", "tiny")


@pytest.fixture
def probing(base_parameters: ProjectParameters) -> ProbingParameters:
    return base_parameters.probing


def _with_values(model: M, **changes: Any) -> M:
    data = model.model_dump()
    for key, value in changes.items():
        *parents, leaf = key.split("__")
        target = data
        for parent in parents:
            target = target[parent]
        target[leaf] = value
    return type(model).model_validate(data)


@pytest.fixture
def with_values() -> Callable[..., Any]:
    """A validated copy of a parameter block with single keys changed: ``images__tile_size=16``."""
    return _with_values


class ProjectionEncoder:
    """Stand-in frozen encoder: mean-pool to 8x8, scale to [0, 1], fixed random projection."""

    def __init__(self, dim: int = 16, seed: int = 0) -> None:
        self.metadata = {"method": "stand-in", "dim": dim, "seed": seed}
        self._w = np.random.default_rng(seed).normal(size=(64, dim)).astype(np.float32)

    def embed(self, images: np.ndarray) -> np.ndarray:
        n, h, w = images.shape
        pooled = images.reshape(n, 8, h // 8, 8, w // 8).mean(axis=(2, 4)).reshape(n, 64) / 255.0
        return (pooled @ self._w).astype(np.float32)


def _cube(region: str, depth: int = 60, size: int = 32, seed: int = 0) -> Cube:
    rng = np.random.default_rng(seed)
    labels = np.zeros((depth, size, size), dtype=np.uint8)
    rows, cols = np.indices((size, size))
    for z in range(depth):
        labels[z, :, : rng.integers(0, size // 3)] = spec.VESSEL
        labels[z, size - rng.integers(0, size // 2) :, :] = spec.AXON
        for _ in range(rng.integers(0, 5)):
            cy, cx, r = rng.integers(4, size - 4), rng.integers(4, size - 4), rng.integers(1, 4)
            labels[z][(rows - cy) ** 2 + (cols - cx) ** 2 <= r * r] = spec.CELL
    image = (40 + 60 * labels + rng.integers(0, 20, labels.shape)).astype(np.uint8)
    window = Window(110, 110 + depth, 0, size, 0, size)
    uris = {c: f"phantom://prasad2020/{c}" for c in ("image", "roi_labels", "pixel_labels")}
    cube_spec = CubeSpec(f"main_{region}", region, "main", window, uris)
    return Cube(cube_spec, image, np.zeros(labels.shape, dtype=np.uint64), labels)


@pytest.fixture
def cubes() -> dict[str, Cube]:
    return {f"main_{r}": _cube(r, seed=i) for i, r in enumerate(spec.REGIONS)}


def make_split_index(cubes: dict[str, Cube]) -> pd.DataFrame:
    frames = []
    for cube in cubes.values():
        z = np.arange(cube.image.shape[0])
        frames.append(
            pd.DataFrame(
                {
                    "config": "probing",
                    "cube_id": cube.cube_id,
                    "region": cube.region,
                    "label": spec.REGION_INDEX[cube.region],
                    "z": z,
                    "z_abs": z + cube.z_offset,
                    "split": "all",
                }
            )
        )
        frames.append(frames[-1].assign(config="roi_c1", split="train"))
    return pd.concat(frames, ignore_index=True)


@pytest.fixture
def split_index() -> Callable[[dict[str, Cube]], pd.DataFrame]:
    """The split index of cubes: every slice a ``probing`` row (and a ``roi_c1`` training row)."""
    return make_split_index


@pytest.fixture
def encoder() -> type[ProjectionEncoder]:
    """The stand-in frozen encoder class: ``encoder(dim=16, seed=0)``."""
    return ProjectionEncoder
