"""The shared ``training`` block: hardware settings of every training node."""

from __future__ import annotations

from typing import Literal

from pydantic import NonNegativeInt, PositiveInt

from mtneuro.config.base import StrictModel

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

    def merged(self, overrides: TrainingOverrides | None) -> TrainingParameters:
        """This block with a task's overrides (``classification.hardware``, ``segmentation.training``)."""
        if overrides is None:
            return self
        data = self.model_dump()
        for key, value in overrides.model_dump(exclude_unset=True).items():
            if key == "dataloader" and value is not None:
                data["dataloader"] = {**data["dataloader"], **{k: v for k, v in value.items() if v is not None}}
            else:
                data[key] = value
        return TrainingParameters.model_validate(data)


class DataLoaderOverrides(StrictModel):
    num_workers: Auto | NonNegativeInt | None = None
    pin_memory: Auto | bool | None = None


class TrainingOverrides(StrictModel):
    """A task's overrides of single keys of ``training`` (unset keys keep the shared value)."""

    accelerator: Literal["auto", "cpu", "cuda", "gpu"] | None = None
    precision: str | None = None
    progress_bar: bool | None = None
    deterministic: bool | None = None
    torch_threads: Auto | PositiveInt | None = None
    dataloader: DataLoaderOverrides | None = None
