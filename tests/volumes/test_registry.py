"""The source registry: one module per scheme, found without a list; the package's public API."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import mtneuro.volumes as volumes
from mtneuro.volumes import VolumeSource, VolumeSourceError, Window, open_volume, register_scheme
from mtneuro.volumes.registry import source_modules


def test_every_source_module_registers_its_scheme() -> None:
    assert source_modules() == [f"mtneuro.volumes.{m}" for m in ("bossdb", "local", "phantom", "tiff", "zarr")]
    assert {"bossdb", "phantom", "tiff", "zarr"} <= set(volumes.schemes())  # tests may register more


def test_the_package_exports_every_source() -> None:
    from mtneuro.volumes.bossdb import BossDBVolume
    from mtneuro.volumes.phantom import PhantomVolume
    from mtneuro.volumes.tiff import TiffFolderVolume
    from mtneuro.volumes.zarr import ZarrVolume

    assert volumes.BossDBVolume is BossDBVolume and volumes.PhantomVolume is PhantomVolume
    assert volumes.TiffFolderVolume is TiffFolderVolume and volumes.ZarrVolume is ZarrVolume
    assert set(volumes.__all__) <= set(dir(volumes))
    with pytest.raises(AttributeError):
        volumes.NoSuchVolume  # noqa: B018


def test_importing_the_interface_loads_no_source() -> None:
    """``from mtneuro.volumes import Window`` (every pipeline) imports neither SciPy nor the sources."""
    code = (
        "import sys; from mtneuro.volumes import Window, open_volume; "
        "print(sorted(m for m in sys.modules if m.startswith('mtneuro.volumes.') or m == 'scipy'))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['mtneuro.volumes.base', 'mtneuro.volumes.registry']"


class _Constant(VolumeSource):
    def __init__(self, uri: str, value: int = 7, **options: object) -> None:
        self.uri = uri
        self._shape = (2, 3, 4)
        self._dtype = np.dtype(np.uint8)
        self.value = value

    def _read(self, window: Window) -> np.ndarray:
        return np.full(window.shape, self.value, dtype=np.uint8)


def test_a_registered_scheme_opens_and_unknown_ones_list_it() -> None:
    register_scheme("constant-test")(_Constant)
    vol = open_volume("constant-test://x", value=3, seed=1)  # options a source does not know are its own business
    np.testing.assert_array_equal(vol.read((0, 2, 0, 3, 0, 4)), np.full((2, 3, 4), 3, np.uint8))
    with pytest.raises(VolumeSourceError, match="constant-test://"):
        open_volume("nope://x")
