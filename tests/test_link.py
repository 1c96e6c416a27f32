"""The voice-geometry link: link_strength is the share of linked voice variance due to geometry."""

from __future__ import annotations

import numpy as np
import pytest

from voxface.audio.synth import FIELD_NAMES
from voxface.corpus.link import LINK_WEIGHTS, VoiceFaceLink, sample_shape
from voxface.corpus.synthetic import SynthConfig, plan_identities
from voxface.evaluate.headroom import IdentitySet, headroom
from voxface.face3d.loading import load_morphable_model


@pytest.fixture(scope="module")
def model():
    return load_morphable_model("builtin")


@pytest.mark.parametrize("strength", [0.0, 0.5, 1.0])
def test_linked_parameters_correlate_with_geometry_as_sqrt_strength(model, strength):
    link = VoiceFaceLink.calibrate(model, strength, seed=1)
    rng = np.random.default_rng(5)
    scores, values = {p: [] for p in LINK_WEIGHTS}, {p: [] for p in LINK_WEIGHTS}
    for _ in range(400):
        vertices = model.reconstruct(sample_shape(model, rng, "f"))
        voice = link.voice_for_face(model, vertices, "f", rng)
        for p, s in link.geometry_scores(model, vertices, "f").items():
            scores[p].append(s)
            values[p].append(getattr(voice, p))
    for p in LINK_WEIGHTS:
        r = np.corrcoef(scores[p], values[p])[0, 1]
        assert abs(r - np.sqrt(strength)) < 0.12, (p, r)
        # scores are standardised within the gender by calibration
        assert abs(np.std(scores[p]) - 1.0) < 0.15 and abs(np.mean(scores[p])) < 0.15


def test_link_strength_out_of_range_is_refused(model):
    from voxface.errors import VoxfaceError

    with pytest.raises(VoxfaceError, match="link_strength"):
        VoiceFaceLink.calibrate(model, 1.5)


def _identity_set(jobs) -> IdentitySet:
    return IdentitySet(np.stack([j.shape for j in jobs]), np.array([j.gender for j in jobs]),
                       np.stack([j.voice.to_vector() for j in jobs]))


def test_voice_ceiling_beats_mean_face_only_when_linked(model):
    """Many identities (no rendering needed): the ridge on true voice parameters lowers ARE with a
    strong link, and with no link does no better than knowing the gender."""
    results = {}
    for strength in (0.0, 0.8):
        jobs = plan_identities(model, SynthConfig(identities=600, link_strength=strength, seed=2))
        train = [j for j in jobs if j.name[0] not in "ABCDE"]
        test = [j for j in jobs if j.name[0] in "ABCDE"]
        results[strength] = headroom(model, _identity_set(train), _identity_set(test))
    assert len(FIELD_NAMES) == _identity_set(jobs).voice.shape[1]
    assert results[0.8]["ceiling_gain_vs_mean_face"] < -0.25
    # with no link the voice tells only the gender (through F0 and VTL): no better than the gender oracle
    assert results[0.0]["ceiling_gain_vs_mean_face"] > results[0.0]["gender_gain_vs_mean_face"] - 0.05
