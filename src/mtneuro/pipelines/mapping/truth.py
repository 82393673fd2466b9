"""Dense microstructure truth of the phantom, for validating maps only (never for training).

The phantom draws every structure everywhere, but its ``pixel_labels`` channel is 0 outside the
four main cubes (as on BossDB). :func:`dense_pixel_labels` reads the labels it draws, without
that mask, through the phantom's option ``dense_labels=True``.
"""

from __future__ import annotations

import numpy as np

from mtneuro.volumes import VolumeSource, VolumeSourceError, Window, open_volume


def dense_pixel_labels(source: VolumeSource, window: Window) -> np.ndarray:
    """uint8 pixel labels (0 background, 1 vessel, 2 cell, 3 axon) of a phantom window, everywhere."""
    if not getattr(source, "dense_labels", False):
        dense = open_volume(source.uri, seed=int(getattr(source, "seed", 0)), dense_labels=True)
        if not getattr(dense, "dense_labels", False):
            raise VolumeSourceError(
                f"{source.uri!r} has no dense labels (only the phantom's pixel_labels channel has the "
                "option dense_labels); set mapping.validation.dense_truth to false for this source."
            )
        source = dense
    return np.asarray(source.read(window)).astype(np.uint8)
