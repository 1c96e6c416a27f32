"""The in-distribution score (evaluate/in_distribution.py) against closed forms and an independent computation."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import mahalanobis
from sklearn.covariance import LedoitWolf

from voxface.evaluate.in_distribution import WARN_BELOW, VoiceReference, in_distribution_report


def gaussian_voices(n_groups=40, per_group=10, dim=8, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n_groups * per_group, dim)), np.repeat(np.arange(n_groups), per_group)


def test_distance_is_the_mahalanobis_distance_of_the_ledoit_wolf_covariance():
    x, groups = gaussian_voices()
    reference = VoiceReference.fit(x, groups, "test", "gaussian")
    lw = LedoitWolf().fit(x)
    probe = np.random.default_rng(1).normal(size=(5, 8))
    expected = [mahalanobis(p, lw.location_, np.linalg.inv(lw.covariance_)) ** 2 for p in probe]
    np.testing.assert_allclose(reference.distances(probe), expected, rtol=1e-8)


def test_new_voices_of_the_same_population_score_about_uniformly():
    x, groups = gaussian_voices(n_groups=100, per_group=10)
    reference = VoiceReference.fit(x, groups, "test", "gaussian")
    new, _ = gaussian_voices(n_groups=100, per_group=10, seed=7)
    scores = reference.scores(new)
    assert abs(scores.mean() - 0.5) < 0.05
    assert abs(np.mean(scores < 0.1) - 0.1) < 0.03
    assert np.mean(scores < WARN_BELOW) < 0.03


def test_far_voices_score_zero_and_the_calibration_is_out_of_fold():
    x, groups = gaussian_voices()
    reference = VoiceReference.fit(x, groups, "test", "gaussian")
    assert reference.scores(np.full((1, 8), 10.0))[0] == 0.0
    in_sample = reference.distances(x)
    assert np.median(reference.calibration) > np.median(in_sample)  # held-out identities fall farther
    assert np.all(np.diff(reference.calibration) >= 0) and len(reference.calibration) == len(x)


def test_scores_count_ties_as_at_least_as_far():
    reference = VoiceReference("d", np.zeros(1), np.full((1, 1), 2.0), np.array([1.0, 2.0, 2.0, 3.0]), "toy")
    np.testing.assert_array_equal(reference.scores(np.array([[0.0], [1.0], [1.5]])), [1.0, 0.75, 0.0])


def test_saved_reference_round_trips_through_a_weights_only_load(tmp_path):
    import torch

    x, groups = gaussian_voices()
    reference = VoiceReference.fit(x, groups, "test", "gaussian")
    torch.save({"reference": reference.to_saved()}, tmp_path / "r.pt")
    loaded = VoiceReference.from_saved(torch.load(tmp_path / "r.pt", weights_only=True)["reference"])
    np.testing.assert_array_equal(loaded.scores(x[:20]), reference.scores(x[:20]))
    assert loaded.source == "gaussian" and VoiceReference.from_saved(None) is None


def test_one_identity_is_not_enough_and_the_report_counts_flags():
    with pytest.raises(ValueError, match="at least 2 identities"):
        VoiceReference.fit(np.zeros((5, 2)), np.zeros(5), "d", "s")
    report = in_distribution_report(np.array([0.0, 0.005, 0.5, 0.9]))
    assert report["flagged_share"] == 0.5 and report["n"] == 4 and report["median"] == pytest.approx(0.2525)
