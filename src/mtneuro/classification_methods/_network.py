"""The small Lightning base every Task 1 network method shares, and the fit that trains one.

A network method's spec names its Lightning module by an import path (:attr:`MethodSpec.network`,
``"package.module:Class"``), imported here at fit time: the registry is read to check the
parameters before a run starts, and importing Lightning takes seconds. The base owns what every
network shares (the ResNet-18 encoder, augmentation, optimiser and learning-rate schedule, the
training curve); a subclass builds its heads in ``__init__`` and says its loss in :meth:`loss`.
"""

from __future__ import annotations

import importlib
import logging
import math
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import torch

from mtneuro import models, ssl, training

if TYPE_CHECKING:
    from mtneuro.classification_methods.base import MethodSpec
    from mtneuro.config import TrainingParameters
    from mtneuro.config.classification import NetworkSettings

log = logging.getLogger(__name__)


class NetworkLearner(training.EpochHistoryModule):
    """Trains the Task 1 encoder (:func:`mtneuro.models.build_task1_encoder`) with one loss.

    ``settings`` are the method's resolved settings: ``optimizer``, ``lr``, ``momentum``,
    ``weight_decay``, ``lr_schedule``, ``warmup_epochs``, ``augment``, ``augmentation`` and the
    method's own keys. A subclass builds its heads after ``super().__init__`` and implements
    :meth:`loss`.
    """

    def __init__(
        self,
        method: MethodSpec,
        architecture: Mapping[str, Any],
        settings: NetworkSettings,
        n_classes: int,
        steps_per_epoch: int,
        epochs: int,
    ) -> None:
        super().__init__()
        if not method.is_network:
            raise ValueError(f"Task 1 method {method.name!r} is not a network method (kind {method.kind!r})")
        self.spec = method
        self.method = method.name
        self.settings: Any = settings  # the method's settings model (SupervisedSettings, ByolSettings, ...)
        self.n_classes = int(n_classes)
        self.representation_dim = int(architecture["representation_dim"])
        self.steps_per_epoch = max(1, int(steps_per_epoch))
        self.total_steps = self.steps_per_epoch * max(1, int(epochs))
        self.encoder = models.build_task1_encoder(dict(architecture))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def augment(self, x: torch.Tensor) -> torch.Tensor:
        """One random augmentation of the batch (:func:`mtneuro.ssl.augment_batch`)."""
        return ssl.augment_batch(x, self.settings.augmentation)

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The training loss of a batch of images ``x`` (N, 1, S, S) and labels ``y`` (N,)."""
        raise NotImplementedError

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:  # noqa: ARG002
        x, y = batch
        loss = self.loss(x, y)
        self.record_loss(loss)
        return loss

    def configure_optimizers(self) -> Any:
        s = self.settings
        params = [p for p in self.parameters() if p.requires_grad]
        name = str(s.optimizer).lower()
        lr, wd = float(s.lr), float(s.weight_decay)
        opt: torch.optim.Optimizer
        if name == "sgd":
            opt = torch.optim.SGD(params, lr=lr, momentum=float(s.momentum), weight_decay=wd)
        elif name == "adamw":
            opt = torch.optim.AdamW(params, lr=lr, weight_decay=wd)
        elif name == "adam":
            opt = torch.optim.Adam(params, lr=lr, weight_decay=wd)
        else:
            raise ValueError(f"Unknown optimizer {name!r} (sgd, adam, adamw)")
        warmup = round(float(s.warmup_epochs) * self.steps_per_epoch)
        schedule = str(s.lr_schedule)
        total = self.total_steps

        def factor(step: int) -> float:
            if warmup and step < warmup:
                return (step + 1) / warmup
            if schedule == "cosine":
                return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total - warmup))))
            return 1.0

        sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


def learner_class(method: MethodSpec) -> type[NetworkLearner]:
    """The Lightning module class a network method's spec names (``"package.module:Class"``)."""
    if not method.network:
        raise ValueError(f"Task 1 method {method.name!r} names no network module (kind {method.kind!r})")
    module_name, _, class_name = method.network.partition(":")
    cls = getattr(importlib.import_module(module_name), class_name, None)
    if not (isinstance(cls, type) and issubclass(cls, NetworkLearner)):
        raise TypeError(f"Task 1 method {method.name!r}: {method.network!r} is not a NetworkLearner subclass")
    return cls


def build_learner(
    method: MethodSpec,
    architecture: Mapping[str, Any],
    settings: NetworkSettings,
    n_classes: int,
    steps_per_epoch: int,
    epochs: int,
) -> NetworkLearner:
    """The method's Lightning module, untrained."""
    return learner_class(method)(method, architecture, settings, n_classes, steps_per_epoch, epochs)


def fit_network(
    method: MethodSpec,
    x: torch.Tensor,
    y: torch.Tensor,
    architecture: Mapping[str, Any],
    settings: NetworkSettings,
    hardware: TrainingParameters,
    seed: int,
    n_classes: int,
    channels_last: bool = True,
) -> tuple[NetworkLearner, dict[str, Any]]:
    """Train the method's :class:`NetworkLearner` on preprocessed images ``x`` (N, 1, S, S) and labels ``y``.

    ``hardware`` is the shared ``training`` block with the task's overrides (accelerator,
    precision, data loader, threads). ``channels_last`` trains in that memory format (measured
    ~15-20 % less CPU time per step at the base profile's 32-pixel inputs; not bit for bit the
    contiguous layout's sums). Returns the trained module (on the CPU, in eval mode, contiguous)
    and its history (per-epoch loss, time, images/s).
    """
    training.seed_everything(seed)
    accelerator = training.resolve_accelerator(hardware.accelerator)
    epochs = int(settings.epochs)
    batch_size = max(2, min(int(settings.batch_size), len(x)))
    dataset = torch.utils.data.TensorDataset(x.float(), y.long())
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=True,
        drop_last=len(x) > batch_size,  # BatchNorm needs >1 sample per batch
        generator=torch.Generator().manual_seed(int(seed)),
        **training.dataloader_kwargs(hardware.dataloader, accelerator),
    )
    module = build_learner(method, architecture, settings, n_classes, steps_per_epoch=len(loader), epochs=epochs)
    if channels_last:
        # oneDNN's (and cuDNN's) faster convolutions; the trained module goes back to the usual
        # layout below, so what reads the saved encoder computes as before.
        module = module.to(memory_format=torch.channels_last)
    with training.thread_limit(hardware.torch_threads):
        trainer = training.build_trainer(hardware, max_epochs=epochs)
        start = time.perf_counter()
        trainer.fit(module, loader)
        seconds = time.perf_counter() - start
    seen = int(module.global_step) * batch_size  # = len(loader) x batch x epochs unless a dry run stops early
    history = {
        "method": method.name,
        "epochs": module.history,
        "n_train": len(x),
        "batch_size": batch_size,
        "steps": int(module.global_step),
        "steps_per_epoch": len(loader),  # with ``steps``, what a full run costs (benchmarks/paper_cost.py)
        "train_seconds": seconds,
        "images_per_second": seen / seconds if seconds > 0 else float("nan"),
        "accelerator": accelerator,
        "precision": str(trainer.precision),
    }
    log.info(
        "%s: %d epochs on %d images in %.1f s (%.0f images/s), final loss %.4f",
        method.name,
        epochs,
        len(x),
        seconds,
        history["images_per_second"],
        module.history[-1]["loss"] if module.history else float("nan"),
    )
    return module.cpu().to(memory_format=torch.contiguous_format).eval(), history
