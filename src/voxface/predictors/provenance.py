"""What a trained model says about the voices it learned from, and the warnings that follow from it.

Every predictor carries a provenance: ``trained_on`` (a sentence for users) and ``synthetic``
(whether its training voices were synthetic). Wherever a prediction is shown (``voxface predict``'s
JSON, the web page) the same sentences are said, composed here and nowhere else:

- :func:`training_provenance`: what a method records about its training corpus;
- :func:`voice_warning`: the warning beside a 3D face (a voice unlike the training voices, or a
  model trained on synthetic ones);
- :func:`image_warning`: the warning under a 2D face image of a model trained on synthetic voices.
"""

from __future__ import annotations

from ..evaluate.in_distribution import WARN_BELOW

UNKNOWN = "unknown voices (the predictor does not say)"
"""``trained_on`` of a predictor whose file does not say."""


def training_provenance(corpus, n_identities: int) -> dict:
    """The provenance of a model trained on ``n_identities`` identities of ``corpus`` (a
    :class:`voxface.corpus.format.Corpus`): ``trained_on`` and ``synthetic``."""
    kind = "synthetic" if corpus.synthetic else "real"
    return {"trained_on": f"the {kind} voices of {n_identities} identities of corpus {corpus.root}",
            "synthetic": bool(corpus.synthetic)}


def trained_on(provenance: dict) -> str:
    """The sentence saying what the model was trained on (:data:`UNKNOWN` when it does not say)."""
    return provenance.get("trained_on", UNKNOWN)


def voice_warning(provenance: dict, score: float | None) -> str | None:
    """What to warn beside a 3D face predicted from a voice whose in-distribution score is ``score``
    (None: unknown), or None: a voice unlike every training voice (below :data:`WARN_BELOW`), else a
    model trained on synthetic voices."""
    if score is not None and score < WARN_BELOW:
        return (f"this model was trained on {trained_on(provenance)}; your voice is unlike any of them "
                f"(in-distribution score {score:.3f}, below {WARN_BELOW:g}), so the face says nothing about it: "
                "load a model trained on real speech, e.g. the CMP release (voxface import cmp-release)")
    if provenance.get("synthetic"):
        return (f"this model was trained on {trained_on(provenance)}: on a real voice its face carries no "
                "information (a model trained on real speech is needed for that, e.g. the CMP release)")
    return None


def image_warning(provenance: dict) -> str | None:
    """What to say under a 2D face image whose model was trained on synthetic voices, else None."""
    if not provenance.get("synthetic"):
        return None
    return (f"the 2D face image comes from a model trained on {provenance['trained_on']}: on a real voice "
            "it carries no information")
