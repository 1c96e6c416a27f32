"""Data-loader throughput: feature shards vs one file per utterance, on this machine's cores.

Usage: .venv/bin/python bench/bench_sharded_loader.py [--utterances 6000] [--batches 150] [--workers 2]

Writes ``--utterances`` CMP-sized feature arrays (float32 (1000, 64), 256 KB each; random values)
twice into a temporary folder: once in the per-utterance cache layout (``<identity>/<utt>.npy``,
8 utterances per identity) and once packed into 512 MB shards (``voxface.corpus.sharded``). Then a
PyTorch DataLoader (``--workers`` processes, batch 64) draws ``SpeakerCrops`` items (a random
utterance, a random 800-frame crop) from each layout and prints samples per second, side by side
with the ratio sharded : per-file, with the page cache warm (files just read) and cold (every file
evicted with posix_fadvise DONTNEED before the pass, so reads go to the disk).
"""

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from torch.utils.data import DataLoader

from voxface.corpus.datasets import SpeakerCrops
from voxface.corpus.format import Utterance
from voxface.corpus.sharded import ShardedFeatures, pack_shards

FRAMES, BINS, PER_IDENTITY, BATCH = 1000, 64, 8, 64


class PerFileFeatures:
    """The baseline: utterance ``i`` read from its own .npy file on every access (memory-mapped)."""

    def __init__(self, paths: list[Path]):
        self.paths = paths

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> np.ndarray:
        return np.load(self.paths[i], mmap_mode="r")


def features_of(i: int) -> np.ndarray:
    return np.random.default_rng([7, i]).standard_normal((FRAMES, BINS), dtype=np.float32)


def evict(paths: list[Path]) -> None:
    """Drop the files' pages from the page cache (no root needed for clean pages)."""
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def samples_per_second(features, identity: np.ndarray, batches: int, workers: int) -> float:
    data = SpeakerCrops(features, identity, items_per_epoch=BATCH * (batches + 1), seed=0)
    loader = iter(DataLoader(data, batch_size=BATCH, num_workers=workers, persistent_workers=False))
    next(loader)  # worker start-up is not throughput
    start = time.perf_counter()
    n = sum(len(batch[0]) for batch in loader)
    return n / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--utterances", type=int, default=6000)
    parser.add_argument("--batches", type=int, default=150)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--tmp", default=None, help="folder for the temporary data (default: the system's)")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="voxface-bench-shards-", dir=args.tmp))
    try:
        utterances = [Utterance(f"u{i:07d}", f"id{i // PER_IDENTITY:06d}", "", 10.0) for i in range(args.utterances)]
        t = time.perf_counter()
        paths = []
        for i, u in enumerate(utterances):
            path = root / "per_file" / u.identity / f"{u.utterance}.npy"
            path.parent.mkdir(parents=True, exist_ok=True)
            np.save(path, features_of(i))
            paths.append(path)
        per_file_s = time.perf_counter() - t
        t = time.perf_counter()
        pack_shards(lambda start: (features_of(i) for i in range(start, len(utterances))), utterances,
                    root / "shards", "cmp_logmel", progress=False)
        pack_s = time.perf_counter() - t
        shard_paths = sorted((root / "shards").glob("shard-*.npy"))
        layouts = {"per-file": (PerFileFeatures(paths), paths), "sharded": (ShardedFeatures(root / "shards"), shard_paths)}
        identity = np.arange(args.utterances) // PER_IDENTITY
        gb = args.utterances * FRAMES * BINS * 4 / 1e9
        print(f"{args.utterances} utterances ({gb:.2f} GB per layout): {len(paths)} files written in {per_file_s:.1f} s; "
              f"{len(shard_paths)} shards packed in {pack_s:.1f} s")
        print(f"DataLoader: {args.workers} worker processes, batch {BATCH}, {args.batches} batches, "
              f"random utterance + 800-frame crop per item; {os.cpu_count()} CPU cores")
        print(f"{'page cache':<12}{'per-file /s':>14}{'sharded /s':>14}{'sharded : per-file':>21}")
        for cache in ("cold", "warm"):
            rates = {}
            for name, (features, files) in layouts.items():
                if cache == "cold":
                    evict(files)
                rates[name] = samples_per_second(features, identity, args.batches, args.workers)
            print(f"{cache:<12}{rates['per-file']:>14.0f}{rates['sharded']:>14.0f}"
                  f"{rates['sharded'] / rates['per-file']:>20.2f}x")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
