"""The one training skeleton every method's ``fit`` calls, and the Lightning Trainer beneath it.

A method builds its data (through :func:`voxface.runs.distributed.data_loader`: ``batch_size`` is
the global batch) and its LightningModule, then calls :func:`fit_module`, which builds the Trainer
once with what the method asks (steps, validation and checkpoint intervals, callbacks), resumes
from the run's newest readable checkpoint and trains. Afterwards only the writer process (rank 0,
:func:`voxface.runs.distributed.is_writer`) saves the method's files, and :func:`record_metrics`
writes the run's ``metrics.json`` (its ``training`` section) -- or, when a finished run was run
again and trained nothing, keeps what the file holds.

Checkpoints are written atomically and read back weights-only (:class:`SafeCheckpointIO`); a
resumed run appends to its ``metrics.csv`` (:class:`ResumableCSVLogger`). Run folders: :mod:`.folder`.
The rules that make W processes train as one: :mod:`.distributed` and docs/scale.md.
"""

from __future__ import annotations

import csv
import logging
import random
from pathlib import Path

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.pytorch.callbacks import Callback, ModelCheckpoint, TQDMProgressBar
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from lightning.pytorch.loggers.logger import rank_zero_experiment
from lightning.pytorch.strategies import DDPStrategy

from . import atomic
from .checkpoints import load_weights
from .devices import lightning_accelerator, lightning_precision, resolve_device
from .distributed import SyncBatchNormLayers, launch_from_environment
from .folder import TRAINING, read_metrics, resume_checkpoint, write_metrics

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


def fit_module(module: L.LightningModule, run: Path, settings, train, val=None, *, max_steps: int,
               val_every: int, checkpoint_every: int | None = None, callbacks: tuple[Callback, ...] = (),
               progress: bool = True) -> L.Trainer:
    """Train ``module`` in ``run`` from its newest readable checkpoint (or afresh); the Trainer after fitting.

    Args:
        module: the method's LightningModule.
        run: the run folder (:func:`voxface.runs.folder.run_folder`).
        settings: the method's config (its ``device`` and ``precision``, :class:`TrainingSettings`).
        train, val: the data loaders (:func:`voxface.runs.distributed.data_loader`); ``val`` may be None.
        max_steps: optimiser steps in all (Lightning's ``global_step``: two per batch with two optimisers).
        val_every: training batches between validations.
        checkpoint_every: optimiser steps between checkpoints (default ``val_every``).
        callbacks: the method's own callbacks (early stopping).
        progress: show a progress bar.
    """
    trainer = make_trainer(run, max_steps, val_every, checkpoint_every, callbacks, progress,
                           settings.device, settings.precision, unused_parameters=not module.automatic_optimization)
    trainer.fit(module, train, val, ckpt_path=resume_checkpoint(run))
    return trainer


def make_trainer(run: Path, max_steps: int, val_every: int, checkpoint_every: int | None = None, callbacks=(),
                 progress: bool = True, device: str = "auto", precision: str = "auto",
                 unused_parameters: bool = False) -> L.Trainer:
    """A Trainer writing into ``run``: CSV + TensorBoard logs, checkpoints every ``checkpoint_every``
    optimiser steps (default ``val_every``), written atomically and read back weights-only
    (:class:`SafeCheckpointIO`).

    ``device`` and ``precision`` are the training settings of :mod:`voxface.runs.devices` ("auto": a
    GPU when one is visible, in bf16 mixed precision where the GPU has native bf16, 16-bit mixed
    otherwise; 32-bit on the CPU). Under a launcher (torchrun / SLURM; :mod:`.distributed`) the
    processes and nodes follow it, each process takes its own device, batch normalisation is
    synchronised, and ``unused_parameters`` (a module stepping two optimisers, each of whose
    backward passes reaches only part of the parameters) tells DDP to expect that.
    """
    target = resolve_device(device)
    accelerator, devices = lightning_accelerator(target)
    strategy, num_nodes, plugins = "auto", 1, [SafeCheckpointIO()]
    launch = launch_from_environment()
    if launch.world_size > 1:
        devices, num_nodes = launch.devices, launch.num_nodes
        strategy = DDPStrategy(find_unused_parameters=unused_parameters)
        plugins.append(SyncBatchNormLayers())
        callbacks = (KeepRandomState(), *callbacks)
    checkpoints = ModelCheckpoint(dirpath=run / "checkpoints", filename="step{step}", auto_insert_metric_name=False,
                                  every_n_train_steps=checkpoint_every or val_every, save_last=True, save_top_k=-1)
    bar = [TQDMProgressBar(refresh_rate=10)] if progress else []
    return L.Trainer(
        default_root_dir=run, max_steps=max_steps, val_check_interval=val_every, check_val_every_n_epoch=None,
        logger=[ResumableCSVLogger(run, name="", version="logs"), TensorBoardLogger(run, name="", version="tb")],
        callbacks=[checkpoints, DatasetEpoch(), BatchCounter(), *bar, *callbacks], enable_progress_bar=progress,
        enable_model_summary=False, num_sanity_val_steps=0, log_every_n_steps=10,
        precision=lightning_precision(precision, target), accelerator=accelerator, devices=devices,
        strategy=strategy, num_nodes=num_nodes, plugins=plugins, limit_val_batches=20, deterministic=False)


