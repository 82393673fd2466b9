"""The ``ingestion`` parameter block (``conf/base/parameters_ingestion.yml``): which cubes to read."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, Field, NonNegativeInt, PositiveInt, ValidationInfo, field_validator

from mtneuro.config.base import StrictModel


def _increasing(span: list[int]) -> list[int]:
    if not span[0] < span[1]:
        raise ValueError("must be a half-open range [start, stop) with start < stop")
    return span


#: ``[start, stop)`` in voxels, absolute coordinates of the volume.
Span = Annotated[list[NonNegativeInt], Field(min_length=2, max_length=2), AfterValidator(_increasing)]
#: A fraction in (0, 1].
Fraction = Annotated[float, Field(gt=0, le=1)]


class Box(StrictModel):
    """A half-open box of the volume, ``[start, stop)`` per axis."""

    z: Span
    y: Span
    x: Span


class MainCubes(StrictModel):
    """The four densely labelled main cubes (benchmark spec section 2)."""

    CTX: Box
    STR: Box
    VP: Box
    ZI: Box

    def by_region(self) -> dict[str, Box]:
        from mtneuro import spec

        return {r: getattr(self, r) for r in spec.REGIONS}


class Splits(StrictModel):
    """Slice splits inside the main cubes (absolute z, half-open)."""

    train: Span
    val: Span
    test: Span


class PinnedCube(StrictModel):
    """The corner of an extra cube whose position is fixed instead of chosen."""

    z0: NonNegativeInt
    y0: NonNegativeInt
    x0: NonNegativeInt


_PINNED_ID = re.compile(r"^extra_(?P<region>[A-Za-z]+)_(?P<k>\d+)$")


class ExtraCubes(StrictModel):
    """The ROI-C2/C3 cubes, chosen from coarse region labels (or pinned)."""

    per_region: PositiveInt
    #: Cubes of a region that ROI-C3 trains on; the others are test cubes.
    train_per_region: NonNegativeInt
    depth: PositiveInt
    #: Of the footprint, on every sampled coarse section.
    min_region_fraction: Fraction
    #: ``roi_labels`` values never counted as a region when choosing (0: unlabelled, outside the
    #: annotated tissue), even where ``volume.region_label_values`` maps them to one.
    ignore_label_values: list[NonNegativeInt]
    #: Voxels (largest gap along z, y or x) every extra cube keeps from the full main-cube boxes,
    #: and train extras from test extras: no held-out cube touches a training cube.
    min_separation: NonNegativeInt
    #: Resolution level read to choose them (2**level times downsampled).
    overview_level: Annotated[int, Field(ge=0, le=30)]
    overview_sections: PositiveInt
    seed: NonNegativeInt
    #: ``extra_<region>_<k>`` -> corner, replacing the choice for that cube.
    pinned: dict[str, PinnedCube]

    @field_validator("train_per_region")
    @classmethod
    def _fewer_than_per_region(cls, value: int, info: ValidationInfo) -> int:
        per_region = info.data.get("per_region")
        if per_region is not None and value >= per_region:
            raise ValueError(f"must be smaller than per_region ({per_region}): every region needs a test cube")
        return value

    @field_validator("pinned")
    @classmethod
    def _known_cubes(cls, pinned: dict[str, PinnedCube], info: ValidationInfo) -> dict[str, PinnedCube]:
        from mtneuro import spec

        per_region = info.data.get("per_region")
        for cube_id in pinned:
            m = _PINNED_ID.match(cube_id)
            if not m or m["region"] not in spec.REGIONS or (per_region is not None and int(m["k"]) >= per_region):
                last = f"{(per_region or 1) - 1}"
                raise ValueError(
                    f"unknown cube {cube_id!r}; pinned cubes are extra_<region>_<k> with region one of "
                    f"{', '.join(spec.REGIONS)} and k in 0..{last}"
                )
        return pinned


class IngestionParameters(StrictModel):
    """``ingestion`` in ``conf/base/parameters_ingestion.yml`` (profiles override single keys)."""

    #: Declared before ``cube_size_yx`` so that its check sees them.
    main_cubes: MainCubes
    #: In-plane size of every cube: the centre ``cube_size_yx`` x ``cube_size_yx`` of each main cube.
    cube_size_yx: PositiveInt
    splits: Splits
    #: Smallest fraction of a cube's voxels that must carry its region's label.
    min_cube_region_fraction: Fraction
    extra_cubes: ExtraCubes

    @field_validator("cube_size_yx")
    @classmethod
    def _fits_the_main_cubes(cls, size: int, info: ValidationInfo) -> int:
        main_cubes = info.data.get("main_cubes")
        if main_cubes is not None:
            for region, box in main_cubes.by_region().items():
                for axis in ("y", "x"):
                    lo, hi = getattr(box, axis)
                    if size > hi - lo:
                        raise ValueError(
                            f"must lie in [1, {hi - lo}]: the main cube {region} spans {axis} = [{lo}, {hi})"
                        )
        return size
