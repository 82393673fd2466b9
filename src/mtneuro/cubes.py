"""The cube: the unit of data every task reads, as ingestion stores it.

A cube is a window of the volume with its three channels. Ingestion writes each cube as a Zarr
group (``<cube_id>.zarr`` with arrays ``image``, ``roi_labels`` and, for main cubes,
``pixel_labels``; its attributes hold the source URIs, window and dtypes), so that a user can
open it with ``zarr.open_group`` without this package. Tasks receive :class:`Cube` objects from
the catalog dataset ``cubes`` (a ``dict[cube_id, Cube]``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mtneuro.volumes import Window


@dataclass(frozen=True)
class CubeSpec:
    """What to fetch: the cube's identity, window and the URI of each channel."""

    cube_id: str  # e.g. "main_CTX", "extra_STR_1"
    region: str  # one of spec.REGIONS
    role: str  # "main" (densely labelled) or "extra" (ROI-C2/C3 cubes, no pixel labels)
    window: Window  # absolute coordinates in the volume
    uris: dict[str, str]  # channel name -> URI; "pixel_labels" only for main cubes
    options: dict = field(default_factory=dict, compare=False)  # source options (host, token...)

    @property
    def channels(self) -> tuple[str, ...]:
        return tuple(self.uris)


@dataclass
class Cube:
    """A fetched cube. Arrays are ``[z, y, x]``; ``z`` index 0 is absolute ``window.z0``."""

    spec: CubeSpec
    image: np.ndarray  # uint8 gray values
    roi_labels: np.ndarray  # raw brain-area values of the source (uint64 on BossDB)
    pixel_labels: np.ndarray | None  # 0 background, 1 vessel, 2 cell, 3 axon; None for extras

    @property
    def cube_id(self) -> str:
        return self.spec.cube_id

    @property
    def region(self) -> str:
        return self.spec.region

    @property
    def z_offset(self) -> int:
        return self.spec.window.z0


@dataclass(frozen=True)
class SectionRequest:
    """What ingestion asks of a channel before it fetches cubes (``region_overview``): a few
    coarse sections, spread over the volume's real depth when the source is opened."""

    uri: str
    #: The run's source options (``volume.options.<source>``; credentials are added on read).
    options: dict[str, Any]
    #: How many sections.
    sections: int
    #: The resolution level read (``2**level`` times downsampled in y and x).
    level: int


@dataclass(frozen=True, eq=False)
class SectionOverview:
    """The coarse sections read for a :class:`SectionRequest` (``region_overview`` once saved)."""

    request: SectionRequest
    #: The z index of each section in the volume.
    z_indices: tuple[int, ...]
    #: ``(len(z_indices), ny, nx)`` values of the channel at ``request.level``.
    sections: np.ndarray
    #: ``(z, y, x)`` of the full-resolution volume.
    volume_shape: tuple[int, int, int]

    @property
    def uri(self) -> str:
        return self.request.uri

    @property
    def level(self) -> int:
        return self.request.level


def source_kind(uri: str) -> str:
    """``phantom``, ``bossdb`` or ``local`` (Zarr/TIFF) for a channel URI."""
    scheme = uri.partition("://")[0]
    return {"phantom": "phantom", "bossdb": "bossdb"}.get(scheme, "local")


def describe_source(cubes: dict[str, Cube]) -> str:
    """The data source that produced a set of cubes, for the ``source`` column of every report."""
    kinds = sorted({source_kind(c.spec.uris["image"]) for c in cubes.values()})
    return "+".join(kinds) if kinds else "unknown"
