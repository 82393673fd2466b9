"""The ``volume`` parameter block (``conf/base/parameters.yml``): which volume every pipeline reads."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, Field, NonNegativeInt, ValidationError, model_validator

from mtneuro.config.base import StrictModel, error_at

#: The channels every source provides.
CHANNELS: tuple[str, ...] = ("image", "roi_labels", "pixel_labels")


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


RegionLabels = Annotated[list[NonNegativeInt], Field(min_length=1)]


class RegionLabelValues(StrictModel):
    """``roi_labels`` value(s) that count as each Task 1 region."""

    CTX: RegionLabels
    STR: RegionLabels
    VP: RegionLabels
    ZI: RegionLabels


class VolumeParameters(StrictModel):
    """``volume`` in ``conf/base/parameters.yml``.

    ``uris`` and ``options`` hold one entry per source (``phantom``, ``bossdb``, ``local``, ...);
    each source owns the model of its options (:mod:`mtneuro.volumes`), against which they are
    checked when the pipelines are built, like the source names.
    """

    #: The source every pipeline reads: a key of ``uris`` and ``options``.
    source: Annotated[str, Field(min_length=1)]
    uris: dict[str, ChannelUris]
    options: dict[str, dict[str, Any] | None]
    region_label_values: RegionLabelValues

    @model_validator(mode="after")
    def _source_is_configured(self) -> VolumeParameters:
        """``volume.uris`` and ``volume.options`` have an entry for ``volume.source``."""
        errors = [
            error_at(
                ("source",),
                f"volume.{block} has no entry for it (entries: {', '.join(getattr(self, block))})",
                self.source,
            )
            for block in ("uris", "options")
            if self.source not in getattr(self, block)
        ]
        if errors:
            raise ValidationError.from_exception_data(type(self).__name__, errors)
        return self

    def channel_uris(self) -> dict[str, str]:
        """Channel -> URI of the configured source."""
        uris = self.uris[self.source]
        return {c: str(getattr(uris, c)) for c in CHANNELS}

    def source_options(self) -> dict[str, Any]:
        """Options passed to every channel of the source: the keys the YAML sets (null: not overridden)."""
        return {k: v for k, v in (self.options[self.source] or {}).items() if v is not None}

    def region_values(self) -> dict[str, list[int]]:
        """Task 1 region -> the ``roi_labels`` values that count as that region."""
        from mtneuro import spec

        return {r: [int(v) for v in getattr(self.region_label_values, r)] for r in spec.REGIONS}
