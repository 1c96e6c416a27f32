"""Equal error rate, verification EER over embeddings, and the Resemblyzer wrapper."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.interpolate import interp1d
from scipy.optimize import brentq
from sklearn.metrics import roc_curve

from voxface.errors import VoxfaceError
from voxface.evaluate.speaker import equal_error_rate, verification_eer
from voxface.paths import shared_data_dir


@pytest.mark.parametrize(
    "scores, labels, eer, threshold",
    [
        # Hand-computed ROC points (FAR, FRR): (0, 1), (0, 2/3), (0, 1/3), (1/3, 1/3) -> crossing at 0.7.
        ([0.9, 0.8, 0.7, 0.6, 0.5, 0.4], [1, 1, 0, 1, 0, 0], 1 / 3, 0.7),
        # (0, 2/3) at 0.9, (1/2, 2/3) at 0.7, (1/2, 1/3) at 0.6: FRR - FAR goes 1/6 -> -1/6, halfway.
        ([0.9, 0.7, 0.6, 0.4, 0.3], [1, 0, 1, 1, 0], 0.5, 0.65),
        ([0.9, 0.8, 0.3, 0.2], [1, 1, 0, 0], 0.0, 0.8),  # perfectly separated
        ([0.1, 0.2, 0.8, 0.9], [1, 1, 0, 0], 1.0, 0.8),  # reversed: FAR = FRR = 1 first at 0.8
        ([0.5, 0.5, 0.5, 0.5], [1, 0, 1, 0], 0.5, 0.5),  # all tied
    ],
)
def test_equal_error_rate_hand_computed(scores, labels, eer, threshold):
    got_eer, got_threshold = equal_error_rate(np.array(scores), np.array(labels, dtype=bool))
    assert got_eer == pytest.approx(eer, abs=1e-12)
    assert got_threshold == pytest.approx(threshold, abs=1e-12)


def _eer_by_sklearn(scores: np.ndarray, labels: np.ndarray) -> float:
    """The usual speaker-verification recipe: root of 1 - x - TPR(x) on the interpolated ROC."""
    fpr, tpr, _ = roc_curve(labels, scores, drop_intermediate=False)
    return brentq(lambda x: 1.0 - x - interp1d(fpr, tpr)(x), 0.0, 1.0)


@pytest.mark.parametrize("seed", range(6))
def test_equal_error_rate_matches_sklearn_roc(seed):
    rng = np.random.default_rng(seed)
    labels = rng.random(400) < 0.3
    scores = rng.normal(size=400) + 1.2 * labels
    if seed % 2:  # ties
        scores = np.round(scores, 1)
    eer, threshold = equal_error_rate(scores, labels)
    assert eer == pytest.approx(_eer_by_sklearn(scores, labels), abs=1e-9)
    far, frr = np.mean(scores[~labels] >= threshold), np.mean(scores[labels] < threshold)
    assert min(far, frr) - 0.02 <= eer <= max(far, frr) + 0.02


def test_equal_error_rate_is_invariant_to_monotone_score_maps():
    rng = np.random.default_rng(7)
    labels = rng.random(300) < 0.5
    scores = rng.normal(size=300) + labels
    assert equal_error_rate(np.exp(3 * scores), labels)[0] == pytest.approx(equal_error_rate(scores, labels)[0])


@pytest.mark.parametrize(
    "scores, labels",
    [([0.1, 0.2], [True, True]), ([0.1, 0.2], [True]), ([np.nan, 0.2], [True, False])],
)
def test_equal_error_rate_rejects_bad_input(scores, labels):
    with pytest.raises(VoxfaceError):
        equal_error_rate(np.array(scores), np.array(labels))


def test_verification_eer_matches_brute_force_pairs():
    rng = np.random.default_rng(3)
    ids = np.repeat(np.arange(8), 4)
    centres = rng.normal(size=(8, 16))
    emb = centres[ids] + 0.9 * rng.normal(size=(32, 16))
    scores, labels = [], []
    for i in range(32):
        for j in range(i + 1, 32):
            scores.append(emb[i] @ emb[j] / np.linalg.norm(emb[i]) / np.linalg.norm(emb[j]))
            labels.append(ids[i] == ids[j])
    expected = equal_error_rate(np.array(scores), np.array(labels))[0]
    assert verification_eer(emb, ids) == pytest.approx(expected)
    assert verification_eer(5.0 * emb, ids.astype(str)) == pytest.approx(expected)  # scale, label type


def test_verification_eer_of_separated_clusters_is_zero():
    ids = np.repeat(np.arange(5), 3)
    emb = np.eye(5)[ids] + 0.01 * np.random.default_rng(0).normal(size=(15, 5))
    assert verification_eer(emb, ids) == 0.0


def test_verification_eer_rejects_bad_input():
    with pytest.raises(VoxfaceError):
        verification_eer(np.ones((4, 3)), np.arange(3))
    with pytest.raises(VoxfaceError):
        verification_eer(np.zeros((4, 3)), np.array([0, 0, 1, 1]))
    with pytest.raises(VoxfaceError):  # no same-speaker pair
        verification_eer(np.eye(4), np.arange(4))


@pytest.fixture(scope="module")
def encoder():
    from voxface.audio.speaker_encoder import ResemblyzerEncoder

    return ResemblyzerEncoder()


def test_resemblyzer_embeddings_are_unit_norm(encoder, capsys):
    rng = np.random.default_rng(0)
    t = np.arange(16000) / 16000
    tone = (0.3 * np.sin(2 * np.pi * 150 * t) * (1 + np.sin(2 * np.pi * 3 * t))).astype(np.float32)
    emb = encoder.embed([tone, 0.05 * rng.standard_normal(24000).astype(np.float32)])
    assert emb.shape == (2, 256) and emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    assert np.all(np.isfinite(emb))
    assert capsys.readouterr().out == ""  # Resemblyzer's load message is silenced


@pytest.mark.parametrize("wave", [np.zeros(16000, np.float32), np.ones(100, np.float32), np.ones((2, 16000))])
def test_resemblyzer_rejects_unusable_waves(encoder, wave):
    with pytest.raises(VoxfaceError):
        encoder.embed([wave])


@pytest.mark.shared_data
def test_resemblyzer_separates_real_fsdd_speakers(encoder):
    root = shared_data_dir() / "fsdd"
    if not (root / "speakers.json").is_file():
        pytest.skip(f"no Free Spoken Digit Dataset at {root} (set VOXFACE_SHARED_DATA)")
    import librosa

    waves, ids = [], []
    for speaker in sorted(json.loads((root / "speakers.json").read_text()))[:3]:
        for path in sorted((root / "recordings").glob(f"*_{speaker}_*.wav"))[:24:4]:
            waves.append(librosa.load(path, sr=16000)[0])
            ids.append(speaker)
    assert verification_eer(encoder.embed(waves), np.array(ids)) < 0.3
