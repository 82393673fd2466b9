"""Every random number of the phantom comes from a named stream of the seed.

Two kinds of streams, each addressed by name, never by position:

* **Global streams** (:data:`GLOBAL_STREAMS`, :func:`stream_rng`): a NumPy generator per name,
  for choices made once per seed (wave vectors, large vessels). Each name owns a fixed child
  index of the seed's :class:`numpy.random.SeedSequence`; a child does not depend on how many
  others exist, so a new stream takes a new index and shifts no other.
* **Hashed streams** (:data:`HASHED_STREAMS`, :func:`hash3`, :func:`uniform_points`): counter-based
  hashes of ``(seed, salt, coordinates)``, for values tied to a place (voxel noise, the lattice
  texture, cell candidates), so that a window's voxels never depend on the window.

A new stream is one new entry with an unused index or salt (``tests/volumes/test_phantom_identity.py``
checks they stay unique).
"""

from __future__ import annotations

import numpy as np

#: Entropy shared by every global stream (with the seed).
_ENTROPY = 20200358

#: Global stream name -> child index of ``SeedSequence([seed, 20200358])``.
GLOBAL_STREAMS: dict[str, int] = {
    "capillary_1": 0,
    "capillary_2": 1,
    "fibre_warp": 2,
    "large_vessels": 3,
    "fibre_CC": 4,
    "fibre_HYP": 5,
    "fibre_IC": 6,
    "fibre_STR": 7,
    "fibre_TRN": 8,
    "fibre_VP": 9,
    "fine_capillary_1": 10,
    "fine_capillary_2": 11,
    "vessel_density": 12,
    "axon_density": 13,
    "streaks": 14,
    "brightness": 15,
    "gain": 16,
}

#: Hashed stream name -> salt.
HASHED_STREAMS: dict[str, int] = {
    "voxel_noise": 1,  # per voxel: low 16 bits before the blur, high 16 bits after it
    "texture": 7,  # per lattice point: mottled tissue texture
    "cell_z": 100,  # per cell candidate (grid cell, slot): position in its grid cell
    "cell_y": 101,
    "cell_x": 102,
    "cell_accept": 103,  # kept if below the area's rate
    "cell_size": 104,
    "cell_elongation": 105,
    "cell_angle": 106,
    "cell_darkness": 107,
}


def stream_rng(seed: int, name: str) -> np.random.Generator:
    """The generator of the global stream ``name`` of ``seed``."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), _ENTROPY], spawn_key=(GLOBAL_STREAMS[name],)))


M1 = np.uint32(0x7FEB352D)
M2 = np.uint32(0x846CA68B)


def mix32(h: np.ndarray) -> np.ndarray:
    """lowbias32 integer hash, in place on a uint32 array (returned)."""
    h ^= h >> np.uint32(16)
    h *= M1
    h ^= h >> np.uint32(15)
    h *= M2
    h ^= h >> np.uint32(16)
    return h


def u32(values) -> np.ndarray:
    return (np.asarray(values, dtype=np.int64) & 0xFFFFFFFF).astype(np.uint32)


def hash3(seed: int, stream: str, zs: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """uint32 hash of every (z, y, x) of the grid zs x ys x xs (1D integer arrays), stream ``stream``."""
    key = mix32(u32([seed * 1000003 + HASHED_STREAMS[stream] * 7919 + 12345]))[0]
    hz = mix32(u32(zs) ^ key)
    hzy = mix32(hz[:, None] + mix32(u32(ys) * np.uint32(0x9E3779B1))[None, :])
    h = hzy[:, :, None] + u32(xs)[None, None, :]
    return mix32(h)


def uniform_points(seed: int, stream: str, keys: np.ndarray) -> np.ndarray:
    """Uniform [0, 1) float64 for each row of integer keys (n, k), stream ``stream``."""
    h = mix32(u32(np.full(keys.shape[0], seed * 1000003 + HASHED_STREAMS[stream] * 7919 + 777)))
    for j in range(keys.shape[1]):
        h = mix32(h + mix32(u32(keys[:, j]) + np.uint32(0x9E3779B9 * (j + 1) & 0xFFFFFFFF)))
    return h.astype(np.float64) / 4294967296.0
