"""The Lightning Trainer every training method shares: logs, checkpoints, devices, resumption.

Checkpoints are written atomically and read back weights-only (:class:`SafeCheckpointIO`); a
resumed run appends to its ``metrics.csv`` (:class:`ResumableCSVLogger`); a finished run run again
keeps its recorded metrics (:func:`record_metrics`). Run folders themselves: :mod:`.folder`.
"""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path

import lightning as L
import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.pytorch.callbacks import Callback, ModelCheckpoint, TQDMProgressBar
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from lightning.pytorch.loggers.logger import rank_zero_experiment

from . import atomic
from .checkpoints import load_weights
from .devices import lightning_accelerator, lightning_precision, resolve_device
from .distributed import launch_from_environment

log = logging.getLogger(__name__)

# Lightning installs its own console handler at import; route its records through ours instead and
# keep only warnings (the run's own log says what happens).
for _name in ("lightning.pytorch", "lightning.fabric"):
    _lightning_log = logging.getLogger(_name)
    _lightning_log.handlers.clear()
    _lightning_log.propagate = True
    _lightning_log.setLevel(logging.WARNING)

class AppendingCSVWriter(ExperimentWriter):
    """Lightning's CSV writer, except that a resumed run appends to its ``metrics.csv`` (Lightning's
    own writer deletes the file it finds, losing the rows logged before the run stopped)."""

    def _check_log_dir_exists(self) -> None:
        if Path(self.metrics_file_path).is_file():
            with open(self.metrics_file_path, newline="") as file:
                self.metrics_keys = sorted(next(csv.reader(file), []))


class ResumableCSVLogger(CSVLogger):
    """:class:`CSVLogger` writing through :class:`AppendingCSVWriter`."""

    @property
    @rank_zero_experiment
    def experiment(self) -> AppendingCSVWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = AppendingCSVWriter(log_dir=self.log_dir)
        return self._experiment


def make_trainer(run: Path, max_steps: int, val_every: int, progress: bool = True,
                 device: str = "auto", precision: str = "auto") -> L.Trainer:
    """A Trainer writing into ``run``: CSV + TensorBoard logs, checkpoints every ``val_every`` steps,
    written atomically and read back weights-only (:class:`SafeCheckpointIO`).

    ``device`` and ``precision`` are the training settings of :mod:`voxface.devices` ("auto": a GPU
    when one is visible, in bf16 mixed precision where the GPU has native bf16, 16-bit mixed
    otherwise; 32-bit on the CPU). Under a launcher (torchrun / SLURM: DDP; see
    train/distributed.py) the processes and nodes follow it and each process takes its own GPU.
    """
    target = resolve_device(device)
    accelerator, devices = lightning_accelerator(target)
    strategy, num_nodes = "auto", 1
    launch = launch_from_environment()
    if launch.world_size > 1:
        devices, strategy, num_nodes = launch.devices, launch.strategy, launch.num_nodes
    checkpoints = ModelCheckpoint(dirpath=run / "checkpoints", filename="step{step}", auto_insert_metric_name=False,
                                  every_n_train_steps=val_every, save_last=True, save_top_k=-1)
    callbacks = [checkpoints, DatasetEpoch(), BatchCounter()] + ([TQDMProgressBar(refresh_rate=10)] if progress else [])
    return L.Trainer(
        default_root_dir=run, max_steps=max_steps, val_check_interval=val_every, check_val_every_n_epoch=None,
        logger=[ResumableCSVLogger(run, name="", version="logs"), TensorBoardLogger(run, name="", version="tb")],
        callbacks=callbacks, enable_progress_bar=progress, enable_model_summary=False, num_sanity_val_steps=0,
        log_every_n_steps=10, precision=lightning_precision(precision, target), accelerator=accelerator,
        devices=devices, strategy=strategy, num_nodes=num_nodes, plugins=[SafeCheckpointIO()],
        limit_val_batches=20, deterministic=False)


class OneLossModule(L.LightningModule):
    """A LightningModule whose training and validation steps are one ``_loss(batch, stage)`` (stage
    "train" or "val"), which logs its terms under ``stage/`` and returns the loss."""

    def _loss(self, batch, stage: str):
        raise NotImplementedError

    def training_step(self, batch, batch_idx):
        return self._loss(batch, "train")

    def validation_step(self, batch, batch_idx):
        self._loss(batch, "val")


class DatasetEpoch(Callback):
    """Tell the training dataset which epoch starts, so that each epoch draws fresh crops and
    triplets (the datasets seed their draws by (seed, epoch, index); see corpus/datasets.py)."""

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        dataset = getattr(trainer.train_dataloader, "dataset", None)
        if hasattr(dataset, "set_epoch"):
            dataset.set_epoch(trainer.current_epoch)


def record_metrics(path: Path, fresh: dict, trainer: L.Trainer) -> dict:
    """Write a run's metrics file from ``fresh`` and return what it holds.

    A finished run run again trains nothing, and Lightning then reports no metrics (or a time of
    zero seconds): when ``trainer`` ran no training batch and the file exists, it is kept as it is
    and its content returned, so a rerun never empties the run's record.
    """
    if finished_already(path, trainer):
        try:
            kept = json.loads(path.read_text())
            log.info("%s: the run was finished already; its metrics are kept", path)
            return kept
        except json.JSONDecodeError:
            log.warning("%s is unreadable; it is written afresh", path)
    atomic.write_json(path, fresh)
    return fresh


def finished_already(path: Path, trainer: L.Trainer) -> bool:
    """Whether ``path`` (a result a fit writes at its end: ``predictor.pt``, a metrics file) exists and
    ``trainer`` trained nothing: the run was finished before this call, and its results, with what
    the user added since (a voice reference in ``predictor.pt``), are kept as they are."""
    return Path(path).is_file() and trained_batches(trainer) == 0


def trained_batches(trainer: L.Trainer) -> int:
    """Training batches ``trainer`` ran in this process (0 when a finished run was resumed)."""
    return sum(c.batches for c in trainer.callbacks if isinstance(c, BatchCounter))


class BatchCounter(Callback):
    """Counts the training batches a Trainer runs in this process."""

    def __init__(self) -> None:
        self.batches = 0

    def on_train_batch_end(self, *args, **kwargs) -> None:
        self.batches += 1


class SafeCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint I/O, writing atomically (a kill never leaves half a ``last.ckpt``) and
    reading weights only (a checkpoint cannot run code when a run resumes)."""

    def save_checkpoint(self, checkpoint: dict, path, storage_options=None) -> None:
        if storage_options is not None:
            raise TypeError("storage_options are not supported")
        with atomic.atomic_path(path) as tmp:
            torch.save(checkpoint, tmp)

    def load_checkpoint(self, path, map_location=None, weights_only=None) -> dict:
        return load_weights(path, "Lightning checkpoint", "delete it to start the run afresh")


