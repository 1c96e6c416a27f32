"""Run folders and the Lightning Trainer every training command shares.

A run folder holds ``config.yaml`` (the resolved settings), ``train.log``, ``logs/metrics.csv``,
``tb/`` (TensorBoard), ``checkpoints/`` (``last.ckpt`` plus periodic ones) and, after evaluation,
``metrics.json``. Running the same command on the same folder resumes from ``last.ckpt``; a folder
made with other settings is refused.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import io
import json
import logging
from pathlib import Path

import lightning as L
import torch
import yaml
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.pytorch.callbacks import Callback, ModelCheckpoint, TQDMProgressBar
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from lightning.pytorch.loggers.logger import rank_zero_experiment

from . import atomic
from .checkpoints import load_weights
from .config import build, run_identity
from .devices import lightning_accelerator, lightning_precision, resolve_device
from ..errors import VoxfaceError
from .logs import add_log_file
from ..paths import output_folder
from .distributed import global_rank, launch_from_environment

log = logging.getLogger(__name__)

# Lightning installs its own console handler at import; route its records through ours instead and
# keep only warnings (the run's own log says what happens).
for _name in ("lightning.pytorch", "lightning.fabric"):
    _lightning_log = logging.getLogger(_name)
    _lightning_log.handlers.clear()
    _lightning_log.propagate = True
    _lightning_log.setLevel(logging.WARNING)

CONFIG_FILE = "config.yaml"
METRICS_CSV = "logs/metrics.csv"
DAMAGED_SUFFIX = ".damaged"


def open_run(run_dir: str | Path, config, kind: str) -> Path:
    """Create (or reopen, for resuming) a run folder for ``config`` (a dataclass) of ``kind``.

    Reopening sweeps the temporaries a killed writer left, picks the checkpoint to resume from (a
    damaged ``last.ckpt`` falls back to the newest readable one, with a warning) and cuts the
    ``logs/metrics.csv`` rows that resuming from it will log again. A folder whose training never
    got going (no checkpoint, nothing but its config and logs) takes the new settings.

    Raises:
        VoxfaceError: when the folder holds a run of another kind or with other settings, or the
            ``device`` / ``precision`` settings ask for hardware this machine does not have.
    """
    if hasattr(config, "device"):  # a device that is not there is refused before the folder is made
        lightning_precision(config.precision, resolve_device(config.device))
    run = output_folder(run_dir, "--run")
    path = run / CONFIG_FILE
    resolved = {"kind": kind, **_plain(dataclasses.asdict(config))}
    existing = _existing_config(path)
    if existing is not None:
        changed = _changed_settings(existing, config, kind)
        if changed and not _nothing_trained(run):
            raise VoxfaceError(f"run folder {run} was made with other settings ({', '.join(changed)}); "
                               "use another --run folder or delete this one")
        if changed:
            log.info("run folder %s has no checkpoint yet: its settings are replaced (%s)", run, ", ".join(changed))
    if global_rank() == 0:
        if existing != resolved:
            atomic.write_text(path, yaml.safe_dump(resolved, sort_keys=False))
        swept = atomic.remove_stale_temporaries(run)
        if swept:
            log.info("removed %d temporary file(s) a killed run left in %s", swept, run)
        point = _set_aside_damaged(run)
        if point is not None:
            trim_metrics_csv(run / METRICS_CSV, point[1])
    add_log_file(run / "train.log")
    return run


def _existing_config(path: Path) -> dict | None:
    if not path.is_file():
        return None
    try:
        existing = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise VoxfaceError(f"{path} is not valid YAML ({e}); delete the run folder or repair the file") from None
    if not isinstance(existing, dict):
        raise VoxfaceError(f"{path} does not hold a run's settings; delete the run folder or repair the file")
    return existing


def _changed_settings(existing: dict, config, kind: str) -> list[str]:
    """The names of the settings that define the run (not device or precision) that differ, read
    through the config's types (a ``'2e-4'`` an older voxface wrote is the float 2e-4)."""
    names = {f.name for f in dataclasses.fields(config)}
    try:
        before = run_identity(build(type(config), {k: v for k, v in existing.items() if k in names}))
    except VoxfaceError:
        before = existing
    now = run_identity(config)
    changed = sorted(k for k in set(before) | set(now) if _plain(before.get(k)) != _plain(now.get(k)))
    return (["kind"] if existing.get("kind") != kind else []) + changed


