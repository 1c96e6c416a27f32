"""Run folders: create or reopen one for a config, its settings, logs and resumption.

A run folder holds ``config.yaml`` (the resolved settings), ``train.log``, ``logs/metrics.csv``,
``tb/`` (TensorBoard), ``checkpoints/`` (``last.ckpt`` plus periodic ones) and ``metrics.json``:
its ``training`` section written by the method (:func:`voxface.runs.trainer.record_metrics`), the
rest by an evaluation of the run (:func:`write_evaluation`), neither removing the other's. Running
the same command on the same folder resumes from ``last.ckpt``; a folder made with other settings
is refused. :func:`run_folder` opens one for the length of a training:
its ``train.log`` receives the log records (and only while the run lasts) and warning filters set
inside are undone at the end.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import functools
import io
import logging
import shutil
import warnings
from pathlib import Path
from typing import Iterator

import yaml

from ..errors import VoxfaceError
from ..paths import output_folder
from . import atomic
from .checkpoints import load_weights
from .config import build, run_identity
from .devices import lightning_precision, resolve_device
from .distributed import is_writer
from .lock import LOCK_FILE, folder_lock
from .logs import log_file
from .reading import read_json, read_yaml

log = logging.getLogger(__name__)

CONFIG_FILE = "config.yaml"
METRICS_CSV = "logs/metrics.csv"
METRICS_FILE = "metrics.json"
TRAINING = "training"
"""The section of ``metrics.json`` that training writes."""
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
    if is_writer():
        if existing != resolved:
            atomic.write_text(path, yaml.safe_dump(resolved, sort_keys=False))
        swept = atomic.remove_stale_temporaries(run)
        if swept:
            log.info("removed %d temporary file(s) a killed run left in %s", swept, run)
        point = _set_aside_damaged(run)
        if point is not None:
            trim_metrics_csv(run / METRICS_CSV, point[1])
    return run


@contextlib.contextmanager
def run_folder(run_dir: str | Path, config, kind: str) -> Iterator[Path]:
    """:func:`open_run` under the folder's lock (``runs.lock``: a second command on the folder is
    refused, naming this one), with the run's ``train.log`` receiving the log records and warning
    filters kept local until the block ends (then both are undone: the next run's log holds only its own).

    A new run refused inside the block (a VoxfaceError before anything was trained: a missing
    encoder, too few identities) leaves no folder behind: what this call made is removed.
    """
    fresh = not (Path(run_dir) / CONFIG_FILE).is_file()
    made = next((f for f in reversed([Path(run_dir), *Path(run_dir).parents]) if not f.exists()), None)
    output_folder(run_dir, "--run")
    with folder_lock(run_dir, "run folder") if is_writer() else contextlib.nullcontext():
        try:  # a refusal of the settings themselves (open_run) leaves no folder either
            run = open_run(run_dir, config, kind)
            with log_file(run / "train.log") if is_writer() else contextlib.nullcontext(), warnings.catch_warnings():
                yield run
        except VoxfaceError:
            if fresh and is_writer() and _nothing_trained(Path(run_dir)):
                _remove_untrained(Path(run_dir), made)
            raise


def _remove_untrained(run: Path, made: Path | None) -> None:
    """Remove the settings and logs of a run that never trained, and the folders made for it (``made``:
    the outermost of them, None when the run folder existed before)."""
    for path in run.iterdir():
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    for folder in [run, *run.parents] if made is not None else []:
        folder.rmdir()
        if folder == made:
            break
    log.debug("removed the untrained run folder %s", run)


def _existing_config(path: Path) -> dict | None:
    if not path.is_file():
        return None
    existing = read_yaml(path, "run settings")
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
    allowed = {CONFIG_FILE, "train.log", "logs", "tb", LOCK_FILE}
    return all(p.name in allowed for p in run.iterdir())


def read_run_config(run_dir: str | Path) -> dict:
    """The resolved config of a run folder; VoxfaceError when it is not one."""
    path = Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        raise VoxfaceError(f"{run_dir} is not a voxface run folder (no {CONFIG_FILE}); train one first")
    return _existing_config(path)


def check_scores_corpus(run_dir: str | Path, corpus_dir: str | Path) -> None:
    """Refuse to score a run on ``corpus_dir`` when its ``metrics.json`` holds scores on another corpus
    (they would be replaced without a word).

    Raises:
        VoxfaceError: naming the file and both corpora.
    """
    path = Path(run_dir) / METRICS_FILE
    if not path.is_file():
        return
    saved = read_json(path, "metrics file")
    before = saved.get("corpus") if isinstance(saved, dict) else None
    if before and Path(before).resolve() != Path(corpus_dir).resolve():
        raise VoxfaceError(f"{path} holds the scores on corpus {before}; scoring on {corpus_dir} would replace them: "
                           "move that file aside first, or score on the corpus it names")


def run_corpus(run_dir: str | Path, corpus_dir: str | Path | None = None) -> str:
    """``corpus_dir`` if given, else the corpus the run was trained on; VoxfaceError for an imported run
    (it has none) without ``corpus_dir``."""
    corpus = corpus_dir or read_run_config(run_dir).get("corpus")
    if not corpus:
        raise VoxfaceError(f"{run_dir} was not trained here (an imported model); pass --corpus CORPUS, a corpus "
                           "built on its morphable model (e.g. `voxface synth --model cmp-release:DIR`)")
    return str(corpus)


def read_metrics(run: str | Path) -> dict:
    """What the run's ``metrics.json`` holds; {} when there is none (or it is unreadable: a warning)."""
    path = Path(run) / METRICS_FILE
    if not path.is_file():
        return {}
    try:
        metrics = read_json(path, "metrics file")
    except VoxfaceError as e:
        log.warning("%s; it is written afresh", e)
        return {}
    return metrics if isinstance(metrics, dict) else {}


def write_metrics(run: str | Path, sections: dict) -> None:
    """Write ``sections`` into the run's ``metrics.json`` (atomically), keeping the other sections."""
    atomic.write_json(Path(run) / METRICS_FILE, {**read_metrics(run), **sections})


def write_evaluation(run: str | Path, metrics: dict) -> None:
    """An evaluation's ``metrics``, replacing an earlier evaluation's, as the run's ``metrics.json``;
    the ``training`` section stays."""
    training = read_metrics(run).get(TRAINING)
    atomic.write_json(Path(run) / METRICS_FILE, {**metrics, **({TRAINING: training} if training is not None else {})})


def training_metrics(run: str | Path, what: str, hint: str) -> dict:
    """The ``training`` section of a finished run's ``metrics.json``; VoxfaceError naming the run otherwise."""
    metrics = read_metrics(run).get(TRAINING)
    if metrics is None:
        raise VoxfaceError(f"{run} is not a finished {what} run (no training metrics in {Path(run) / METRICS_FILE}); "
                           f"{hint}")
    return metrics


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


def _plain(value):
    """Tuples -> lists, recursively, so the YAML round trip compares equal."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
