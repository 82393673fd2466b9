"""The ``classification`` parameter block (Task 1, ``conf/base/parameters_classification.yml``).

Shared blocks (``data``, ``encoder``, ``network_training``, ``augmentation``, ``decomposition``,
``readout``) are typed here. Each Task 1 method has its own block (``supervised``, ``byol``, ...)
whose keys refine the blocks it inherits; which blocks a method inherits and the model of its
resolved settings belong to the method (:mod:`mtneuro.classification_methods`), so that adding a
method does not touch this module, and this module imports no method: method names and method
blocks are checked against the registry when the pipelines are built
(:func:`mtneuro.classification_methods.check_classification`), and errors name the block that set
the bad value (``classification.byol.epochs``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    ValidationError,
    model_validator,
)
from pydantic_core import InitErrorDetails

from mtneuro.config.base import StrictModel, error_at, unique_items
from mtneuro.config.merge import Override

#: Task 1 training sets (ROI-C2 is a test configuration of the roi_c1 models).
TrainConfig = Literal["roi_c1", "roi_c3"]
#: Split-index configurations Task 1 reads (training and test).
TestConfig = Literal["roi_c1", "roi_c2", "roi_c3"]
Split = Literal["train", "val", "test"]
Fraction = Annotated[float, Field(ge=0, le=1)]
#: Epoch counts that may be fractional (kept as written: 3 stays an int, 0.5 a float).
EpochSpan = NonNegativeInt | NonNegativeFloat


def _ordered_pair(values: list[float]) -> list[float]:
    if values[0] > values[1]:
        raise ValueError(f"[min, max] with min <= max expected, got {values}")
    return values


#: A Task 1 method's name, checked against the registry when the pipelines are built.
MethodName = Annotated[str, Field(min_length=1)]
Pair = Annotated[list[float], Field(min_length=2, max_length=2), AfterValidator(_ordered_pair)]


class ClassificationData(StrictModel):
    """Which sections train and test a run, and the size they are prepared at."""

    train_splits: Annotated[list[Split], Field(min_length=1), AfterValidator(unique_items)]
    train_slice_step: PositiveInt
    test_splits: Annotated[list[Split], Field(min_length=1), AfterValidator(unique_items)]
    #: Every k-th test slice, per test configuration.
    test_slice_step: dict[TestConfig, PositiveInt]
    prepared_size: PositiveInt


class ResNetEncoderParameters(StrictModel):
    """The ResNet-18 shared by every network method (:func:`mtneuro.models.build_resnet18_encoder`)."""

    name: Literal["resnet18"]
    in_channels: PositiveInt
    representation_dim: PositiveInt
    width: PositiveInt
    stem: Literal["imagenet", "small"]
    input_size: PositiveInt
    normalisation: Literal["training_set", "per_image", "none"]

    def architecture(self) -> dict[str, Any]:
        """What rebuilds the network (recorded in the frozen encoder's metadata)."""
        return self.model_dump(exclude={"input_size", "normalisation"})


def _check_crop(values: list[float]) -> list[float]:
    if not all(0 < v <= 1 for v in values):
        raise ValueError(f"area fractions in (0, 1] expected, got {values}")
    return values


def _check_positive(values: list[float]) -> list[float]:
    if not all(v > 0 for v in values):
        raise ValueError(f"positive values expected, got {values}")
    return values


class Augmentation(StrictModel):
    """Batch augmentations of X-ray sections (:func:`mtneuro.ssl.augment_batch`)."""

    crop_scale: Annotated[Pair, AfterValidator(_check_crop)]
    flip: bool
    rot90: bool
    brightness: NonNegativeFloat
    contrast: Fraction
    blur_prob: Fraction
    blur_sigma: Annotated[Pair, AfterValidator(_check_positive)]
    noise_std: NonNegativeFloat


class NetworkTraining(StrictModel):
    """Optimisation shared by the network methods (``network_training``); method blocks override keys."""

    epochs: PositiveInt
    batch_size: Annotated[int, Field(ge=2)]
    optimizer: Literal["sgd", "adam", "adamw"]
    lr: PositiveFloat
    momentum: Annotated[float, Field(ge=0, lt=1)]
    weight_decay: NonNegativeFloat
    lr_schedule: Literal["cosine", "constant"]
    warmup_epochs: EpochSpan
    #: Supervised methods: apply ``augmentation`` to training batches.
    augment: bool


class NetworkSettings(NetworkTraining):
    """Resolved settings of a network method: ``network_training`` + ``augmentation`` + its blocks."""

    augmentation: Augmentation


class DecompositionSettings(StrictModel):
    """``decomposition``: PCA/NMF of downsampled images; also the base of their resolved settings."""

    input_size: PositiveInt
    #: Capped at the number of training images.
    n_components: PositiveInt


class Readout(StrictModel):
    """Linear read-out of frozen representations: standardised features + logistic regression."""

    C: PositiveFloat
    max_iter: PositiveInt


class Bootstrap(StrictModel):
    """Bootstrap interval of each run's test accuracy over its test images (resampled with
    replacement, ``resamples`` times, with a fixed ``seed``): the percentile interval at ``level``."""

    resamples: Annotated[int, Field(ge=10)]
    level: Annotated[float, Field(gt=0, lt=1)]
    seed: NonNegativeInt


class ClassificationParameters(StrictModel):
    """``classification`` in ``conf/base/parameters_classification.yml``.

    Besides the fields below, the block holds one settings block per Task 1 method (named by the
    registry: ``supervised``, ``mixup``, ``byol``, ...); they are checked and read by
    :func:`mtneuro.classification_methods.check_classification` and
    :func:`mtneuro.classification_methods.method_settings`.
    """

    #: The method blocks are the only extra keys allowed (checked against the registry).
    model_config = ConfigDict(extra="allow")

    methods: Annotated[list[MethodName], Field(min_length=1), AfterValidator(unique_items)]
    configs: Annotated[list[TrainConfig], Field(min_length=1), AfterValidator(unique_items)]
    seeds: Annotated[list[NonNegativeInt], Field(min_length=1), AfterValidator(unique_items)]
    #: Test configurations of each training set.
    evaluate_on: dict[TrainConfig, Annotated[list[TestConfig], Field(min_length=1), AfterValidator(unique_items)]]
    data: ClassificationData
    encoder: ResNetEncoderParameters
    network_training: NetworkTraining
    augmentation: Augmentation
    decomposition: DecompositionSettings
    readout: Readout
    #: Per-run bootstrap interval of the test accuracy over test images.
    bootstrap: Bootstrap
    #: Overrides of single keys of the shared ``training`` block for this task's nodes (checked
    #: merged over it by :class:`mtneuro.config.project.ProjectParameters`).
    hardware: Override
    #: Per-method overrides of any key of the method's settings (applied last).
    method_overrides: dict[MethodName, Override]

    # -- method settings ------------------------------------------------------------------
    def method_block(self, block: str) -> Mapping[str, Any]:
        """A settings block by name: a typed shared block, or a method's own (raw) block."""
        if block in type(self).model_fields:
            value = getattr(self, block)
            return value.model_dump() if isinstance(value, BaseModel) else value
        extra = self.model_extra or {}
        if block not in extra:
            raise KeyError(f"classification.{block} is missing")
        return extra[block]

    # -- cross-field checks ---------------------------------------------------------------
    @model_validator(mode="after")
    def _check_grid(self) -> ClassificationParameters:
        """``evaluate_on`` and ``data.test_slice_step`` cover the grid (method blocks are checked
        against the registry when the pipelines are built)."""
        errors: list[InitErrorDetails] = []
        for config in self.configs:
            if config not in self.evaluate_on:
                errors.append(
                    error_at(
                        ("evaluate_on", config),
                        "missing: every training set of `configs` needs its test configurations",
                        kind="missing",
                    )
                )
                continue
            for test in self.evaluate_on[config]:
                if test not in self.data.test_slice_step:
                    errors.append(
                        error_at(
                            ("data", "test_slice_step", test),
                            "missing: every test configuration of `evaluate_on` needs a slice step",
                            kind="missing",
                        )
                    )
        if errors:
            raise ValidationError.from_exception_data(type(self).__name__, errors)
        return self