class OneLossModule(L.LightningModule):
    """A LightningModule whose training and validation steps are one ``_loss(batch, stage)`` (stage
    "train" or "val"), which logs its terms under ``stage/`` and returns the loss."""

    def _loss(self, batch, stage: str):
        raise NotImplementedError

    def training_step(self, batch, batch_idx):
        return self._loss(batch, "train")

    def validation_step(self, batch, batch_idx):
        self._loss(batch, "val")


class ClassifierSteps(L.LightningModule):
    """Training and validation steps of a classifier ``self.model`` on ``(inputs, labels)`` batches:
    cross-entropy (plus :meth:`penalty` in training) and accuracy, logged under ``train/`` and ``val/``."""

    def training_inputs(self, inputs: torch.Tensor) -> torch.Tensor:
        """What the model sees in training (e.g. a random crop of ``inputs``)."""
        return inputs

    def penalty(self) -> torch.Tensor | float:
        """A term added to the training loss (weight decay written into the loss)."""
        return 0.0

    def training_step(self, batch, batch_idx):
        inputs, labels = batch
        logits = self.model(self.training_inputs(inputs))
        loss = F.cross_entropy(logits, labels) + self.penalty()
        self.log("train/loss", loss, prog_bar=True)
        self.log("train/acc", (logits.argmax(1) == labels).float().mean(), prog_bar=True)
        return loss

    def validation_step(self, batch, batch_idx):
        inputs, labels = batch
        logits = self.model(inputs)
        self.log("val/loss", F.cross_entropy(logits, labels), prog_bar=True, sync_dist=True)
        self.log("val/acc", (logits.argmax(1) == labels).float().mean(), prog_bar=True, sync_dist=True)


class PeriodicEvaluation(Callback):
    """Every ``every`` training epochs, and after the last: ``evaluate(module)`` (in eval mode, no
    gradients) -> {name: float}, logged as ``prefix + name`` with the epoch to the Trainer's loggers
    (the run's ``metrics.csv`` and TensorBoard) at the current logging step; then ``after()`` (e.g. redraw
    a learning curve from ``metrics.csv``). The writer process alone evaluates; ``last`` holds the
    newest row.
    """

    def __init__(self, evaluate, every: int, prefix: str = "eval/", after=None):
        self.evaluate, self.every, self.prefix, self.after = evaluate, every, prefix, after
        self.last: dict[str, float] = {}

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        epoch = trainer.current_epoch + 1
        if (epoch % self.every and trainer.global_step < trainer.max_steps) or not trainer.is_global_zero:
            return
        training = pl_module.training
        pl_module.eval()
        with torch.no_grad():
            scores = self.evaluate(pl_module)
        pl_module.train(training)
        self.last = {"epoch": epoch, **{self.prefix + k: float(v) for k, v in scores.items()}}
        # the step Lightning's own rows carry (batches that stepped, not optimiser steps), so a resumed
        # run trims these rows exactly as it trims those (folder.trim_metrics_csv)
        step = trainer.fit_loop.epoch_loop._batches_that_stepped
        for logger in trainer.loggers:
            logger.log_metrics(self.last, step=step)
            logger.save()
        if self.after is not None:
            self.after()


class KeepRandomState(Callback):
    """Give the random generators back the state they had when the Trainer was built, after
    Lightning's DDP set-up re-seeded them: each process then draws what one process would draw (the
    batch's crop length, a shuffling order), not what a fresh seed gives."""

    def __init__(self) -> None:
        self.state = (random.getstate(), np.random.get_state(), torch.get_rng_state())

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        python, numpy_state, torch_state = self.state
        random.setstate(python), np.random.set_state(numpy_state), torch.set_rng_state(torch_state)


class DatasetEpoch(Callback):
    """Tell the training dataset which epoch starts, so that each epoch draws fresh crops and
    triplets (the datasets seed their draws by (seed, epoch, index); see corpus/datasets.py)."""

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        dataset = getattr(trainer.train_dataloader, "dataset", None)
        if hasattr(dataset, "set_epoch"):
            dataset.set_epoch(trainer.current_epoch)


def record_metrics(run: Path, fresh: dict, trainer: L.Trainer) -> dict:
    """Write ``fresh`` as the ``training`` section of the run's ``metrics.json`` (writer process
    only) and return the training metrics the run holds.

    A finished run run again trains nothing, and Lightning then reports no metrics (or a time of
    zero seconds): when ``trainer`` ran no training batch and the section exists, it is kept as it
    is and returned, so a rerun never empties the run's record. Other sections (an evaluation's)
    are kept either way.
    """
    if not trainer.is_global_zero:
        return fresh
    kept = read_metrics(run).get(TRAINING)
    if kept is not None and trained_batches(trainer) == 0:
        log.info("%s: the run was finished already; its metrics are kept", run)
        return kept
    write_metrics(run, {TRAINING: fresh})
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


