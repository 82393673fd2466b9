"""The ``segmentation`` parameter block (Task 2, ``conf/base/parameters_segmentation.yml``).

``train`` and ``evaluation`` hold the settings of every model; ``model_settings.<model>.train``
and ``.evaluation`` override single keys of them for one model (unset keys keep the task's
value). :func:`mtneuro.segmentation_models.run_settings` resolves what one model's runs use;
model names are checked against the registry when the pipelines are built.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    NonNegativeFloat,
    PositiveFloat,
    PositiveInt,
    ValidationError,
    model_validator,
)
from pydantic_core import InitErrorDetails

from mtneuro.config.base import StrictModel, error_at, unique_items
from mtneuro.config.merge import Layer, Override, merged_errors, resolve

#: Task 2 label settings (split-index configurations of ingestion; see
#: ``mtneuro.pipelines.segmentation.nodes.SETTINGS``).
LabelSettingName = Literal["seg_3class", "seg_4class"]
Split = Literal["train", "val", "test"]
#: Seeds are handed to Lightning's ``seed_everything``, which takes unsigned 32-bit values only.
Seed = Annotated[int, Field(ge=0, le=2**32 - 1)]


def _seed_list(value: Any) -> Any:
    """``seeds: n`` is the seeds ``0..n-1``; a list is taken as it is."""
    if isinstance(value, bool):
        raise ValueError("expected a number of seeds or a list of seeds")
    if isinstance(value, int):
        if value < 1:
            raise ValueError(f"a number of seeds must be at least 1 (got {value})")
        return list(range(value))
    return value


#: A segmentation model's name, checked against the registry when the pipelines are built.
ModelName = Annotated[str, Field(min_length=1)]
Splits = Annotated[list[Split], Field(min_length=1), AfterValidator(unique_items)]


class SegmentationEncoderParameters(StrictModel):
    """The encoder of every 2D model (segmentation_models_pytorch)."""

    name: Annotated[str, Field(min_length=1)]
    #: None: random initialisation; an smp weight name (e.g. ``imagenet``) is downloaded.
    weights: Annotated[str, Field(min_length=1)] | None


class LossParameters(StrictModel):
    """MONAI ``DiceCELoss``: ``lambda_ce`` * cross-entropy + ``lambda_dice`` * Dice."""

    lambda_ce: NonNegativeFloat
    lambda_dice: NonNegativeFloat
    #: Cross-entropy weight per class; None: unweighted.
    class_weights: Annotated[list[NonNegativeFloat], Field(min_length=1)] | None


class AugmentParameters(StrictModel):
    """Random transforms applied identically to image and labels of a training patch."""

    flip: bool
    flip_z: bool
    rot90: bool


class TrainSettings(StrictModel):
    """``segmentation.train``: how every model is trained."""

    splits: Splits
    epochs: PositiveInt
    #: Training patches per epoch; None: every slice / subvolume once.
    samples_per_epoch: PositiveInt | None
    batch_size: PositiveInt
    lr: PositiveFloat
    weight_decay: NonNegativeFloat
    scheduler: Literal["onecycle", "cosine", "none"]
    pct_start: Annotated[float, Field(ge=0.0, le=1.0)]
    crop_yx: PositiveInt
    depth: PositiveInt
    loss: LossParameters
    augment: AugmentParameters


class EvaluationSettings(StrictModel):
    """``segmentation.evaluation``: which slices are segmented and how (sliding windows)."""

    splits: Splits
    #: None: every test slice; else the centred n slices of each cube.
    max_slices_per_cube: PositiveInt | None
    roi_yx: PositiveInt
    overlap: Annotated[float, Field(ge=0.0, lt=1.0)]
    blend_mode: Literal["constant", "gaussian"]
    sw_batch_size: PositiveInt
    slices_per_batch: PositiveInt


Part = Literal["train", "evaluation"]
#: What ``model_settings.<model>`` overrides of the task's settings, and the model that validates each.
PARTS: dict[Part, type[StrictModel]] = {"train": TrainSettings, "evaluation": EvaluationSettings}


class ModelSettings(StrictModel):
    """``segmentation.model_settings.<model>``: factory kwargs and training/evaluation overrides."""

    #: Keyword arguments of the model's builder (:mod:`mtneuro.segmentation_models`); a null
    #: value means "the library's default" (profiles merge over conf/base and cannot delete keys).
    kwargs: dict[str, Any]
    #: Any subset of the keys of ``segmentation.train`` / ``.evaluation`` (nested ``loss`` and
    #: ``augment`` keys too), validated merged over them (:mod:`mtneuro.config.merge`).
    train: Override | None = None
    evaluation: Override | None = None


class FigureParameters(StrictModel):
    """Figure 3: the models whose predictions (runs of ``seed``) are drawn."""

    models: Annotated[list[ModelName], Field(min_length=1), AfterValidator(unique_items)]
    seed: Seed


class RunSettings(StrictModel):
    """What every run of one model uses: builder kwargs and effective train/evaluation settings."""

    model: str
    dims: Literal["2D", "3D"]
    kwargs: dict[str, Any]
    #: The 2D encoder the model is built with (``kwargs["encoder_name"]``); None: it takes none.
    encoder_name: str | None
    train: TrainSettings
    evaluation: EvaluationSettings

    @property
    def spatial_dims(self) -> int:
        return int(self.dims[0])


class SegmentationParameters(StrictModel):
    """``segmentation`` in ``conf/base/parameters_segmentation.yml``."""

    #: The run grid: registered model names (:mod:`mtneuro.segmentation_models`).
    models: Annotated[list[ModelName], Field(min_length=1), AfterValidator(unique_items)]
    settings: Annotated[list[LabelSettingName], Field(min_length=1), AfterValidator(unique_items)]
    #: A count n (seeds 0..n-1) or a list of seeds; always a list once parsed.
    seeds: Annotated[list[Seed], BeforeValidator(_seed_list), Field(min_length=1), AfterValidator(unique_items)]
    #: Overrides of single keys of the shared ``training`` block for this task only (checked
    #: merged over it by :class:`mtneuro.config.project.ProjectParameters`).
    training: Override
    encoder: SegmentationEncoderParameters
    train: TrainSettings
    evaluation: EvaluationSettings
    model_settings: dict[ModelName, ModelSettings]
    figure: FigureParameters

    @model_validator(mode="after")
    def _consistent(self) -> SegmentationParameters:
        """Cross-key checks, reported at the key they concern (``model_settings.vnet.train.epochs``)."""
        errors: list[InitErrorDetails] = []
        for model in self.models:
            if model not in self.model_settings:
                errors.append(
                    error_at(
                        ("model_settings", model),
                        "segmentation.models runs this model, but it has no entry here",
                        model,
                    )
                )
        for i, model in enumerate(self.figure.models):
            if model not in self.models:
                errors.append(
                    error_at(("figure", "models", i), f"not in segmentation.models ({', '.join(self.models)})", model)
                )
        if self.figure.seed not in self.seeds:
            errors.append(error_at(("figure", "seed"), f"not in segmentation.seeds {self.seeds}", self.figure.seed))
        for model, entry in self.model_settings.items():
            for part in PARTS:
                errors += merged_errors(
                    PARTS[part], self._layers(part, model, entry), note="with this model's overrides"
                )
        if errors:
            raise ValidationError.from_exception_data(type(self).__name__, errors)
        return self

    def _layers(self, part: Part, model: str, entry: ModelSettings) -> list[Layer]:
        """``segmentation.<part>``, then the model's overrides of it."""
        return [
            Layer(getattr(self, part).model_dump(), (part,)),
            Layer(getattr(entry, part) or {}, ("model_settings", model, part)),
        ]

    def _resolved(self, part: Part, model: str) -> Any:
        layers = self._layers(part, model, self.model_settings[model])
        what = f"settings of segmentation model {model!r}"
        return resolve(PARTS[part], layers, what=what, block=("segmentation",))

    def run_settings(self, model: str, *, dims: Literal["2D", "3D"], takes_encoder: bool) -> RunSettings:
        """Everything one run of ``model`` needs: its builder kwargs (null values dropped; the
        shared encoder for models that take one) and ``train``/``evaluation`` with the model's
        overrides applied key by key (an override's nested ``loss``/``augment`` keys too).

        ``dims`` and ``takes_encoder`` are the registered model's
        (:func:`mtneuro.segmentation_models.run_settings` reads them from the registry)."""
        if model not in self.model_settings:
            raise KeyError(f"segmentation.model_settings has no entry for model {model!r}")
        entry = self.model_settings[model]
        kwargs = {k: v for k, v in entry.kwargs.items() if v is not None}
        if takes_encoder:
            kwargs = {"encoder_name": self.encoder.name, "encoder_weights": self.encoder.weights, **kwargs}
        return RunSettings(
            model=model,
            dims=dims,
            kwargs=kwargs,
            encoder_name=str(kwargs["encoder_name"]) if takes_encoder else None,
            train=self._resolved("train", model),
            evaluation=self._resolved("evaluation", model),
        )
