"""Run folders and the Lightning Trainer every training command shares.

A run folder holds ``config.yaml`` (the resolved settings), ``train.log``, ``logs/metrics.csv``,
``tb/`` (TensorBoard), ``checkpoints/`` (``last.ckpt`` plus periodic ones) and, after evaluation,
``metrics.json``. Running the same command on the same folder resumes from ``last.ckpt``; a folder
made with other settings is refused.
"""

from __future__ import annotations

import csv
import dataclasses
import logging
from pathlib import Path

import lightning as L
import torch
import yaml
from lightning.pytorch.callbacks import Callback, ModelCheckpoint, TQDMProgressBar
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from lightning.pytorch.loggers.logger import rank_zero_experiment

from .. import atomic
from ..errors import VoxfaceError
from ..logs import add_log_file
from .distributed import launch_from_environment

log = logging.getLogger(__name__)

# Lightning installs its own console handler at import; route its records through ours instead and
# keep only warnings (the run's own log says what happens).
for _name in ("lightning.pytorch", "lightning.fabric"):
    _lightning_log = logging.getLogger(_name)
    _lightning_log.handlers.clear()
    _lightning_log.propagate = True
    _lightning_log.setLevel(logging.WARNING)

CONFIG_FILE = "config.yaml"
LAST_CHECKPOINT = "checkpoints/last.ckpt"


def open_run(run_dir: str | Path, config, kind: str) -> Path:
    """Create (or reopen, for resuming) a run folder for ``config`` (a dataclass) of ``kind``.

    Raises VoxfaceError when the folder holds a run of another kind or with other settings.
    """
    run = Path(run_dir)
    resolved = {"kind": kind, **_plain(dataclasses.asdict(config))}
    path = run / CONFIG_FILE
    if path.is_file():
        existing = yaml.safe_load(path.read_text())
        if existing != resolved:
            changed = sorted(k for k in set(existing) | set(resolved) if existing.get(k) != resolved.get(k))
            raise VoxfaceError(f"run folder {run} was made with other settings ({', '.join(changed)}); "
                               "use another --run folder or delete this one")
    else:
        atomic.write_text(path, yaml.safe_dump(resolved, sort_keys=False))
    add_log_file(run / "train.log")
    return run


def read_run_config(run_dir: str | Path) -> dict:
    """The resolved config of a run folder; VoxfaceError when it is not one."""
    path = Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        raise VoxfaceError(f"{run_dir} is not a voxface run folder (no {CONFIG_FILE}); train one first")
    return yaml.safe_load(path.read_text())


def run_corpus(run_dir: str | Path, corpus_dir: str | Path | None = None) -> str:
    """``corpus_dir`` if given, else the corpus the run was trained on; VoxfaceError for an imported run
    (it has none) without ``corpus_dir``."""
    corpus = corpus_dir or read_run_config(run_dir).get("corpus")
    if not corpus:
        raise VoxfaceError(f"{run_dir} was not trained here (an imported model); pass --corpus CORPUS, a corpus "
                           "built on its morphable model (e.g. `voxface synth --model cmp-release:DIR`)")
    return str(corpus)


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
                 devices: int | str = "auto", strategy: str = "auto", num_nodes: int = 1) -> L.Trainer:
    """A Trainer writing into ``run``: CSV + TensorBoard logs, checkpoints every ``val_every`` steps.

    Mixed precision (bf16/16) is used automatically when a CUDA GPU is present. Left on "auto",
    devices, nodes and strategy follow the launcher (torchrun / SLURM: DDP; see train/distributed.py).
    """
    if devices == "auto" and strategy == "auto":
        launch = launch_from_environment()
        devices, strategy, num_nodes = launch.devices, launch.strategy, launch.num_nodes
    precision = ("bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed") if torch.cuda.is_available() else "32-true"
    checkpoints = ModelCheckpoint(dirpath=run / "checkpoints", filename="step{step}", auto_insert_metric_name=False,
                                  every_n_train_steps=val_every, save_last=True, save_top_k=-1)
    callbacks = [checkpoints, DatasetEpoch()] + ([TQDMProgressBar(refresh_rate=10)] if progress else [])
    return L.Trainer(
        default_root_dir=run, max_steps=max_steps, val_check_interval=val_every, check_val_every_n_epoch=None,
        logger=[ResumableCSVLogger(run, name="", version="logs"), TensorBoardLogger(run, name="", version="tb")],
        callbacks=callbacks, enable_progress_bar=progress, enable_model_summary=False, num_sanity_val_steps=0,
        log_every_n_steps=10, precision=precision, devices=devices, strategy=strategy, num_nodes=num_nodes,
        limit_val_batches=20, deterministic=False)


class DatasetEpoch(Callback):
    """Tell the training dataset which epoch starts, so that each epoch draws fresh crops and
    triplets (the datasets seed their draws by (seed, epoch, index); see corpus/datasets.py)."""

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        dataset = getattr(trainer.train_dataloader, "dataset", None)
        if hasattr(dataset, "set_epoch"):
            dataset.set_epoch(trainer.current_epoch)


def resume_checkpoint(run: Path) -> str | None:
    """``last.ckpt`` of the run when one exists (the run then resumes), else None."""
    path = run / LAST_CHECKPOINT
    if path.is_file():
        log.info("resuming from %s", path)
        return str(path)
    return None


def _plain(value):
    """Tuples -> lists, recursively, so the YAML round trip compares equal."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
