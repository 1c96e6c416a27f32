"""What the experiments read from a corpus: per-split utterances, their features, identity targets."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..corpus.features import ensure_features, load_features
from ..corpus.format import Corpus, Utterance
from ..errors import VoxfaceError


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
    from ..corpus.sharded import ShardedFeatures

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
