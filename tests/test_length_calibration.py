"""How sure, as speech accumulates: the per-length scale of a head's spread, fitted on held-out voices."""

from __future__ import annotations

import numpy as np
import pytest

from voxface.corpus.format import Corpus
from voxface.errors import VoxfaceError
from voxface.evaluate.length_calibration import LengthCalibration, crops_of_length
from voxface.evaluate.uncertainty import CoefficientDistribution, coverage
from voxface.predictors.voice_to_3d import VoiceTo3D
from voxface.methods.supervised import validation_speech


def _distribution(rng, n=4000, k=6, rank=2) -> CoefficientDistribution:
    return CoefficientDistribution(rng.normal(size=(n, k)), rng.uniform(0.2, 1.5, size=(n, k)),
                                   0.4 * rng.normal(size=(n, k, rank)))


def _held_out(rng, too_narrow: dict[float, float]) -> dict:
    """Each length's head distribution and truths whose errors are ``too_narrow[L]`` times wider."""
    predicted = {}
    for seconds, factor in too_narrow.items():
        d = _distribution(rng)
        predicted[seconds] = d, d.mean + factor * np.sqrt(d.marginal_variance) * rng.standard_normal(d.mean.shape)
    return predicted


def test_the_fitted_scales_make_each_lengths_held_out_errors_calibrated_for_a_head_calibrated_on_long_speech():
    rng = np.random.default_rng(0)
    too_narrow = {1.0: 2.5, 2.0: 1.8, 4.0: 1.2, 8.0: 1.0}  # how much wider the errors are than the head says
    predicted = _held_out(rng, too_narrow)
    calibration = LengthCalibration.fit(predicted)
    np.testing.assert_allclose(calibration.held_out, list(too_narrow.values()), rtol=0.03)
    assert calibration.scale[-1] == 1.0
    assert calibration.voices.tolist() == [4000] * 4
    for seconds, (d, truth) in predicted.items():
        z2 = np.square(truth - d.mean) / d.marginal_variance  # the closed form, written out again
        assert calibration.held_out[list(too_narrow).index(seconds)] == pytest.approx(np.sqrt(z2.mean()), rel=1e-12)
        calibrated = calibration.apply(d, np.full(len(truth), seconds))
        if too_narrow[seconds] > 1.5:
            assert coverage(truth, d, 0.9) < 0.8  # the head alone is over-confident there
        assert coverage(truth, calibrated, 0.9) == pytest.approx(0.9, abs=0.02)
        assert coverage(truth, calibrated, 0.5) == pytest.approx(0.5, abs=0.03)


def test_only_the_trend_is_kept_so_a_level_off_on_every_length_leaves_the_heads_spread():
    """The few validation identities' level does not carry to new voices (docs/serve.md): a head that is
    uniformly 1.3x too narrow on them, at every length, keeps its own spread."""
    calibration = LengthCalibration.fit(_held_out(np.random.default_rng(2), {1.0: 1.3, 2.0: 1.3, 4.0: 1.3}))
    np.testing.assert_allclose(calibration.held_out, 1.3, rtol=0.03)
    np.testing.assert_allclose(calibration.scale, 1.0, atol=0.03)
    assert calibration.scale[-1] == 1.0


def test_the_scale_is_interpolated_in_log_seconds_and_kept_beyond_the_fitted_lengths():
    calibration = LengthCalibration(np.array([1.0, 2.0, 4.0, 8.0]), np.array([4.0, 3.0, 2.0, 1.0]), np.ones(4, int))
    np.testing.assert_allclose(calibration.at(np.array([0.25, 1.0, np.sqrt(2), 2.0, 4 * np.sqrt(2), 60.0])),
                               [4.0, 4.0, 3.5, 3.0, 1.5, 1.0])


def test_applying_a_scale_multiplies_the_covariance_by_its_square():
    rng = np.random.default_rng(1)
    d = _distribution(rng, n=3)
    calibration = LengthCalibration(np.array([1.0, 8.0]), np.array([3.0, 1.0]), np.ones(2, int))
    seconds = np.array([1.0, np.sqrt(8.0), 30.0])
    scaled = calibration.apply(d, seconds)
    factors = np.array([3.0, 2.0, 1.0])
    np.testing.assert_allclose(scaled.covariance(), d.covariance() * factors[:, None, None] ** 2)
    np.testing.assert_array_equal(scaled.mean, d.mean)


