"""Dense microstructure truth of the phantom, for validating maps only (never for training).

The phantom draws every structure everywhere, but its ``pixel_labels`` channel is 0 outside the
four main cubes (as on BossDB). :func:`dense_pixel_labels` gives the labels it draws, without
that mask: through the phantom's own option when it has one (``dense_labels=True``, a source
with a true ``dense_labels`` attribute), otherwise by the same construction as the phantom's
``_pixel_labels`` minus the main-cube mask.
"""

from __future__ import annotations

import importlib

import numpy as np

from mtneuro import spec
from mtneuro.volumes import VolumeSource, Window, open_volume


def _phantom_module():
    for name in ("mtneuro.volumes.phantom", "mtneuro.phantom"):
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    raise ImportError("No phantom module (mtneuro.volumes.phantom or mtneuro.phantom)")


def dense_pixel_labels(source: VolumeSource, window: Window) -> np.ndarray:
    """uint8 pixel labels (0 background, 1 vessel, 2 cell, 3 axon) of a phantom window, everywhere."""
    if getattr(source, "dense_labels", False):
        return np.asarray(source.read(window)).astype(np.uint8)
    seed = int(getattr(source, "seed", 0))
    try:  # the phantom's own option, once it has one
        dense = open_volume(source.uri, seed=seed, dense_labels=True)
        if getattr(dense, "dense_labels", False):
            return np.asarray(dense.read(window)).astype(np.uint8)
    except TypeError:
        pass
    phantom = _phantom_module()
    st = phantom._structures(seed, window, pad=phantom._NO_PAD)
    lab = np.zeros(window.shape, dtype=np.uint8)
    lab[st.axon] = spec.AXON
    lab[st.cell > 0] = spec.CELL
    lab[st.vessel] = spec.VESSEL
    lab[st.area == 0] = spec.BACKGROUND
    return lab
