"""The phantom's voxels, pinned: a refactor of ``mtneuro.volumes.phantom`` must not change them.

SHA-256 (first 16 hex digits) of image, roi_labels, pixel_labels and dense pixel_labels of small
windows at the default seed, in each main cube (one 32 slices deep: the cached, padded path),
across an area border and far from every main cube (top of CTX, hypothalamus at the tissue
edge). When the phantom is changed on purpose, record the new hashes here in a commit that says
so (``uv run python tests/volumes/test_phantom_identity.py`` prints them).
"""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from mtneuro.volumes import Window, open_volume
from mtneuro.volumes.phantom import AREA_PARAMS, AREAS
from mtneuro.volumes.phantom.params import FIBRES
from mtneuro.volumes.phantom.streams import GLOBAL_STREAMS, HASHED_STREAMS, stream_rng

WINDOWS: dict[str, Window] = {
    "main_CTX": Window(300, 308, 1000, 1064, 4700, 4764),
    "main_STR_32": Window(420, 452, 600, 664, 3800, 3864),
    "main_VP": Window(200, 206, 900, 964, 3100, 3164),
    "main_ZI": Window(150, 156, 700, 764, 1600, 1664),
    "border_VP_IC": Window(309, 313, 700, 764, 3420, 3500),
    "far_CTX_top": Window(20, 26, 200, 264, 5300, 5364),
    "far_hypothalamus_edge": Window(650, 654, 700, 800, 100, 228),
}
#: (image, roi_labels, pixel_labels, dense pixel_labels) per window, seed 0. The images changed on
#: purpose with issue 24 (gray levels: edge profile and slow brightness field instead of the old
#: drift, area base values), and images and vessel labels again with its VP test-slice fix (the
#: capillary density field varies twice as fast along z: params.VESSEL_DENSITY_KZ 1.5 -> 3).
#: Images and pixel labels changed on purpose again with issue 24's held-out statistics
#: (capillaries as round tubes of one calibre, narrower flat-topped cell bodies with in-plane
#: rims, per-area rebalance; docs/phantom-calibration.md); roi_labels did not, nor the labels
#: far from cells and capillaries (border_VP_IC, far_CTX_top and far_hypothalamus_edge's
#: normal channel, 0 outside the main cubes).
EXPECTED: dict[str, tuple[str, str, str, str]] = {
    "main_CTX": ("5dc9f6e064bfbeae", "5d13d4f5eabdb864", "b9b68c06c36f0aaf", "b9b68c06c36f0aaf"),
    "main_STR_32": ("eb9ee3e5253882a5", "7654b51d68fbde17", "de3272be849300b7", "de3272be849300b7"),
    "main_VP": ("7104fdb6c6ff7ebd", "3605d939d50804f8", "3608dc98bf7c03ef", "3608dc98bf7c03ef"),
    "main_ZI": ("77d9c34d00cbec30", "d015c426962edaf5", "3aedcf9b13b1d125", "3aedcf9b13b1d125"),
    "border_VP_IC": ("0f48c8fafcdbcb38", "e1220326eba290f8", "6cdd259c8ecbe61f", "e8b9e840d7507939"),
    "far_CTX_top": ("7513474969123ae6", "c391125bd6d8fbe3", "3381de4ca9f3a477", "a912c70b4280f671"),
    "far_hypothalamus_edge": ("d6154bdc340d60c8", "fbb08b9da4577870", "d58201a30b35a606", "c9289cf65801509a"),
}
_CHANNELS = (("image", {}), ("roi_labels", {}), ("pixel_labels", {}), ("pixel_labels", {"dense_labels": True}))


def _digest(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()[:16]


def window_hashes(window: Window, seed: int = 0) -> tuple[str, ...]:
    return tuple(
        _digest(open_volume(f"phantom://prasad2020/{channel}", seed=seed, **options).read(window))
        for channel, options in _CHANNELS
    )


@pytest.mark.parametrize("name", list(WINDOWS))
def test_phantom_output_is_unchanged(name: str) -> None:
    assert window_hashes(WINDOWS[name]) == EXPECTED[name]


def test_random_streams_are_named_once() -> None:
    """A stream is a name with its own index/salt: a new one shifts no other."""
    assert len(set(GLOBAL_STREAMS.values())) == len(GLOBAL_STREAMS)
    assert len(set(HASHED_STREAMS.values())) == len(HASHED_STREAMS)
    assert {f"fibre_{name}" for name in FIBRES} <= set(GLOBAL_STREAMS)
    # a stream is the same generator however many others exist (SeedSequence children)
    children = np.random.SeedSequence([3, 20200358]).spawn(max(GLOBAL_STREAMS.values()) + 1)
    expected = np.random.default_rng(children[GLOBAL_STREAMS["streaks"]]).random(4)
    np.testing.assert_array_equal(stream_rng(3, "streaks").random(4), expected)
    with pytest.raises(KeyError):
        stream_rng(0, "no_such_stream")


def test_area_table_covers_every_area_and_fibre_family() -> None:
    assert list(AREA_PARAMS) == list(AREAS)
    families = {p.axon_family for p in AREA_PARAMS.values()} - {None}
    assert families <= set(FIBRES)


if __name__ == "__main__":
    for name, window in WINDOWS.items():
        print(f"    {name!r}: {window_hashes(window)!r},")
