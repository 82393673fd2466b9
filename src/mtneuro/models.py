"""Model factories: the one place that builds networks for every task.

Sections: Task 1 encoders (ResNet-18, frozen-encoder protocol), Task 2 2D segmentation models
(segmentation_models_pytorch) and 3D segmentation models (MONAI). Tasks call these factories;
they never build networks themselves.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class FrozenEncoder(Protocol):
    """A trained, frozen image encoder as Task 3 reads it from the catalog.

    ``embed`` takes raw uint8 images ``(N, H, W)`` as ingestion stores them and does its own
    preprocessing (resizing, scaling/normalisation recorded in ``metadata``), returning
    float32 embeddings ``(N, D)``.
    """

    metadata: dict[str, Any]

    def embed(self, images: np.ndarray) -> np.ndarray: ...


# --- Task 1: classification encoders -------------------------------------------------------


# --- Task 2: 2D segmentation (segmentation_models_pytorch) ---------------------------------


# --- Task 2: 3D segmentation (MONAI) -------------------------------------------------------
