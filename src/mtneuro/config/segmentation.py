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
from pydantic_core import InitErrorDetails, PydanticCustomError

from mtneuro.config.base import StrictModel, deep_merge, unique_items
from mtneuro.config.training import TrainingOverrides

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


class EncoderParameters(StrictModel):
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


# --- per-model overrides: None = not overridden ---------------------------------------------


class LossOverrides(StrictModel):
    lambda_ce: NonNegativeFloat | None = None
    lambda_dice: NonNegativeFloat | None = None
    class_weights: Annotated[list[NonNegativeFloat], Field(min_length=1)] | None = None


class AugmentOverrides(StrictModel):
    flip: bool | None = None
    flip_z: bool | None = None
    rot90: bool | None = None


class TrainOverrides(StrictModel):
    """A model's overrides of single keys of ``segmentation.train``."""

    splits: Splits | None = None
    epochs: PositiveInt | None = None
    samples_per_epoch: PositiveInt | None = None
    batch_size: PositiveInt | None = None
    lr: PositiveFloat | None = None
    weight_decay: NonNegativeFloat | None = None
    scheduler: Literal["onecycle", "cosine", "none"] | None = None
    pct_start: Annotated[float, Field(ge=0.0, le=1.0)] | None = None
    crop_yx: PositiveInt | None = None
    depth: PositiveInt | None = None
    loss: LossOverrides | None = None
    augment: AugmentOverrides | None = None


class EvaluationOverrides(StrictModel):
    """A model's overrides of single keys of ``segmentation.evaluation``."""

    splits: Splits | None = None
    max_slices_per_cube: PositiveInt | None = None
    roi_yx: PositiveInt | None = None
    overlap: Annotated[float, Field(ge=0.0, lt=1.0)] | None = None
    blend_mode: Literal["constant", "gaussian"] | None = None
    sw_batch_size: PositiveInt | None = None
    slices_per_batch: PositiveInt | None = None


class ModelSettings(StrictModel):
    """``segmentation.model_settings.<model>``: factory kwargs and training/evaluation overrides."""

    #: Keyword arguments of the model's builder (:mod:`mtneuro.segmentation_models`); a null
    #: value means "the library's default" (profiles merge over conf/base and cannot delete keys).
    kwargs: dict[str, Any]
    train: TrainOverrides | None = None
    evaluation: EvaluationOverrides | None = None


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


def _merged(base: StrictModel, overrides: StrictModel | None) -> dict[str, Any]:
    """``base`` with the keys ``overrides`` sets replaced, nested blocks merged key by key."""
    data = base.model_dump()
    if overrides is None:
        return data
    return deep_merge(data, overrides.model_dump(exclude_unset=True))


class SegmentationParameters(StrictModel):
    """``segmentation`` in ``conf/base/parameters_segmentation.yml``."""

    #: The run grid: registered model names (:mod:`mtneuro.segmentation_models`).
    models: Annotated[list[ModelName], Field(min_length=1), AfterValidator(unique_items)]
    settings: Annotated[list[LabelSettingName], Field(min_length=1), AfterValidator(unique_items)]
    #: A count n (seeds 0..n-1) or a list of seeds; always a list once parsed.
    seeds: Annotated[list[Seed], BeforeValidator(_seed_list), Field(min_length=1), AfterValidator(unique_items)]
    #: Overrides of the shared ``training`` block for this task only.
    training: TrainingOverrides
    encoder: EncoderParameters
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
                    _error(
                        ("model_settings", model),
                        "segmentation.models runs this model, but it has no entry here",
                        model,
                    )
                )
        for i, model in enumerate(self.figure.models):
            if model not in self.models:
                errors.append(
                    _error(("figure", "models", i), f"not in segmentation.models ({', '.join(self.models)})", model)
                )
        if self.figure.seed not in self.seeds:
            errors.append(_error(("figure", "seed"), f"not in segmentation.seeds {self.seeds}", self.figure.seed))
        for model, entry in self.model_settings.items():
            for part in ("train", "evaluation"):
                try:
                    self._resolved(part, entry)
                except ValidationError as exc:
                    errors += [
                        _error(
                            ("model_settings", model, part, *e["loc"]),
                            f"with this model's overrides: {e['msg']}",
                            e.get("input"),
                        )
                        for e in exc.errors(include_url=False)
                    ]
        if errors:
            raise ValidationError.from_exception_data(type(self).__name__, errors)
        return self

    def _resolved(
        self, part: Literal["train", "evaluation"], entry: ModelSettings
    ) -> TrainSettings | EvaluationSettings:
        model_class = TrainSettings if part == "train" else EvaluationSettings
        return model_class.model_validate(_merged(getattr(self, part), getattr(entry, part)))

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
            train=self._resolved("train", entry),
            evaluation=self._resolved("evaluation", entry),
        )


def _error(loc: tuple[str | int, ...], message: str, value: Any) -> InitErrorDetails:
    """A validation error at ``loc`` (inside this block) with ``message`` as it is printed."""
    return InitErrorDetails(
        type=PydanticCustomError("value_error", "{message}", {"message": message}), loc=loc, input=value
    )
