"""What training methods read from a corpus: per-split utterances with their features, the identity
split, embedding banks of a frozen encoder, and face photos."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import VoxfaceError
from .features import ensure_features, load_features
from .format import Corpus, Face, Utterance


@dataclass
class UtteranceSet:
    """Utterances of some identities with their cached features.

    Attributes:
        identity_ids: the identities, in a fixed order.
        utterances: the utterances, grouped by identity in that order.
        identity_index: (U,) int index into ``identity_ids`` of each utterance.
        features: per utterance, (T, 64) log-mel or (256,) embedding float32.
    """

    identity_ids: list[str]
    utterances: list[Utterance]
    identity_index: np.ndarray
    features: list[np.ndarray]

    def subset(self, mask: np.ndarray) -> "UtteranceSet":
        keep = np.flatnonzero(mask)
        return UtteranceSet(self.identity_ids, [self.utterances[i] for i in keep], self.identity_index[keep],
                            [self.features[i] for i in keep])


def utterance_set(corpus: Corpus, identity_ids: list[str], kind: str, workers: int = 1,
                  per_identity: int | None = None, progress: bool = True,
                  feature_shards: str | None = None) -> UtteranceSet:
    """The utterances of ``identity_ids`` (the first ``per_identity`` of each) with their features.

    Features come from the per-utterance cache (computed if missing), or, with ``feature_shards``,
    as memory-mapped views into the shard files that `voxface shard` packed (one open file per
    shard instead of one per utterance, for large corpora).
    """
    index = {i: k for k, i in enumerate(identity_ids)}
    chosen, counts = [], {i: 0 for i in identity_ids}
    for u in corpus.utterances:
        if u.identity in index and (per_identity is None or counts[u.identity] < per_identity):
            chosen.append(u)
            counts[u.identity] += 1
    chosen.sort(key=lambda u: index[u.identity])
    if feature_shards:
        features = _sharded_features(feature_shards, chosen, kind)
    else:
        features = load_features(ensure_features(corpus, chosen, kind, workers=workers, progress=progress))
    return UtteranceSet(identity_ids, chosen, np.array([index[u.identity] for u in chosen]), features)


def _sharded_features(folder: str, utterances: list[Utterance], kind: str) -> list[np.ndarray]:
    from .sharded import ShardedFeatures

    shards = ShardedFeatures(folder)
    if shards.meta.get("kind") != kind:
        raise VoxfaceError(f"feature shards {folder} hold {shards.meta.get('kind')!r} features, this run needs "
                           f"{kind!r}; pack them with `voxface shard --kind {kind}`")
    row = {str(u): i for i, u in enumerate(shards.utterance_ids)}
    missing = [u.utterance for u in utterances if u.utterance not in row]
    if missing:
        raise VoxfaceError(f"feature shards {folder} lack {len(missing)} utterance(s) of the corpus, e.g. "
                           f"{missing[:3]}; re-pack them with `voxface shard`")
    return [shards[row[u.utterance]] for u in utterances]


def held_out_mask(identity_index: np.ndarray, per_identity: int) -> np.ndarray:
    """(U,) bool marking the last ``per_identity`` utterances of each identity (only if it keeps one)."""
    mask = np.zeros(len(identity_index), bool)
    for i in np.unique(identity_index):
        rows = np.flatnonzero(identity_index == i)
        if len(rows) > per_identity:
            mask[rows[-per_identity:]] = True
    return mask


def split_identities(identity_ids: list[str], val_fraction: float, seed: int, corpus: str) -> tuple[list[str], list[str]]:
    """(fit, val) identities: ``val_fraction`` of ``identity_ids`` (at least 2) held out for validation,
    drawn with ``seed``; VoxfaceError naming ``corpus`` when fewer than 2 would be left to fit on."""
    n_val = max(2, int(round(val_fraction * len(identity_ids))))
    if len(identity_ids) < n_val + 2:
        raise VoxfaceError(f"corpus {corpus} has {len(identity_ids)} training identities (names F–Z); "
                           f"at least {n_val + 2} are needed to hold {n_val} out for validation")
    val = sorted(np.random.default_rng(seed).choice(identity_ids, n_val, replace=False).tolist())
    return [i for i in identity_ids if i not in set(val)], val


def embedding_bank(encoder, data: UtteranceSet, per_utterance: int, seed: int,
                   frames: tuple[int, int] | None = None) -> UtteranceSet:
    """Each utterance becomes ``per_utterance`` pseudo-utterances: the frozen ``encoder``'s (D,)
    embeddings of random crops of its (T, 64) log-mel (features of the result: (D,) arrays).

    The crops of one utterance share one random length in ``frames`` (shortest, longest; default
    [300, 800] frames, as a CMP batch does).
    """
    import torch

    from .datasets import CROP_FRAMES, MIN_FRAMES, random_crop

    low, high = frames or (MIN_FRAMES, CROP_FRAMES)

    rng = np.random.default_rng([seed, 17])
    features, identity = [], []
    with torch.no_grad():
        for feats, ident in zip(data.features, data.identity_index):
            length = int(rng.integers(low, high + 1))
            crops = np.stack([random_crop(feats, length, rng).T for _ in range(per_utterance)])
            features += list(encoder(torch.from_numpy(crops)).numpy())
            identity += [ident] * per_utterance
    return UtteranceSet(data.identity_ids, [], np.array(identity), features)


def photos(corpus: Corpus, faces: list[Face]) -> np.ndarray:
    """(N, 64, 64, 3) uint8 RGB of the faces' 64×64 crops."""
    from ..vision.images import read_rgb

    return np.stack([read_rgb(corpus.path(f.image_64)) for f in faces])


def identity_photos(corpus: Corpus, identity_ids: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(M, 64, 64, 3) uint8 photos of ``identity_ids`` and (M,) int index of each one's identity in that list."""
    index = {i: k for k, i in enumerate(identity_ids)}
    faces = [f for f in corpus.faces if f.identity in index]
    if not faces:
        raise VoxfaceError(f"corpus {corpus.root} has no face images of these identities; the method needs "
                           "faces.csv entries (a synthetic corpus gets them with `voxface synth --out CORPUS --images 40`)")
    return photos(corpus, faces), np.array([index[f.identity] for f in faces])


def target_faces(corpus: Corpus, seed: int) -> dict[str, int]:
    """Each identity's training target of the 2D generators: one face (index into corpus.faces) chosen
    at random with ``seed`` (the biometric-matching paper pairs every voice with one random image of its
    class)."""
    rows: dict[str, list[int]] = {}
    for n, f in enumerate(corpus.faces):
        rows.setdefault(f.identity, []).append(n)
    rng = np.random.default_rng(seed)
    return {ident: int(rng.choice(r)) for ident, r in sorted(rows.items())}
