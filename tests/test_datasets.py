"""Training datasets: crops, triplet structure, determinism."""

from __future__ import annotations

import numpy as np
import torch

from voxface.corpus.datasets import SpeakerCrops, Triplets, random_batch_length, random_crop


def _features(n_utt=6, frames=(900, 250, 1200, 1000, 400, 1500)):
    rng = np.random.default_rng(0)
    return [rng.normal(size=(frames[i % len(frames)], 64)).astype(np.float32) for i in range(n_utt)]


def test_random_crop_tiles_short_input():
    x = np.arange(10 * 2, dtype=np.float32).reshape(10, 2)
    crop = random_crop(x, 25, np.random.default_rng(0))
    assert crop.shape == (25, 2)
    # every row is a row of x, in cyclic order
    rows = [int(r[0]) // 2 for r in crop]
    assert all((b - a) % 10 == 1 for a, b in zip(rows, rows[1:]))


def test_batch_length_is_shared_and_in_range():
    g = torch.Generator().manual_seed(0)
    lengths = {random_batch_length(torch.zeros(4, 3, 64, 800), g).shape[-1] for _ in range(50)}
    assert min(lengths) >= 300 and max(lengths) <= 800 and len(lengths) > 10


def test_triplets_have_the_right_identities():
    feats = _features()
    identity = np.array([0, 0, 1, 1, 2, 2])
    targets = np.arange(3 * 4, dtype=np.float32).reshape(3, 4)
    ds = Triplets(feats, identity, targets, items_per_epoch=40, seed=1)
    for i in range(40):
        item = ds[i]
        a, p, n = item["identity"].tolist()
        assert a == p and n != a
        assert item["features"].shape == (3, 64, 800)
        torch.testing.assert_close(item["target"], torch.from_numpy(targets[[a, p, n]]))


def test_triplets_are_deterministic_per_epoch():
    feats, identity = _features(), np.array([0, 0, 1, 1, 2, 2])
    targets = np.zeros((3, 2), np.float32)
    a, b = Triplets(feats, identity, targets, 8, seed=3), Triplets(feats, identity, targets, 8, seed=3)
    torch.testing.assert_close(a[5]["features"], b[5]["features"])
    b.set_epoch(1)
    assert not torch.equal(a[5]["features"], b[5]["features"])


def test_embedding_items_are_returned_whole():
    emb = [np.full(5, i, np.float32) for i in range(4)]
    ds = Triplets(emb, np.array([0, 0, 1, 1]), np.zeros((2, 1), np.float32), 10, crop=None)
    assert ds[0]["features"].shape == (3, 5)


def test_speaker_crops_cover_every_utterance_once_per_epoch():
    feats, identity = _features(), np.array([0, 0, 1, 1, 2, 2])
    ds = SpeakerCrops(feats, identity)
    assert len(ds) == 6 and [ds[i][1] for i in range(6)] == identity.tolist()


def test_trainer_advances_the_dataset_epoch(tmp_path):
    """make_trainer installs DatasetEpoch, which moves the training dataset to the starting epoch."""
    from types import SimpleNamespace

    from torch.utils.data import DataLoader

    from voxface.runs.trainer import DatasetEpoch, make_trainer

    trainer = make_trainer(tmp_path, max_steps=1, val_every=1, progress=False)
    callback = next(c for c in trainer.callbacks if isinstance(c, DatasetEpoch))
    ds = SpeakerCrops(_features(), np.array([0, 0, 1, 1, 2, 2]))
    before = ds[0][0].clone()
    callback.on_train_epoch_start(SimpleNamespace(train_dataloader=DataLoader(ds), current_epoch=3), None)
    assert ds.epoch == 3 and not torch.equal(before, ds[0][0])


def test_embedding_bank_crops_have_the_lengths_asked_for():
    from voxface.corpus.data import UtteranceSet, embedding_bank

    lengths = []

    def encoder(crops: torch.Tensor) -> torch.Tensor:  # (B, 64, T) -> (B, 2), recording T
        lengths.append(crops.shape[-1])
        return crops.mean(dim=(1, 2))[:, None].repeat(1, 2)

    data = UtteranceSet(["a", "b"], [], np.array([0, 0, 1]), _features(3, (900, 250, 1200)))
    bank = embedding_bank(encoder, data, 4, seed=0, frames=(100, 120))
    assert len(bank.features) == 12 and bank.features[0].shape == (2,)
    assert all(100 <= n <= 120 for n in lengths) and list(bank.identity_index) == [0] * 8 + [1] * 4
    embedding_bank(encoder, data, 1, seed=0)
    assert all(300 <= n <= 800 for n in lengths[3:])  # CMP's crop lengths by default
