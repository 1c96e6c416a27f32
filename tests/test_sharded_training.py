"""Feature shards: packing equals the per-utterance cache, resumes after a crash, and feeds the datasets."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from voxface.corpus.datasets import Triplets
from voxface.corpus.features import ensure_features, load_features
from voxface.corpus.format import Corpus
from voxface.corpus.sharded import ShardedFeatures, pack_corpus, pack_shards, shard_name
from voxface.errors import VoxfaceError


@pytest.fixture(scope="module")
def corpus_features(tiny_corpus_dir):
    corpus = Corpus(tiny_corpus_dir)
    utterances = corpus.utterances
    return corpus, utterances, load_features(ensure_features(corpus, utterances, progress=False))


def test_shards_hold_exactly_the_per_utterance_features(corpus_features, tmp_path):
    corpus, utterances, features = corpus_features
    shard_mb = 3 * features[0].nbytes / 2**20  # about three utterances per shard
    shards = ShardedFeatures(pack_corpus(corpus, tmp_path / "shards", shard_mb=shard_mb, progress=False))
    assert len(shards) == len(utterances)
    assert 4 <= shards.meta["shards"] <= len(utterances) // 2
    assert len(list(tmp_path.joinpath("shards").glob("shard-*.npy"))) == shards.meta["shards"]
    for i, (u, f) in enumerate(zip(utterances, features)):
        assert shards.utterance_ids[i] == u.utterance and shards.identity_ids[i] == u.identity
        np.testing.assert_array_equal(shards[i], f)


def test_an_interrupted_pack_resumes_at_the_first_unfinished_shard(corpus_features, tmp_path):
    _, utterances, features = corpus_features
    starts = []

    def crashing(start):
        starts.append(start)
        for i, f in enumerate(features[start:], start):
            if i == 7:
                raise KeyboardInterrupt
            yield f

    with pytest.raises(KeyboardInterrupt):
        pack_shards(crashing, utterances, tmp_path, "cmp_logmel", shard_mb=2 * features[0].nbytes / 2**20,
                    progress=False)
    assert json.loads((tmp_path / "progress.json").read_text())["packed_utterances"] == 6
    pack_shards(lambda start: (starts.append(start), iter(features[start:]))[1], utterances, tmp_path,
                "cmp_logmel", shard_mb=2 * features[0].nbytes / 2**20, progress=False)
    assert starts == [0, 6]
    shards = ShardedFeatures(tmp_path)
    assert all(np.array_equal(shards[i], f) for i, f in enumerate(features))
    with pytest.raises(VoxfaceError, match="other settings"):
        pack_shards(lambda start: iter(features), utterances, tmp_path, "cmp_logmel", shard_mb=1.0)


def test_sharded_triplets_equal_in_memory_triplets_with_worker_processes(corpus_features, tmp_path):
    corpus, utterances, features = corpus_features
    shards = ShardedFeatures(pack_corpus(corpus, tmp_path, shard_mb=1.0, progress=False))
    index = {i: k for k, i in enumerate(sorted({u.identity for u in utterances}))}
    identity = np.array([index[i] for i in shards.identity_ids])
    targets = np.random.default_rng(0).normal(size=(len(index), 5))
    in_memory = Triplets(features, identity, targets, items_per_epoch=16, seed=1)
    sharded = Triplets(shards, identity, targets, items_per_epoch=16, seed=1)
    a = next(iter(DataLoader(in_memory, batch_size=16)))
    b = next(iter(DataLoader(sharded, batch_size=16, num_workers=2)))
    assert torch.equal(a["features"], b["features"]) and torch.equal(a["identity"], b["identity"])


def test_an_unfinished_folder_is_refused(tmp_path):
    (tmp_path / shard_name(0)).write_bytes(b"")
    with pytest.raises(VoxfaceError, match="voxface shard"):
        ShardedFeatures(tmp_path)


def test_shard_command_packs_a_corpus_and_refuses_a_missing_one(tiny_corpus_dir, tmp_path, capsys):
    from voxface.cli import main

    assert main(["shard", str(tiny_corpus_dir), "--out", str(tmp_path / "s"), "--shard-mb", "2", "--quiet"]) == 0
    assert f"{len(Corpus(tiny_corpus_dir).utterances)} utterances of cmp_logmel" in capsys.readouterr().out
    assert main(["shard", str(tmp_path / "nothing"), "--out", str(tmp_path / "t")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "nothing" in err
