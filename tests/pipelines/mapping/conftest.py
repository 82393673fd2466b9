"""Fixtures of the mapping tests (see mapping_support)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from mapping_support import make_region_model, make_segmentation_model


@pytest.fixture(scope="session")
def segmentation_model() -> torch.nn.Module:
    return make_segmentation_model()


@pytest.fixture(scope="session")
def region_model() -> tuple[Any, Any]:
    return make_region_model()
