"""The ``probing`` parameter block (Task 3, ``conf/base/parameters_probing.yml``)."""

from __future__ import annotations

from itertools import pairwise
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt

from mtneuro.config.base import StrictModel, unique_items
from mtneuro.config.classification import MethodName, TrainConfig

#: A semantic feature's name, checked against the registry when the pipelines are built.
FeatureName = Annotated[str, Field(min_length=1)]


class ProbingEncoders(StrictModel):
    """Which frozen Task 1 encoders are read out: the classification grid narrowed to these
    (training sets: ROI-C2 only tests the ROI-C1 models; methods: registered Task 1 methods)."""

    train_configs: Annotated[list[TrainConfig], Field(min_length=1), AfterValidator(unique_items)]
    #: None: every method of the classification grid.
    methods: Annotated[list[MethodName], Field(min_length=1), AfterValidator(unique_items)] | None


class ProbingImages(StrictModel):
    """The image unit: features and embeddings are computed on exactly these images."""

    #: None: one image per whole slice; an integer cuts every slice into tile_size x tile_size
    #: tiles and must divide the slice size (128 on 256x256 slices: the authors' quadrants).
    tile_size: PositiveInt | None
    slice_step: PositiveInt


def _increasing(values: list[float]) -> list[float]:
    if any(b <= a for a, b in pairwise(values)):
        raise ValueError("must be strictly increasing (a log-spaced grid of penalties)")
    return values


class ProbingReadout(StrictModel):
    """Linear read-out: least squares in sample (the paper's R^2); for the cross-validated R^2 a
    ridge regression whose penalty is chosen inside each outer training fold (nested CV)."""

    #: Outer folds: grouped k-fold over blocks of slices, scored out of fold.
    cv_folds: Annotated[int, Field(ge=2)]
    block_slices: PositiveInt
    gap_slices: PositiveInt
    #: Fewer images with a defined feature value: R^2 is NaN (two at least: R^2 needs a variance).
    min_images: Annotated[int, Field(ge=2)]
    #: Penalties (increasing) the cross-validated ridge read-out chooses from, per feature.
    ridge_alphas: Annotated[list[PositiveFloat], Field(min_length=1), AfterValidator(_increasing)]
    #: Inner folds, built from the outer training images only (same blocks and purge gap), on
    #: which the penalty is chosen.
    inner_folds: Annotated[int, Field(ge=2)]
    #: Clip held-out embedding values to the training range of their dimension before
    #: standardising (no extrapolation along a dimension that barely varied in training).
    clip_held_out: bool
    #: Seed of the random Gaussian embedding (same dimension and image count as the encoder's)
    #: whose in-sample R^2 is printed beside every in-sample R^2: the noise floor.
    noise_floor_seed: NonNegativeInt


class UmapEncoder(StrictModel):
    """The encoder whose embeddings the UMAP figure shows (the first of the grid if absent)."""

    method: MethodName
    train_config: TrainConfig
    seed: NonNegativeInt


class ProbingUmap(StrictModel):
    encoder: UmapEncoder
    n_neighbors: Annotated[int, Field(ge=2)]
    min_dist: NonNegativeFloat
    n_epochs: PositiveInt
    metric: Annotated[str, Field(min_length=1)]
    random_state: NonNegativeInt
    point_size: PositiveFloat


class ProbingParameters(StrictModel):
    """``probing`` in ``conf/base/parameters_probing.yml``."""

    encoders: ProbingEncoders
    images: ProbingImages
    cell_connectivity: Literal[4, 8]
    #: Features read out, by registered name (:mod:`mtneuro.features`).
    features: Annotated[list[FeatureName], Field(min_length=1), AfterValidator(unique_items)]
    embed_batch_size: PositiveInt
    #: BLAS/OpenMP and torch threads inside the probing nodes; None: the libraries' defaults.
    threads: PositiveInt | None
    readout: ProbingReadout
    umap: ProbingUmap