def _nothing_trained(run: Path) -> bool:
    """True when the run folder holds nothing but its settings and logs (training never started)."""
    allowed = {CONFIG_FILE, "train.log", "logs", "tb"}
    return all(p.name in allowed for p in run.iterdir())


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
    if path.is_file() and trained_batches(trainer) == 0:
        try:
            kept = json.loads(path.read_text())
            log.info("%s: the run was finished already; its metrics are kept", path)
            return kept
        except json.JSONDecodeError:
            log.warning("%s is unreadable; it is written afresh", path)
    atomic.write_json(path, fresh)
    return fresh


def trained_batches(trainer: L.Trainer) -> int:
    """Training batches ``trainer`` ran in this process (0 when a finished run was resumed)."""
    return sum(c.batches for c in trainer.callbacks if isinstance(c, BatchCounter))


class BatchCounter(Callback):
    """Counts the training batches a Trainer runs in this process."""

    def __init__(self) -> None:
        self.batches = 0

    def on_train_batch_end(self, *args, **kwargs) -> None:
        self.batches += 1


def resume_checkpoint(run: Path) -> str | None:
    """The checkpoint the run resumes from (see :func:`resume_point`), or None to start afresh."""
    point = resume_point(run)
    return None if point is None else str(point[0])


def resume_point(run: Path) -> tuple[Path, int] | None:
    """The newest readable checkpoint of ``run`` and the logging step it was saved at.

    ``last.ckpt`` first, then ``step*.ckpt`` newest first. A damaged file (truncated, or holding
    more than weights) is passed over with a warning naming it. None when there is none at all.
    """
    return _checkpoint_survey(run)[0]


def _checkpoint_survey(run: Path) -> tuple[tuple[Path, int] | None, tuple[str, ...]]:
    """(:func:`resume_point`, the damaged checkpoints newer than it)."""
    folder = Path(run) / "checkpoints"
    candidates = [folder / "last.ckpt"] + sorted(folder.glob("step*.ckpt"), key=_step_number, reverse=True)
    stamps = tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in candidates if p.is_file())
    return _first_readable(stamps)


@functools.lru_cache(maxsize=16)
def _first_readable(stamps: tuple[tuple[str, int, int], ...]) -> tuple[tuple[Path, int] | None, tuple[str, ...]]:
    """(path, logged step) of the first checkpoint in ``stamps`` that loads (weights only), and the
    damaged ones before it. Cached by (path, size, mtime), so the warnings appear once per process."""
    damaged: list[str] = []
    for name, _, _ in stamps:
        try:
            checkpoint = load_weights(name, "Lightning checkpoint")
            loops = checkpoint["loops"]["fit_loop"]["epoch_loop.state_dict"]
            step = int(loops.get("_batches_that_stepped", checkpoint["global_step"]))
        except (VoxfaceError, KeyError, TypeError) as e:
            log.warning("checkpoint %s cannot be resumed from: %s", name, e)
            damaged.append(name)
            continue
        if damaged:
            log.warning("resuming from %s instead of the damaged %s", name, ", ".join(damaged))
        else:
            log.info("resuming from %s", name)
        return (Path(name), step), tuple(damaged)
    if damaged:
        log.warning("no readable checkpoint in %s: training starts afresh", Path(stamps[0][0]).parent)
    return None, tuple(damaged)


def _set_aside_damaged(run: Path) -> tuple[Path, int] | None:
    """Rename the damaged checkpoints newer than the resume point to ``*.damaged`` (so that the new
    ``last.ckpt`` takes its own name again); return the resume point."""
    point, damaged = _checkpoint_survey(run)
    for name in damaged:
        Path(name).replace(name + DAMAGED_SUFFIX)
        log.warning("%s renamed to %s%s", name, Path(name).name, DAMAGED_SUFFIX)
    return point


def _step_number(path: Path) -> int:
    digits = "".join(c for c in path.stem if c.isdigit())
    return int(digits) if digits else -1


def trim_metrics_csv(path: Path, step: int) -> int:
    """Drop the rows of ``metrics.csv`` logged after ``step``: resuming from a checkpoint saved at
    that step logs them again. Returns how many were dropped."""
    if not path.is_file():
        return 0
    with open(path, newline="") as file:
        reader = csv.DictReader(file)
        header, rows = reader.fieldnames or [], list(reader)
    kept = [r for r in rows if not r.get("step") or int(float(r["step"])) <= step]
    if len(kept) < len(rows):
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=header, lineterminator="\n")
        writer.writeheader()
        writer.writerows(kept)
        atomic.write_text(path, buffer.getvalue())
        log.info("%s: dropped %d row(s) after step %d, which resuming logs again", path, len(rows) - len(kept), step)
    return len(rows) - len(kept)


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


def _plain(value):
    """Tuples -> lists, recursively, so the YAML round trip compares equal."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
