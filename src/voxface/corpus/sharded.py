"""Per-utterance features packed into a few large shard files, for corpora of millions of utterances.

One ``.npy`` per utterance (``corpus/features.py``) means a million files to open per epoch; here
the features of many utterances are concatenated along time into one float32 array per shard,
read through a memory map, so a worker touches a handful of files and only the pages it crops.

Layout of a shard folder::

    shard-00000.npy ...   float32 (R_s, F): the utterances' rows one after another
    index.npz             per utterance: shard (U,) int32, offset (U,) int64, rows (U,) int64,
                          utterance (U,) str, identity (U,) str
    shards.json           kind, feature dim F, utterance and shard counts, target shard size

Shards and the index are written atomically; ``progress.json`` records the finished shards while
packing, so an interrupted pack resumes at the first unfinished shard.
"""

from __future__ import annotations

import json
import logging
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np
from torch.utils.data import Dataset
from tqdm import tqdm

from ..errors import VoxfaceError
from ..paths import output_folder
from ..runs import atomic
from ..runs.config import check_number
from ..runs.integrity import npy_problem
from .features import KINDS, feature_path
from .format import Corpus, Utterance

log = logging.getLogger(__name__)

INDEX_FILE = "index.npz"
META_FILE = "shards.json"
PROGRESS_FILE = "progress.json"
DEFAULT_SHARD_MB = 512.0


def shard_name(k: int) -> str:
    return f"shard-{k:05d}.npy"


def pack_shards(features: Callable[[int], Iterable[np.ndarray]], utterances: list[Utterance], out_dir: str | Path,
                kind: str, shard_mb: float = DEFAULT_SHARD_MB, progress: bool = True) -> Path:
    """Pack per-utterance features, in the order of ``utterances``, into shards of about ``shard_mb``.

    Args:
        features: ``features(start)`` yields the (T_i, F) float32 array of each utterance from
            index ``start`` on (a (F,) embedding counts as one row); consumed lazily, so a million
            utterances never sit in memory at once, and a resumed pack starts where it stopped.
        utterances: the utterances the arrays belong to (same order).
        out_dir: the shard folder.
        kind: the feature kind (``cmp_logmel`` or ``resemblyzer``), recorded in ``shards.json``.

    Returns:
        ``out_dir``.
    """
    if not utterances:
        raise VoxfaceError(f"nothing to pack into {out_dir}: the utterance list is empty")
    shard_mb = check_number("--shard-mb (target shard size in MB)", shard_mb, float, gt=0)
    out = output_folder(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    atomic.remove_stale_temporaries(out)
    settings = {"kind": kind, "shard_mb": shard_mb, "utterances": len(utterances)}
    done = _read_progress(out, settings)
    start = done["packed_utterances"]
    rows_of = done["rows"]
    bar = tqdm(total=len(utterances), initial=start, desc="packing shards", unit="utt", disable=not progress)
    limit = shard_mb * 2**20
    pending, pending_bytes = [], 0
    for i, array in enumerate(features(start), start):
        array = np.atleast_2d(np.asarray(array, dtype=np.float32))
        pending.append(array)
        pending_bytes += array.nbytes
        bar.update()
        if pending_bytes >= limit or i == len(utterances) - 1:
            _write_shard(out, len(done["shards"]), pending)
            done["shards"].append(len(pending))
            rows_of += [len(a) for a in pending]
            done["packed_utterances"] = i + 1
            atomic.write_json(out / PROGRESS_FILE, {**done, "settings": settings})
            pending, pending_bytes = [], 0
    bar.close()
    if done["packed_utterances"] != len(utterances):
        raise VoxfaceError(f"{done['packed_utterances']} feature arrays were given for {len(utterances)} "
                           "utterances; give one array per utterance")
    _write_index(out, utterances, done["shards"], rows_of, kind, settings)
    return out


def _read_progress(out: Path, settings: dict) -> dict:
    path = out / PROGRESS_FILE
    fresh = {"packed_utterances": 0, "shards": [], "rows": []}
    if not path.is_file():
        return fresh
    saved = json.loads(path.read_text())
    if saved.pop("settings") != settings:
        raise VoxfaceError(f"{out} holds a pack made with other settings; use another --out folder or delete it")
    intact = next((k for k in range(len(saved["shards"])) if npy_problem(out / shard_name(k))), len(saved["shards"]))
    if intact < len(saved["shards"]):
        damaged = out / shard_name(intact)
        log.warning("%s is %s: the pack resumes from it", damaged, npy_problem(damaged))
        saved["shards"] = saved["shards"][:intact]
        saved["packed_utterances"] = sum(saved["shards"])
        saved["rows"] = saved["rows"][:saved["packed_utterances"]]
    log.info("resuming the pack in %s after %d utterances", out, saved["packed_utterances"])
    return saved


def _write_shard(out: Path, k: int, arrays: list[np.ndarray]) -> None:
    widths = {a.shape[1] for a in arrays}
    if len(widths) != 1:
        raise VoxfaceError(f"feature arrays of shard {k} have different widths {sorted(widths)}; "
                           "pack one feature kind at a time")
    with atomic.atomic_path(out / shard_name(k)) as tmp:
        np.save(tmp, np.concatenate(arrays))


def _write_index(out: Path, utterances: list[Utterance], shard_sizes: list[int], rows: list[int], kind: str,
                 settings: dict) -> None:
    shard = np.repeat(np.arange(len(shard_sizes), dtype=np.int32), shard_sizes)
    rows = np.asarray(rows, dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(shard_sizes)[:-1]]).astype(np.int64)
    cumulative = np.concatenate([[0], np.cumsum(rows)])
    offset = cumulative[:-1] - cumulative[starts][shard]  # rows before each utterance within its shard
    width = int(np.load(out / shard_name(0), mmap_mode="r").shape[1])
    atomic.write_npz(out / INDEX_FILE, shard=shard, offset=offset, rows=rows,
                     utterance=np.array([u.utterance for u in utterances]),
                     identity=np.array([u.identity for u in utterances]))
    atomic.write_json(out / META_FILE, {"format": "voxface-feature-shards", **settings, "dim": width,
                                        "shards": len(shard_sizes)})


