"""Fixtures of the segmentation tests: typed parameters of the tiny profile (optionally with keys
changed through runtime parameters, as ``kedro run --params`` would), and synthetic cubes with
their split index."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mtneuro import spec
from mtneuro.config import ProjectParameters, TrainingParameters, load_parameters
from mtneuro.cubes import Cube, CubeSpec
from mtneuro.volumes import Window

DEPTH, SIZE = 40, 32
SPLITS = {"train": range(20), "val": range(20, 26), "test": range(28, 40)}


@pytest.fixture(scope="session")
def tiny_parameters(project_path: Path) -> ProjectParameters:
    return load_parameters(project_path / "conf", "tiny")


@pytest.fixture(scope="session")
def tiny_with(project_path: Path) -> Callable[..., ProjectParameters]:
    """The tiny profile with ``segmentation`` keys replaced (nested dicts, merged over the YAML)."""

    def load(**segmentation: Any) -> ProjectParameters:
        return load_parameters(project_path / "conf", "tiny", runtime_params={"segmentation": segmentation})

    return load


@pytest.fixture(scope="session")
def training(tiny_parameters: ProjectParameters) -> TrainingParameters:
    """The shared training block on the CPU, quiet."""
    return tiny_parameters.training.model_copy(update={"accelerator": "cpu", "progress_bar": False})


def _synthetic_cube(region: str, seed: int) -> Cube:
    """Dark disks (vessels, large; cells, small) and bright stripes (axons) on gray tissue."""
    rng = np.random.default_rng(seed)
    z, y, x = np.mgrid[0:DEPTH, 0:SIZE, 0:SIZE]
    labels = np.zeros((DEPTH, SIZE, SIZE), dtype=np.uint64)
    if region in ("STR", "VP"):
        labels[(y + z // 4) % 9 < 2] = spec.AXON
    for _ in range(3):
        cy, cx = rng.integers(4, SIZE - 4, 2)
        labels[(y - cy) ** 2 + (x - cx) ** 2 < 10] = spec.VESSEL
    for _ in range(6):
        cz, cy, cx = rng.integers(0, DEPTH), *rng.integers(2, SIZE - 2, 2)
        labels[(z - cz) ** 2 / 9 + (y - cy) ** 2 + (x - cx) ** 2 < 5] = spec.CELL
    gray = np.array([130, 40, 70, 180], dtype=float)[labels.astype(int)] + rng.normal(0, 8, labels.shape)
    window = Window(110, 110 + DEPTH, 0, SIZE, 0, SIZE)
    uris = {c: f"phantom://prasad2020/{c}" for c in ("image", "roi_labels", "pixel_labels")}
    cube_spec = CubeSpec(f"main_{region}", region, "main", window, uris)
    roi = np.full(labels.shape, spec.BRAIN_AREA_VALUES[region], dtype=np.uint64)
    return Cube(cube_spec, np.clip(gray, 0, 255).astype(np.uint8), roi, labels)


@pytest.fixture(scope="module")
def cubes() -> dict[str, Cube]:
    return {f"main_{r}": _synthetic_cube(r, i) for i, r in enumerate(spec.REGIONS)}


@pytest.fixture(scope="module")
def split_index(cubes: dict[str, Cube]) -> pd.DataFrame:
    rows = []
    for cube in cubes.values():
        for config in ("seg_3class", "seg_4class"):
            if config == "seg_4class" and cube.region == "ZI":
                continue
            for split, zs in SPLITS.items():
                rows += [
                    {
                        "config": config,
                        "cube_id": cube.cube_id,
                        "region": cube.region,
                        "label": spec.REGION_INDEX[cube.region],
                        "z": z,
                        "z_abs": z + cube.z_offset,
                        "split": split,
                    }
                    for z in zs
                ]
    return pd.DataFrame(rows)
