"""The ``volume`` parameter block (``conf/base/parameters.yml``): which volume every pipeline reads."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt

from mtneuro.config.base import StrictModel

#: Values of ``volume.source``: the keys of ``volume.uris`` and ``volume.options``.
Source = Literal["phantom", "bossdb", "local"]
#: The channels every source provides.
CHANNELS: tuple[str, ...] = ("image", "roi_labels", "pixel_labels")

# Numbers keep the type they were written with (5 stays 5): source options are recorded in each
# cube's request, and a cube on disk is only reused for an identical request.
PositiveNumber = PositiveInt | PositiveFloat
NonNegativeNumber = NonNegativeInt | NonNegativeFloat


def _uri(uri: str) -> str:
    scheme, sep, rest = uri.partition("://")
    if not sep or not scheme or not rest:
        raise ValueError(f"{uri!r} is not a volume URI (scheme://...)")
    return uri


#: A channel's URI; its scheme is checked against the registry when the pipelines are built.
VolumeUri = Annotated[str, AfterValidator(_uri)]


class ChannelUris(StrictModel):
    """The URI of each channel of one source (``phantom://``, ``bossdb://``, ``zarr://``, ``tiff://``)."""

    image: VolumeUri
    roi_labels: VolumeUri
    pixel_labels: VolumeUri


class SourceUris(StrictModel):
    phantom: ChannelUris
    bossdb: ChannelUris
    local: ChannelUris


class PhantomOptions(StrictModel):
    """Options of the built-in phantom."""

    seed: NonNegativeInt


class BossDBOptions(StrictModel):
    """Overrides for BossDB reads; an unset (or null) key keeps the credentials' or the reader's value.

    Host and protocol normally come from the ``bossdb`` credentials; the reader's defaults are
    documented in :mod:`mtneuro.volumes`. The token is a secret and only ever comes from the
    credentials (``conf/local/credentials.yml``): parameters are logged, recorded with every
    cube and tracked, so there is no ``token`` key here.
    """

    host: Annotated[str, Field(min_length=1)] | None = None
    protocol: Literal["http", "https"] | None = None
    #: (z, y, x) voxels per cutout request.
    chunk_size: Annotated[list[PositiveInt], Field(min_length=3, max_length=3)] | None = None
    retries: NonNegativeInt | None = None
    backoff: NonNegativeNumber | None = None
    backoff_max: NonNegativeNumber | None = None
    #: Seconds, or [connect, read].
    timeout: PositiveNumber | Annotated[list[PositiveNumber], Field(min_length=2, max_length=2)] | None = None
    workers: PositiveInt | None = None
    #: ``off`` unquoted in YAML reads as false (true means auto).
    progress: Literal["auto", "bar", "log", "off", True, False] | None = None
    log_interval: NonNegativeNumber | None = None


class LocalOptions(StrictModel):
    """Overrides for Zarr / TIFF volumes (unset or null: not overridden)."""

    #: (z, y, x) micrometres, or one number for all three; unset: what the store says (else 1.0).
    voxel_size: PositiveNumber | Annotated[list[PositiveNumber], Field(min_length=3, max_length=3)] | None = None


class SourceOptions(StrictModel):
    phantom: PhantomOptions
    bossdb: BossDBOptions
    local: LocalOptions


RegionLabels = Annotated[list[NonNegativeInt], Field(min_length=1)]


class RegionLabelValues(StrictModel):
    """``roi_labels`` value(s) that count as each Task 1 region."""

    CTX: RegionLabels
    STR: RegionLabels
    VP: RegionLabels
    ZI: RegionLabels


class VolumeParameters(StrictModel):
    """``volume`` in ``conf/base/parameters.yml``."""

    source: Source
    uris: SourceUris
    options: SourceOptions
    region_label_values: RegionLabelValues

    def channel_uris(self) -> dict[str, str]:
        """Channel -> URI of the configured source."""
        uris = getattr(self.uris, self.source)
        return {c: str(getattr(uris, c)) for c in CHANNELS}

    def source_options(self) -> dict[str, Any]:
        """Options passed to every channel of the source: the keys the YAML sets (null: not overridden)."""
        return getattr(self.options, self.source).model_dump(exclude_none=True)

    def region_values(self) -> dict[str, list[int]]:
        """Task 1 region -> the ``roi_labels`` values that count as that region."""
        from mtneuro import spec

        return {r: [int(v) for v in getattr(self.region_label_values, r)] for r in spec.REGIONS}
