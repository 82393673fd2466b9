"""Device, precision, seeding and Lightning trainer settings shared by every training node.

The same code runs on a laptop CPU and on a GPU: each setting is a parameter whose default
``auto`` picks what suits the hardware found at run time.
"""

from __future__ import annotations

import logging
import os
import time
from typing import TYPE_CHECKING, Any

import lightning as L
import torch

from mtneuro import console

if TYPE_CHECKING:
    from mtneuro.config.training import DataLoaderParameters, TrainingParameters

log = logging.getLogger(__name__)


def resolve_accelerator(requested: str = "auto") -> str:
    """``"cuda"`` when a GPU is present (or requested), else ``"cpu"``."""
    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested in ("cuda", "gpu"):
        if not torch.cuda.is_available():
            raise RuntimeError(
                "Parameter 'training.accelerator' asks for a GPU but none is available; set it to 'auto' or 'cpu'."
            )
        return "cuda"
    if requested == "cpu":
        return "cpu"
    raise ValueError(f"Parameter 'training.accelerator' must be auto, cpu or cuda, not {requested!r}")


def native_bf16(device_type: str) -> bool:
    """Whether the hardware computes bf16 natively: GPUs that support it, CPUs with AMX or AVX512-BF16."""
    if device_type == "cuda":
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    cpu = getattr(torch, "cpu", None)
    probes = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")
    return any(bool(getattr(cpu, probe, lambda: False)()) for probe in probes)


def autocast_context(dtype: torch.dtype | None, device_type: str) -> Any:
    """Autocast to ``dtype`` on ``device_type``; a no-op for ``None`` (full precision)."""
    import contextlib

    return contextlib.nullcontext() if dtype is None else torch.autocast(device_type=device_type, dtype=dtype)


def resolve_precision(requested: str = "auto", accelerator: str = "cpu") -> str:
    """Lightning precision: bf16 mixed precision on GPUs that support it, fp32 elsewhere."""
    if requested != "auto":
        return requested
    if accelerator == "cuda":
        return "bf16-mixed" if native_bf16("cuda") else "16-mixed"
    return "32-true"


