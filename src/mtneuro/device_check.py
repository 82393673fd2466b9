"""Before the first node: the device the run trains on, and a stop where a CPU would take days.

``--env=paper`` on a machine without a GPU once started its 490 nodes without a word (the first
BYOL step took 72 s on 2 cores). :class:`DeviceCheckHook` says on which device the run's
network trainings will run and, when that is a CPU and ``training.allow_cpu`` is false (the
paper profile), stops with the count of trainings and epochs and how to go on anyway.
"""

from __future__ import annotations

import logging
from typing import Any

from kedro.framework.hooks import hook_impl

from mtneuro.classification_methods import method_settings
from mtneuro.config.base import ConfigurationError
from mtneuro.segmentation_models import run_settings

log = logging.getLogger(__name__)

#: Last part of the name of the nodes that train a network (Task 1 networks, Task 2 models).
TRAINING_NODES = ("train", "train_and_evaluate")


def network_trainings(pipeline: Any) -> list[Any]:
    """The nodes of ``pipeline`` that train a network (PCA/NMF, untagged, are not counted)."""
    found = []
    for node in pipeline.nodes:
        last = node.name.rsplit(".", 1)[-1]
        if last == "train_and_evaluate" or (last == "train" and "gpu" in node.tags):
            found.append(node)
    return found


def _epochs(node_name: str, parameters: Any) -> int | None:
    """Epochs of one training from its grid namespace ``<task>.<method or model>.<config>.seed<k>``."""
    parts = node_name.split(".")
    try:
        if parts[0] == "classification":
            settings: Any = method_settings(parameters.classification, parts[1])  # a network method's
            return int(settings.epochs)
        if parts[0] == "segmentation":
            return int(run_settings(parameters.segmentation, parts[1]).train.epochs)
    except Exception:  # an estimate only: a node outside the grid layout is left out
        return None
    return None


def training_summary(pipeline: Any, parameters: Any) -> tuple[int, int]:
    """How many networks the run trains and their epochs in all (a rough measure of its cost)."""
    trainings = network_trainings(pipeline)
    return len(trainings), sum(_epochs(node.name, parameters) or 0 for node in trainings)


def cpu_refusal(device: str, trainings: int, epochs: int, env: str | None) -> str:
    return (
        f"This run would train {trainings} networks ({epochs} epochs in all) on the {device}: no GPU was found "
        f"(torch.cuda.is_available() is False) and the profile{f' {env!r}' if env else ''} sets "
        "training.allow_cpu: false. Rough estimate: at the paper's image sizes an epoch takes minutes to hours "
        "on a CPU (the first BYOL step alone took 72 s on 2 cores), so days of work. Run it on a machine with "
        "a GPU, or add `--params training.allow_cpu=true` to train on this CPU anyway."
    )


def check_training_device(pipeline: Any, parameters: Any, accelerator: str, env: str | None = None) -> str | None:
    """The device the run's trainings use (``None`` without trainings); raises
    :class:`ConfigurationError` for a CPU that ``training.allow_cpu`` does not allow."""
    if not network_trainings(pipeline):
        return None
    device = "GPU" if accelerator == "cuda" else "CPU"
    trainings, epochs = training_summary(pipeline, parameters)
    if device == "CPU" and not parameters.training.allow_cpu:
        raise ConfigurationError(cpu_refusal(device, trainings, epochs, env))
    steps = parameters.training.dry_run_steps
    if steps is not None:  # conf/paper_dry
        log.info(
            "DRY RUN: training %d networks on the %s, each for %d optimizer step(s) (training.dry_run_steps); "
            "the results are meaningless",
            trainings,
            device,
            steps,
            extra={"console": True},
        )
        return device
    log.info("Training %d networks (%d epochs in all) on the %s", trainings, epochs, device, extra={"console": True})
    return device


class DeviceCheckHook:
    """Logs the training device and stops a CPU run that its profile does not allow."""

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Any) -> None:
        if not network_trainings(pipeline):
            return
        from mtneuro.config.active import active_parameters
        from mtneuro.training import resolve_accelerator  # torch is imported by the pipelines already

        parameters = active_parameters()
        accelerator = resolve_accelerator(parameters.training.accelerator)
        check_training_device(pipeline, parameters, accelerator, run_params.get("env"))


DEVICE_CHECK_HOOK = DeviceCheckHook()