def pack_corpus(corpus: Corpus, out_dir: str | Path, kind: str = "cmp_logmel",
                utterances: list[Utterance] | None = None, shard_mb: float = DEFAULT_SHARD_MB,
                workers: int = 1, progress: bool = True) -> Path:
    """Pack the features of a corpus's utterances (all by default) into shards.

    A feature already cached per utterance is read from its file; a missing ``cmp_logmel`` one is
    computed from the audio in ``workers`` processes straight into the shard, so a large corpus never
    gets one file per utterance.
    """
    if kind not in KINDS:
        raise VoxfaceError(f"unknown feature kind {kind!r}; choose one of {KINDS}")
    utterances = list(corpus.utterances if utterances is None else utterances)
    items = [(str(feature_path(corpus, u, kind)), str(corpus.path(u.audio)), kind) for u in utterances]
    return pack_shards(lambda start: _features_in_order(items[start:], workers), utterances, out_dir, kind, shard_mb, progress)


def _features_in_order(items: list[tuple[str, str, str]], workers: int) -> Iterator[np.ndarray]:
    if workers <= 1:
        yield from map(_feature_of, items)
        return
    with ProcessPoolExecutor(workers) as pool:
        yield from pool.map(_feature_of, items, chunksize=16)


def _feature_of(item: tuple[str, str, str]) -> np.ndarray:
    cached, audio, kind = item
    problem = npy_problem(cached)
    if problem is None:
        return np.load(cached)
    if kind != "cmp_logmel":
        raise VoxfaceError(f"cached {kind} feature {cached} is {problem}; compute them first (voxface train ... does) "
                           "or pack cmp_logmel features, which are computed on the fly")
    from ..audio.features import cmp_logmel
    from ..audio.voice import prepare_voice

    return cmp_logmel(prepare_voice(audio)).astype(np.float32)


class ShardedFeatures(Dataset):
    """The utterances of a shard folder as a sequence of (T_i, F) float32 arrays, read on demand.

    Item ``i`` is a read-only memory-mapped view of utterance ``i`` (copy it before writing); each
    process opens each shard once, on first use. A ``(F,)`` embedding comes back as ``(1, F)``.
    It can stand wherever a list of per-utterance arrays goes, e.g. as the ``features`` of
    :class:`voxface.corpus.datasets.Triplets` or ``SpeakerCrops``.

    Attributes:
        utterance_ids, identity_ids: (U,) str of each utterance.
        meta: the ``shards.json`` settings (kind, dim, counts).
    """

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        if not (self.folder / META_FILE).is_file() or not (self.folder / INDEX_FILE).is_file():
            raise VoxfaceError(f"{folder} is not a finished feature-shard folder (no {META_FILE} / {INDEX_FILE}); "
                               "pack it with `voxface shard` (an interrupted pack resumes)")
        self.meta = json.loads((self.folder / META_FILE).read_text())
        with np.load(self.folder / INDEX_FILE) as index:
            self.shard, self.offset, self.rows = index["shard"], index["offset"], index["rows"]
            self.utterance_ids, self.identity_ids = index["utterance"], index["identity"]
        self._maps: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.shard)

    def __getitem__(self, i: int) -> np.ndarray:
        k = int(self.shard[i])
        if k not in self._maps:
            self._maps[k] = np.load(self.folder / shard_name(k), mmap_mode="r")
        start = int(self.offset[i])
        return self._maps[k][start:start + int(self.rows[i])]

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_maps": {}}  # a worker process maps the shards itself
