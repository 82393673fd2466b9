"""The shared ``training`` block: hardware settings of every training node."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from pydantic import NonNegativeInt, PositiveInt

from mtneuro.config.base import StrictModel
from mtneuro.config.merge import KeyPath, Layer, resolve

Auto = Literal["auto"]


class DataLoaderParameters(StrictModel):
    num_workers: Auto | NonNegativeInt
    pin_memory: Auto | bool


class TrainingParameters(StrictModel):
    """``training`` in ``conf/base/parameters.yml``; ``auto`` picks what suits the machine."""

    accelerator: Literal["auto", "cpu", "cuda", "gpu"]
    #: Whether a run may train its networks on a CPU (the paper profile says no: days of work).
    allow_cpu: bool
    precision: str
    progress_bar: bool
    deterministic: bool
    torch_threads: Auto | PositiveInt | None
    dataloader: DataLoaderParameters
    #: The dry run (conf/paper_dry): every training stops after this many optimizer steps.
    dry_run_steps: PositiveInt | None

    #: Keys that hold for the whole run (the device check and the dry run read them before any
    #: node), which a task's overrides cannot set.
    RUN_WIDE: ClassVar[tuple[str, ...]] = ("allow_cpu", "dry_run_steps")

    def merged(self, overrides: Mapping[str, Any], at: KeyPath = ("overrides",)) -> TrainingParameters:
        """This block with a task's partial overrides (``segmentation.training``,
        ``classification.hardware``: any subset of its keys, found at ``at``) merged key by key."""
        layers = [Layer(self.model_dump(), ("training",)), Layer(overrides, at)]
        return resolve(TrainingParameters, layers, what=f"training settings with {'.'.join(at)}")
