"""Every error the project raises on purpose derives from one base, :class:`MtneuroError`."""

from __future__ import annotations

import pytest

from mtneuro.errors import MtneuroError
from mtneuro.faults import DiskFullError, FaultError
from mtneuro.pipelines.classification.nodes import ClassificationError
from mtneuro.pipelines.ingestion.nodes import IngestionError
from mtneuro.pipelines.mapping.engine import MappingError
from mtneuro.pipelines.probing.nodes import ProbingError
from mtneuro.pipelines.reporting.tables import ReportingError
from mtneuro.pipelines.segmentation.nodes import SegmentationError
from mtneuro.runners import WorkerDiedError


@pytest.mark.parametrize(
    ("error", "builtin"),
    [
        (FaultError, RuntimeError),
        (DiskFullError, RuntimeError),
        (WorkerDiedError, RuntimeError),
        (ClassificationError, ValueError),
        (IngestionError, ValueError),
        (MappingError, ValueError),
        (ProbingError, ValueError),
        (ReportingError, ValueError),
        (SegmentationError, ValueError),
    ],
)
def test_project_errors_derive_from_the_base_and_keep_their_builtin(error: type, builtin: type) -> None:
    assert issubclass(error, MtneuroError)
    assert issubclass(error, builtin)  # `except ValueError` / `except RuntimeError` callers still catch them