def dataloader_kwargs(settings: DataLoaderParameters, accelerator: str) -> dict[str, Any]:
    """Workers and pinned memory: background workers only where they pay off (GPU runs)."""
    workers = settings.num_workers
    if workers == "auto":
        workers = min(8, max(0, (os.cpu_count() or 1) - 1)) if accelerator == "cuda" else 0
    pin = settings.pin_memory
    if pin == "auto":
        pin = accelerator == "cuda"
    kwargs: dict[str, Any] = {"num_workers": int(workers), "pin_memory": bool(pin)}
    if workers:
        kwargs["persistent_workers"] = True
    return kwargs


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch so that a CPU run is repeatable."""
    L.seed_everything(int(seed), workers=True, verbose=False)


def build_trainer(settings: TrainingParameters, max_epochs: int, **overrides: Any) -> L.Trainer:
    """A Lightning trainer for one run, from the ``training`` parameter block.

    Keys: ``accelerator`` (auto/cpu/cuda), ``precision`` (auto or a Lightning precision),
    ``progress_bar`` (bool), ``deterministic`` (bool). Thread counts are set by the caller with
    :func:`thread_limit`, which restores them after the run.
    """
    accelerator = resolve_accelerator(settings.accelerator)
    precision = resolve_precision(settings.precision, accelerator)
    deterministic: bool | str = settings.deterministic
    if accelerator == "cuda" and deterministic is True:
        # Some CUDA kernels (e.g. cross-entropy over images, nll_loss2d) have no deterministic
        # version; "warn" keeps every other op deterministic instead of stopping the run.
        deterministic = "warn"
    kwargs: dict[str, Any] = {
        "accelerator": accelerator,
        "devices": 1,
        "precision": precision,
        "max_epochs": int(max_epochs),
        "logger": False,
        "enable_checkpointing": False,
        "enable_model_summary": False,
        # Per-epoch bars only on a terminal: in CI logs and files they would print a line per run.
        # Inside `kedro run` the epochs are a line of the run's own progress view (one live
        # display per console: Lightning's RichProgressBar would tear down the run's bar).
        "enable_progress_bar": settings.progress_bar
        and console.may_draw_progress()
        and not console.run_progress_active(),
        "deterministic": deterministic,
        "num_sanity_val_steps": 0,
    }
    # Lightning adds mtneuro.tracking's per-epoch MLflow metrics inside a tracked grid cell (the
    # entry point ``lightning.pytorch.callbacks_factory`` of pyproject.toml).
    kwargs["callbacks"] = []
    if settings.progress_bar and console.run_progress_active():
        kwargs["callbacks"].append(_epoch_progress_class()())
    if settings.dry_run_steps is not None:  # conf/paper_dry: every code path, a few steps
        kwargs.update(max_epochs=1, max_steps=settings.dry_run_steps, limit_val_batches=settings.dry_run_steps)
    kwargs.update(overrides)
    log.info("Training on %s with precision %s for %d epochs", accelerator, precision, max_epochs)
    return L.Trainer(**kwargs)


_EPOCH_PROGRESS: type | None = None


def _epoch_progress_class() -> type:
    """:class:`EpochProgress`, a Lightning callback defined on first use (Lightning is imported lazily)."""
    global _EPOCH_PROGRESS
    if _EPOCH_PROGRESS is None:

        class EpochProgress(L.Callback):
            """The training's epochs and steps as one line of the run's progress view."""

            def __init__(self) -> None:
                self._task: console.NodeTask | None = None

            def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:  # noqa: ARG002
                self._task = console.add_node_task("  training", total=float(trainer.max_epochs or 1))

            def on_train_batch_end(
                self,
                trainer: L.Trainer,
                pl_module: L.LightningModule,  # noqa: ARG002
                outputs: Any,  # noqa: ARG002
                batch: Any,  # noqa: ARG002
                batch_idx: int,
            ) -> None:
                batches = trainer.num_training_batches
                if self._task is None or not isinstance(batches, int) or batches <= 0:
                    return
                self._task.update(
                    completed=trainer.current_epoch + min(batch_idx + 1, batches) / batches,
                    description=f"epoch {trainer.current_epoch + 1}/{trainer.max_epochs}",
                )

            def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:  # noqa: ARG002
                self._close()

            def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:  # noqa: ARG002
                self._close()

            def _close(self) -> None:
                task, self._task = self._task, None
                if task is not None:
                    task.remove()

        _EPOCH_PROGRESS = EpochProgress
    return _EPOCH_PROGRESS


class EpochHistoryModule(L.LightningModule):
    """A Lightning module that keeps its training curve: :attr:`history`, one record per epoch
    ``{"epoch", "loss", "seconds", "lr", ...}`` -- the mean of the losses passed to
    :meth:`record_loss` during the epoch, its wall time, the optimizer's learning rate at the
    epoch's end and whatever :meth:`epoch_extras` adds. Every training node's
    ``training_history`` (``{"epochs": history, ...}``) is made of these records (Task 1's
    networks, Task 2's segmentation models)."""

    def __init__(self) -> None:
        super().__init__()
        self.history: list[dict[str, float]] = []
        self._epoch_loss: list[torch.Tensor] = []

    def record_loss(self, loss: torch.Tensor) -> None:
        """Count a training step's loss in the epoch's mean (kept on the device: no
        synchronisation per step)."""
        self._epoch_loss.append(loss.detach())

    def epoch_extras(self) -> dict[str, float]:
        """Further values of the epoch's record (a subclass's; none here)."""
        return {}

    def on_train_epoch_start(self) -> None:
        self._epoch_start = time.perf_counter()
        self._epoch_first_step = int(self.trainer.global_step)

    def on_train_epoch_end(self) -> None:
        optimizers = self.trainer.optimizers
        record = {
            "epoch": int(self.current_epoch),
            "loss": float(torch.stack(self._epoch_loss).float().mean()) if self._epoch_loss else float("nan"),
            "seconds": time.perf_counter() - getattr(self, "_epoch_start", time.perf_counter()),
            "lr": float(optimizers[0].param_groups[0]["lr"]) if optimizers else float("nan"),
            # Optimizer steps taken in this epoch and in a full one (a dry run stops early):
            # what benchmarks/paper_cost.py projects a full run's time from.
            "steps": int(self.trainer.global_step) - getattr(self, "_epoch_first_step", 0),
            "epoch_steps": float(self.trainer.num_training_batches),  # inf: an iterable without a length
        }
        record.update(self.epoch_extras())
        self.history.append(record)
        self._epoch_loss = []


def resolve_device(settings: TrainingParameters) -> torch.device:
    """The torch device of the ``training`` block's accelerator (for inference outside Lightning)."""
    return torch.device(resolve_accelerator(settings.accelerator))


def inference_autocast(settings: TrainingParameters, device: torch.device) -> Any:
    """Autocast context for inference matching the training precision (bf16/fp16 on GPUs; a
    no-op on CPU or with a 32-bit precision)."""
    precision = resolve_precision(settings.precision, device.type)
    if device.type != "cuda" or precision.startswith(("32", "64")):
        return autocast_context(None, device.type)
    return autocast_context(torch.bfloat16 if precision.startswith("bf16") else torch.float16, "cuda")


def thread_limit(threads: int | str | None = "auto") -> Any:
    """Context in which torch, BLAS and OpenMP use ``threads`` threads (``auto``/None: unchanged);
    the previous counts are restored on exit, so one node's setting does not leak into the next."""
    import contextlib

    @contextlib.contextmanager
    def _limit() -> Any:
        previous = torch.get_num_threads()
        if threads in (None, "auto"):
            yield
            return
        from threadpoolctl import threadpool_limits  # BLAS/OpenMP pools of numpy and scikit-learn

        torch.set_num_threads(int(threads))
        try:
            with threadpool_limits(limits=int(threads)):
                yield
        finally:
            torch.set_num_threads(previous)

    return _limit()