def test_a_saved_calibration_reads_back_and_a_damaged_one_is_refused():
    calibration = LengthCalibration(np.array([1.0, 2.0]), np.array([1.87, 1.1]), np.array([40, 32]))
    again = LengthCalibration.from_saved(calibration.to_saved())
    for name in ("seconds", "scale", "voices", "held_out"):
        np.testing.assert_array_equal(getattr(again, name), getattr(calibration, name))
    assert LengthCalibration.from_saved(None) is None
    for damaged in ({"seconds": [2.0, 1.0], "held_out": [1.0, 1.0], "voices": [1, 1]},
                    {"seconds": [1.0, 2.0], "held_out": [1.0, float("nan")], "voices": [1, 1]},
                    {"seconds": [1.0, 2.0], "held_out": [1.0, -1.0], "voices": [1, 1]},
                    {"seconds": [1.0, 2.0], "held_out": [1.0, 0.0], "voices": [1, 1]},
                    {"seconds": [1.0, 2.0], "held_out": [1.0], "voices": [1, 1]},
                    {"seconds": [], "held_out": [], "voices": []}):
        with pytest.raises(ValueError):
            LengthCalibration.from_saved(damaged)


def test_windows_come_only_from_utterances_long_enough():
    speech = [np.zeros(24000), np.ones(67200), 2 * np.ones(14400)]  # 1.5 s, 4.2 s, 0.9 s at 16 kHz
    windows, source = crops_of_length(speech, 2.0, 3, np.random.default_rng(0))
    assert source.tolist() == [1, 1, 1] and all(w.shape == (32000,) and (w == 1).all() for w in windows)
    assert crops_of_length(speech, 8.0, 3, np.random.default_rng(0))[0] == []


def test_a_predictor_with_a_calibration_scales_its_spread_by_the_speech_it_heard(
        gaussian_predictor_file, tiny_corpus_dir, tmp_path):
    predictor = VoiceTo3D.load(gaussian_predictor_file)
    corpus = Corpus(tiny_corpus_dir)
    speech_of, truths = validation_speech(corpus, corpus.identity_ids())
    longest = max(speech_of, key=len)
    speech = longest[:8000]  # half a second: the shortest fitted length
    before = predictor.predict(speech).uncertainty
    plain = before.coefficient_std
    assert before.length_scale is None
    assert len(longest) >= 16000  # at least the longest fitted length
    long_plain = predictor.predict(longest).uncertainty.coefficient_std

    calibration = predictor.fit_length_calibration(speech_of, truths, seed=0, lengths=(0.5, 1.0, 60.0))
    assert calibration.seconds.tolist() == [0.5, 1.0]  # no voice of the tiny corpus spoke for a minute
    assert (calibration.voices > 0).all()
    predictor.save(tmp_path / "predictor.pt")
    loaded = VoiceTo3D.load(tmp_path / "predictor.pt")
    np.testing.assert_array_equal(loaded.length_calibration.scale, calibration.scale)
    after = loaded.predict(speech).uncertainty
    factor = calibration.at(np.array([len(speech) / 16000]))[0]
    scaled = after.coefficient_std
    assert factor == calibration.scale[0]
    np.testing.assert_allclose(scaled, plain * factor, rtol=1e-6)
    assert after.length_scale == pytest.approx(factor) and after.summary("u")["length_scale"] == pytest.approx(factor)
    assert not np.allclose(scaled, plain)  # an untrained head's errors do change from 0.5 to 1 s of speech
    np.testing.assert_allclose(loaded.predict(longest).uncertainty.coefficient_std, long_plain, rtol=1e-6)


def test_a_point_regressor_has_no_calibration_to_fit(predictor_file, tiny_corpus_dir):
    predictor = VoiceTo3D.load(predictor_file)
    with pytest.raises(VoxfaceError, match="uncertainty head"):
        predictor.fit_length_calibration([np.zeros(32000, np.float32)], np.zeros((1, 4)), seed=0)
