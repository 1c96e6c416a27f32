"""Torch datasets over cached utterance features (the CMP training recipe: Cross-Modal Perceptionist,
Sec. 4 "Data Processing and Training", and its released code).

Items are fixed 800-frame crops; the training step then cuts the whole batch to one random length
in [300, 800] (:func:`random_batch_length`), as CMP does.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

CROP_FRAMES = 800
MIN_FRAMES = 300


def random_crop(features: np.ndarray, length: int, rng: np.random.Generator) -> np.ndarray:
    """A random window of ``length`` frames from (T, F) features, tiled first if T < length."""
    if features.shape[0] < length:
        features = np.tile(features, (int(np.ceil(length / features.shape[0])), 1))
    start = int(rng.integers(0, features.shape[0] - length + 1))
    return features[start:start + length]


def random_batch_length(batch: torch.Tensor, generator: torch.Generator | None = None,
                        low: int = MIN_FRAMES) -> torch.Tensor:
    """Cut (..., F, T) crops to one random length in [low, T] (random offset), for the whole batch."""
    t = batch.shape[-1]
    length = int(torch.randint(low, t + 1, (1,), generator=generator))
    start = int(torch.randint(0, t - length + 1, (1,), generator=generator))
    return batch[..., start:start + length]


class _UtteranceDataset(Dataset):
    """Shared bookkeeping: features per utterance, identity index per utterance, an epoch length.

    ``crop`` frames are cut from (T, F) features; with ``crop=None`` an utterance's array (e.g. a
    precomputed (D,) embedding) is returned whole.
    """

    def __init__(self, features: list[np.ndarray], identity: np.ndarray, items_per_epoch: int | None,
                 seed: int, crop: int | None):
        if len(features) != len(identity) or not features:
            raise ValueError("features and identity must be non-empty and of equal length")
        self.features, self.identity = features, np.asarray(identity)
        self.length = items_per_epoch or len(features)
        self.seed, self.crop, self.epoch = seed, crop, 0
        self.by_identity = {int(i): np.flatnonzero(self.identity == i) for i in np.unique(self.identity)}

    def __len__(self) -> int:
        return self.length

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _rng(self, index: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, self.epoch, index])

    def _crop(self, utterance: int, rng: np.random.Generator) -> np.ndarray:
        """(F, crop) float32, channels first for Conv1d; the whole array when ``crop`` is None."""
        if self.crop is None:
            return np.asarray(self.features[utterance], dtype=np.float32)
        return random_crop(self.features[utterance], self.crop, rng).T.astype(np.float32)


class SpeakerCrops(_UtteranceDataset):
    """(crop (64, 800) float32, label int) for speaker-classification pre-training.

    Args:
        features: per utterance (T_i, 64) float32.
        identity: (U,) int class label of each utterance.
    """

    def __init__(self, features, identity, items_per_epoch=None, seed=0, crop=CROP_FRAMES):
        super().__init__(features, identity, items_per_epoch, seed, crop)

    def __getitem__(self, index: int):
        rng = self._rng(index)
        u = index % len(self.features) if self.length == len(self.features) else int(rng.integers(len(self.features)))
        return torch.from_numpy(self._crop(u, rng)), int(self.identity[u])


class Triplets(_UtteranceDataset):
    """Anchor / positive / negative crops (or whole embeddings) with their identities' targets.

    The anchor is an utterance, the positive another utterance of the same identity (the same one
    when it has only one), the negative an utterance of another identity (paper Eq. 3).

    Args:
        features: per utterance (T_i, 64) float32.
        identity: (U,) int identity index of each utterance.
        targets: (N_identities, P) float32 regression target of each identity.

    Items: ``{"features": (3, 64, crop) or (3, D), "target": (3, P), "identity": (3,)}``.
    """

    def __init__(self, features, identity, targets: np.ndarray, items_per_epoch=None, seed=0, crop=CROP_FRAMES):
        super().__init__(features, identity, items_per_epoch, seed, crop)
        if len(self.by_identity) < 2:
            raise ValueError("triplets need at least two identities")
        self.targets = np.asarray(targets, dtype=np.float32)

    def __getitem__(self, index: int):
        rng = self._rng(index)
        anchor = int(rng.integers(len(self.features)))
        ident = int(self.identity[anchor])
        same = self.by_identity[ident]
        others = same[same != anchor]
        positive = int(rng.choice(others)) if len(others) else anchor
        negative = anchor
        while self.identity[negative] == ident:
            negative = int(rng.integers(len(self.features)))
        chosen = (anchor, positive, negative)
        ids = self.identity[list(chosen)]
        return {"features": torch.from_numpy(np.stack([self._crop(u, rng) for u in chosen])),
                "target": torch.from_numpy(self.targets[ids]),
                "identity": torch.from_numpy(ids.astype(np.int64))}
