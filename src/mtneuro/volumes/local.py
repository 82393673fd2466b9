"""The ``local`` source: volumes on this machine's disks (``zarr://`` and ``tiff://`` URIs)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from mtneuro.volumes.base import PositiveNumber, SourceOptions
from mtneuro.volumes.registry import source_options


@source_options("local")
class LocalOptions(SourceOptions):
    """``volume.options.local``: overrides for Zarr / TIFF volumes (unset or null: not overridden)."""

    #: (z, y, x) micrometres, or one number for all three; unset: what the store says (else 1.0).
    voxel_size: PositiveNumber | Annotated[list[PositiveNumber], Field(min_length=3, max_length=3)] | None = None
