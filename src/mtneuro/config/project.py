"""All parameters of a run, parsed once: one typed model per block of ``conf/<env>/parameters*.yml``."""

from __future__ import annotations

from pydantic import ValidationError, model_validator

from mtneuro.config.base import StrictModel, error_at
from mtneuro.config.classification import ClassificationParameters
from mtneuro.config.ingestion import IngestionParameters
from mtneuro.config.mapping import MappingParameters
from mtneuro.config.merge import Layer, merged_errors
from mtneuro.config.probing import ProbingParameters
from mtneuro.config.reporting import ReportingParameters
from mtneuro.config.segmentation import SegmentationParameters
from mtneuro.config.training import TrainingParameters
from mtneuro.config.volume import VolumeParameters


class ProjectParameters(StrictModel):
    """Every top-level parameter block; an unknown top-level key is an error too."""

    volume: VolumeParameters
    training: TrainingParameters
    ingestion: IngestionParameters
    classification: ClassificationParameters
    segmentation: SegmentationParameters
    probing: ProbingParameters
    reporting: ReportingParameters
    mapping: MappingParameters
    #: Runtime-only (``--params data_root=...``): the folder that replaces ``data/`` in the catalog.
    data_root: str | None = None

    @model_validator(mode="after")
    def _task_training(self) -> ProjectParameters:
        """Each task's partial ``training`` overrides, merged over ``training``, make a valid block
        (errors at the override's key: ``segmentation.training.torch_threads``)."""
        base = Layer(self.training.model_dump(), ("training",))
        errors = []
        for overrides, at in (
            (self.segmentation.training, ("segmentation", "training")),
            (self.classification.hardware, ("classification", "hardware")),
        ):
            errors += merged_errors(TrainingParameters, [base, Layer(overrides, at)])
            errors += [
                error_at((*at, key), f"holds for the whole run: set training.{key} instead", overrides[key])
                for key in TrainingParameters.RUN_WIDE
                if key in overrides
            ]
        if errors:
            raise ValidationError.from_exception_data(type(self).__name__, errors)
        return self
