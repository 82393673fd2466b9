"""The ``mapping`` parameter block (``conf/base/parameters_mapping.yml``): brain-wide maps."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, NonNegativeInt, PositiveInt, model_validator

from mtneuro.config.base import StrictModel

Range = Annotated[list[NonNegativeInt], Field(min_length=2, max_length=2)]
Shape3 = Annotated[list[PositiveInt], Field(min_length=3, max_length=3)]


class MappingBox(StrictModel):
    """An explicit window ``z``, ``y``, ``x`` (absolute, half-open ``[lo, hi]``)."""

    z: Range
    y: Range
    x: Range

    @model_validator(mode="after")
    def _ordered(self) -> MappingBox:
        for axis in ("z", "y", "x"):
            lo, hi = getattr(self, axis)
            if hi <= lo:
                raise ValueError(f"window.{axis}: [{lo}, {hi}] is empty (hi must exceed lo)")
        return self


class MappingSlab(StrictModel):
    """``window: slab``: ``depth`` slices from ``z0`` across the whole plane."""

    z0: NonNegativeInt
    depth: PositiveInt


class MappingBlocks(StrictModel):
    """Work units (blocks) and storage chunks of the full-resolution arrays, (z, y, x) voxels."""

    shape_zyx: Shape3
    chunks_zyx: Shape3
    #: Voxels per request of the lazy (Dask) volume read.
    read_chunks_zyx: Shape3

    @model_validator(mode="after")
    def _aligned(self) -> MappingBlocks:
        for axis, b, c in zip("zyx", self.shape_zyx, self.chunks_zyx, strict=True):
            if b % c:
                raise ValueError(
                    f"blocks.shape_zyx ({axis} = {b}) must be a multiple of blocks.chunks_zyx ({axis} = {c}): "
                    "each block writes whole chunks (resumable, never two writers per chunk)"
                )
        return self


class MappingMicrostructure(StrictModel):
    """Task 2 model mapped per voxel."""

    #: ``best``: the candidate with the highest mean IoU in ``task2_segmentation`` at this setting
    #: and seed; otherwise a model name of ``segmentation.models``.
    model: Annotated[str, Field(min_length=1)]
    candidates: Annotated[list[str], Field(min_length=1)]
    setting: Literal["seg_3class", "seg_4class"]
    seed: NonNegativeInt
    #: In-plane halo (voxels) read around each block; at least the network's receptive-field radius
    #: (checked on the loaded network before any block is written).
    halo_yx: PositiveInt
    #: z halo of 3D networks (2D networks segment every slice on its own).
    halo_z: NonNegativeInt
    slices_per_batch: PositiveInt


class MappingYXExtent(StrictModel):
    """An in-plane box ``y``, ``x`` (absolute, half-open ``[lo, hi]``)."""

    y: Range
    x: Range


class MappingRegionSection(StrictModel):
    """``regions.model: section``: a region network trained for the map on patches of the volume's
    image and ``roi_labels`` (every voxel labelled) at slices held out from the mapped window.

    Per distance ``d`` of ``distances_z`` two requests of ``depth`` slices are read across the
    plane (or ``extent_yx``): ``[z0 - d - depth, z0 - d)`` below the window ``[z0, z1)`` and
    ``[z1 + d, z1 + d + depth)`` above it (those inside the volume); few large requests, as every
    request costs the phantom its blur padding."""

    #: A Task 1 method of kind ``supervised`` (its registered trainer and network are reused).
    method: Annotated[str, Field(min_length=1)]
    seed: NonNegativeInt
    #: No patch slice closer than this to the mapped window: z < z0 - gap or z >= z1 + gap.
    min_gap_z: PositiveInt
    distances_z: Annotated[list[PositiveInt], Field(min_length=1)]
    depth: PositiveInt
    #: Every n-th slice of a request gives patches (neighbouring slices are near copies).
    slice_step: PositiveInt
    #: null: the whole plane; or a box (tests, small profiles).
    extent_yx: MappingYXExtent | None
    #: Patch centres on this grid (voxels) are the candidates; a candidate's class is the
    #: majority class of the ``regions.stride`` cell around it (the cell a map patch labels).
    candidate_step: PositiveInt
    #: Candidates whose cell holds less than this fraction of its majority class are not used.
    min_cell_fraction: Annotated[float, Field(gt=0.0, le=1.0)]
    #: Patches drawn per region class (fewer where a class has fewer candidates).
    patches_per_class: PositiveInt
    #: Training epochs (null: the method's own ``epochs``).
    epochs: PositiveInt | None

    @model_validator(mode="after")
    def _gap(self) -> MappingRegionSection:
        close = [d for d in self.distances_z if d < self.min_gap_z]
        if close:
            raise ValueError(
                f"regions.section.distances_z {close} are closer to the mapped window than "
                f"regions.section.min_gap_z ({self.min_gap_z}): patches so near the window are near copies "
                "of its slices; raise them or lower min_gap_z"
            )
        return self


class MappingRegions(StrictModel):
    """Task 1 model: the region class of a ``patch_size`` patch centred on every ``stride`` cell."""

    #: ``section``: a region network trained for the map (``section``); ``best``: the Task 1 run
    #: of ``candidates`` with the highest validation accuracy (labelled slices outside the run's
    #: training set and outside every test set; never test); otherwise a Task 1 run
    #: ``<method>.<config>.seed<k>`` of the Task 1 run index.
    model: Annotated[str, Field(min_length=1)]
    #: Task 1 methods whose runs ``best`` chooses among (every training set and seed in the index).
    candidates: Annotated[list[str], Field(min_length=1)]
    #: Every n-th validation slice of each cube (neighbouring slices are near copies).
    validation_slice_step: PositiveInt
    patch_size: PositiveInt
    stride: PositiveInt
    batch_size: PositiveInt
    #: 3 x 3 majority filter over the region cells of each slice (ties keep the cell's own
    #: class); false: the raw class of every cell. Both are reported in mapping_validation.
    majority_filter: bool
    section: MappingRegionSection

    @model_validator(mode="after")
    def _stride(self) -> MappingRegions:
        if self.stride > self.patch_size:
            raise ValueError(f"regions.stride ({self.stride}) must not exceed regions.patch_size ({self.patch_size})")
        return self


class MappingTissue(StrictModel):
    """Tissue mask: tissue where the mean gray value over the ``window_yx`` square around a voxel
    reaches ``threshold`` (outside the tissue the image is near 0). 0 is written outside it in
    every label and feature (``labels/tissue`` holds the mask)."""

    mask: bool
    threshold: Annotated[float, Field(gt=0.0, lt=255.0)]
    window_yx: PositiveInt


class MappingViewer(StrictModel):
    """The Neuroglancer state written beside the store (``brain_map.neuroglancer.json``)."""

    #: URL under which the store's folder is served (``npx -y http-server <folder> --cors -p 8000``).
    data_url: Annotated[str, Field(min_length=1)]
    #: A Neuroglancer client (the PyPI ``neuroglancer`` package serves one offline).
    neuroglancer_url: Annotated[str, Field(min_length=1)]


class MappingFeatures(StrictModel):
    """Semantic features (:mod:`mtneuro.features`) per ``tile_size`` tile of each slice."""

    tile_size: PositiveInt
    cell_connectivity: Literal[4, 8]
    #: Registered feature names, in the order of the store's channels.
    names: Annotated[list[str], Field(min_length=1)]


class MappingPyramid(StrictModel):
    #: Resolution levels including full resolution (each halves y and x).
    levels: PositiveInt
    #: Also halve z at each level (isotropic pyramids of the full volume).
    downsample_z: bool


class MappingCompute(StrictModel):
    #: Threads segmenting slices of a block at once (each with ``torch_threads`` torch threads).
    workers: PositiveInt
    torch_threads: PositiveInt
    #: Arithmetic of the segmentation network: ``bf16`` (autocast; ~3x faster on CPUs with AMX,
    #: labels equal to fp32's on all but ~0.05 % of voxels), ``fp32``, or ``auto`` (bf16 where the
    #: CPU/GPU computes it natively, else fp32).
    precision: Literal["auto", "fp32", "bf16"]


class MappingValidation(StrictModel):
    """Checks against truth (``data/08_reporting/mapping_validation.csv``)."""

    #: Microstructure IoU only on boxes at least this far (voxels) from every training cube.
    min_distance_from_training: NonNegativeInt
    #: Boxes closer than ``min_distance_from_training`` but at least this far are reported per
    #: main-cube area as the "mid" band (areas with no far box in the window still get a row;
    #: no mid band when it is not below ``min_distance_from_training``).
    mid_distance_from_training: NonNegativeInt
    box_yx: PositiveInt
    #: Candidate boxes start every ``box_stride_yx`` voxels (chosen boxes never overlap).
    box_stride_yx: PositiveInt
    #: At most this many boxes in all, and this many per brain area and distance band.
    max_boxes: PositiveInt
    max_boxes_per_area: PositiveInt
    #: A box is scored for the area holding at least this fraction of its tissue; boxes across
    #: an area border are skipped (they would score the border's blend, not an area).
    min_area_fraction: Annotated[float, Field(ge=0.0, le=1.0)]
    #: Region accuracy on every n-th voxel in y and x (all slices).
    region_sample_step: PositiveInt
    #: ``roi_labels`` values that are no region truth (0: outside the annotated tissue).
    unlabelled_values: list[NonNegativeInt]
    #: Use the phantom's dense truth (everything it draws) for the microstructure IoU.
    dense_truth: bool
    #: Microstructure boxes must hold at least this fraction of tissue (region truth not in
    #: ``unlabelled_values``), as the in-cube test slices do.
    min_tissue_fraction: Annotated[float, Field(ge=0.0, le=1.0)]


class MappingParameters(StrictModel):
    """``mapping`` in ``conf/base/parameters_mapping.yml``."""

    window: Literal["slab", "full"] | MappingBox
    slab: MappingSlab
    #: OME-NGFF version of the store: 0.4 (Zarr v2, what most viewers read) or 0.5 (Zarr v3).
    ngff_version: Literal["0.4", "0.5"]
    blocks: MappingBlocks
    microstructure: MappingMicrostructure
    regions: MappingRegions
    features: MappingFeatures
    tissue: MappingTissue
    viewer: MappingViewer
    pyramid: MappingPyramid
    compute: MappingCompute
    validation: MappingValidation

    @model_validator(mode="after")
    def _grids(self) -> MappingParameters:
        cy, cx = self.blocks.chunks_zyx[1:]
        for name, size in (("features.tile_size", self.features.tile_size), ("regions.stride", self.regions.stride)):
            if cy % size or cx % size:
                raise ValueError(
                    f"{name} ({size}) must divide blocks.chunks_zyx in y and x ({cy}, {cx}) so that no tile "
                    "or region cell straddles two blocks"
                )
        if self.tissue.mask and self.tissue.window_yx // 2 > self.microstructure.halo_yx:
            raise ValueError(
                f"tissue.window_yx ({self.tissue.window_yx}) must be at most twice microstructure.halo_yx "
                f"({self.microstructure.halo_yx}) so that the tissue mask shows no block seams"
            )
        if self.window == "full" and self.regions.model == "section":
            raise ValueError(
                "window: full with regions.model: section: a section region model trains on slices held out "
                "from the mapped window, and the whole volume leaves none; map the full volume with a Task 1 "
                "run (--params mapping.window=full,mapping.regions.model=best)"
            )
        if self.validation.box_yx % cy or self.validation.box_yx % cx:
            raise ValueError(
                f"validation.box_yx ({self.validation.box_yx}) must be a multiple of blocks.chunks_zyx y and x"
            )
        if self.validation.box_yx % self.validation.box_stride_yx:
            raise ValueError(
                f"validation.box_stride_yx ({self.validation.box_stride_yx}) must divide validation.box_yx "
                f"({self.validation.box_yx})"
            )
        return self
