"""How much face geometry a synthetic corpus's voices carry: oracles and the voice ceiling, scored by ARE.

This sets the range the learned methods compete in: from the mean-face oracle (no information) to
the ridge on the true voice-production parameters (all the linear information the link carries).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..corpus.format import Corpus
from ..face3d import MorphableModel
from .geometry import absolute_ratio_error, gain
from .oracles import gender_oracle, mean_face_oracle, voice_parameter_ceiling


@dataclass(frozen=True)
class IdentitySet:
    """Identity-level ground truth of one split.

    Attributes:
        shapes: (N, K) standardised reference shape coefficients.
        genders: (N,) "m" / "f".
        voice: (N, P) true voice-production parameters.
    """

    shapes: np.ndarray
    genders: np.ndarray
    voice: np.ndarray


def shape_predictions_are(model: MorphableModel, reference_shapes: np.ndarray, predicted_shapes: np.ndarray) -> dict:
    """ARE (per ratio and mean) of one predicted shape per identity against its reference.

    Args:
        reference_shapes, predicted_shapes: (M, K) standardised coefficients, same identity order.
    """
    ref = model.reconstruct(reference_shapes)
    pred = model.reconstruct(predicted_shapes)[:, None]
    return absolute_ratio_error(pred, ref, model.measurements).as_dict()


def headroom(model: MorphableModel, train: IdentitySet, test: IdentitySet) -> dict:
    """ARE on ``test`` of the mean-face and gender oracles and of the voice ceiling fitted on ``train``.

    Returns:
        {"mean_face": {...}, "gender": {...}, "voice_ceiling": {...}, "gender_gain_vs_mean_face": f,
         "ceiling_gain_vs_mean_face": f, "n_train": N, "n_test": M}; gains are relative changes
        (negative = lower error than the mean face).
    """
    predictions = {
        "mean_face": mean_face_oracle(train.shapes, len(test.shapes)),
        "gender": gender_oracle(train.shapes, train.genders, test.genders),
        "voice_ceiling": voice_parameter_ceiling(train.voice, train.shapes, test.voice),
    }
    result: dict = {name: shape_predictions_are(model, test.shapes, p) for name, p in predictions.items()}
    base = result["mean_face"]["mean"]
    result["gender_gain_vs_mean_face"] = gain(result["gender"]["mean"], base)
    result["ceiling_gain_vs_mean_face"] = gain(result["voice_ceiling"]["mean"], base)
    result["n_train"], result["n_test"] = len(train.shapes), len(test.shapes)
    return result


def corpus_identity_set(corpus: Corpus, split: str) -> IdentitySet:
    """The :class:`IdentitySet` of one split of a synthetic corpus."""
    ids = corpus.identity_ids(split)
    gender = {i.identity: i.gender for i in corpus.identities}
    voice_ids, voice, _ = corpus.voice_params
    voice_of = dict(zip(voice_ids, voice))
    return IdentitySet(corpus.reference_shapes(ids), np.array([gender[i] for i in ids]),
                       np.stack([voice_of[i] for i in ids]))


def corpus_headroom(corpus: Corpus) -> dict:
    """:func:`headroom` of a synthetic corpus: train on its F–Z identities, score its A–E ones."""
    return headroom(corpus.model, corpus_identity_set(corpus, "train"), corpus_identity_set(corpus, "test"))
