"""All parameters of a run, parsed once: one typed model per block of ``conf/<env>/parameters*.yml``."""

from __future__ import annotations

from mtneuro.config.base import StrictModel
from mtneuro.config.classification import ClassificationParameters
from mtneuro.config.ingestion import IngestionParameters
from mtneuro.config.mapping import MappingParameters
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
