"""Adding a volume source with options is one module plus YAML: a toy source, written as a module
of :mod:`mtneuro.volumes` would be, is found, its options are checked by its own model, and the
parameters open it."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import mtneuro.volumes as volumes_package
from mtneuro.config import ConfigurationError
from mtneuro.plugin_parameters import load_checked_parameters
from mtneuro.volumes import Window, open_volume
from mtneuro.volumes.registry import SOURCE_OPTIONS, SOURCES

MODULE = "aaa_toy_ramp"
TOY_MODULE = '''"""A toy source: every voxel of section z holds ``z * step``."""

import numpy as np
from pydantic import PositiveInt

from mtneuro.volumes.base import SourceOptions, VolumeSource, Window
from mtneuro.volumes.registry import register_scheme, source_options


@source_options("toy")
class ToyOptions(SourceOptions):
    """``volume.options.toy``."""

    step: PositiveInt | None = None


class RampVolume(VolumeSource):
    def __init__(self, uri: str, step: int) -> None:
        self.uri, self.step = uri, step
        self._shape, self._dtype = (8, 16, 16), np.dtype(np.uint8)

    def _read(self, window: Window) -> np.ndarray:
        z = np.arange(window.z0, window.z1, dtype=np.uint8)[:, None, None] * np.uint8(self.step)
        return np.broadcast_to(z, window.shape).copy()


@register_scheme("toyramp")
def open_ramp(uri: str, step: int = 1, **_options: object) -> RampVolume:
    return RampVolume(uri, int(step))
'''

TOY_PARAMETERS = {
    "volume": {
        "source": "toy",
        "uris": {"toy": {c: f"toyramp://ramp/{c}" for c in ("image", "roi_labels", "pixel_labels")}},
        "options": {"toy": {"step": 3}},
    }
}


@pytest.fixture
def toy_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The one file a contributor adds, in a folder of the package's path."""
    (tmp_path / f"{MODULE}.py").write_text(TOY_MODULE)
    for registry in (SOURCES, SOURCE_OPTIONS):
        registry.discover()
        monkeypatch.setattr(registry, "_discovered", False)  # the next read imports the new module
    monkeypatch.setattr(volumes_package, "__path__", [*volumes_package.__path__, str(tmp_path)])
    yield "toy"
    SOURCES.unregister("toyramp")
    SOURCE_OPTIONS.unregister("toy")
    sys.modules.pop(f"mtneuro.volumes.{MODULE}", None)


def test_without_its_module_the_toy_source_is_refused(project_path: Path):
    with pytest.raises(ConfigurationError) as error:
        load_checked_parameters(project_path / "conf", "tiny", TOY_PARAMETERS)
    text = str(error.value)
    listed = re.search(r"volume\.source: unknown volume source 'toy'; registered sources: ([a-z, ]+?) \(", text)
    assert listed and set(listed.group(1).split(", ")) == {"bossdb", "local", "phantom"}, text  # in import order
    assert "toyramp" in text and "registered sources" in text


def test_a_toy_source_is_one_module_plus_yaml(toy_source: str, project_path: Path):
    volume = load_checked_parameters(project_path / "conf", "tiny", TOY_PARAMETERS).volume
    assert volume.source == toy_source and volume.source_options() == {"step": 3}
    source = open_volume(volume.channel_uris()["image"], **volume.source_options())
    np.testing.assert_array_equal(source.read(Window(2, 4, 0, 2, 0, 2))[:, 0, 0], [6, 9])

    bad = {"volume": {**TOY_PARAMETERS["volume"], "options": {"toy": {"stpe": 3, "step": 0}}}}
    with pytest.raises(ConfigurationError) as error:
        load_checked_parameters(project_path / "conf", "tiny", bad)
    text = str(error.value)
    assert "volume.options.toy.stpe: unknown key; allowed keys here: step" in text
    assert "volume.options.toy.step: Input should be greater than 0" in text
