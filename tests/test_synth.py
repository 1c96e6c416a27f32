"""The source-filter voice synthesiser and its population prior."""

from __future__ import annotations

import dataclasses

import librosa
import numpy as np
import pytest

from voxface.audio.synth import (
    FIELD_NAMES,
    PHONES,
    VOICE_BOUNDS,
    VOICE_PRIOR,
    UtteranceConditions,
    VoiceParams,
    sample_conditions,
    sample_voice_params,
    synthesize,
    voice_params_from_z,
)
from voxface.errors import VoxfaceError

SR = 16000


def _sustained(phone: str = "a", duration_s: float = 1.2) -> UtteranceConditions:
    """One steady phone, monotone, no noise, no reverberation, flat channel."""
    return dataclasses.replace(
        sample_conditions(np.random.default_rng(0)),
        duration_s=duration_s,
        phones=(phone,),
        phone_durations_s=(duration_s,),
        rate_jitter=1.0,
        lead_silence_s=0.05,
        tail_silence_s=0.05,
        f0_accent_times=(),
        f0_accent_heights=(),
        f0_declination_st=0.0,
        snr_db=float("inf"),
        highpass_hz=30.0,
        lowpass_hz=7900.0,
        low_shelf_db=0.0,
        high_shelf_db=0.0,
        reverb_wet=0.0,
    )


def _voice(gender: str = "male", **changes: float) -> VoiceParams:
    return dataclasses.replace(voice_params_from_z(np.zeros(len(FIELD_NAMES)), gender), **changes)


def test_voice_vector_round_trip():
    voice = sample_voice_params(np.random.default_rng(1), "f")
    vector = voice.to_vector()
    assert vector.shape == (len(FIELD_NAMES),) and len(FIELD_NAMES) <= 14
    assert VoiceParams.from_vector(vector) == voice
    assert dict(zip(FIELD_NAMES, vector))["vtl_cm"] == voice.vtl_cm
    with pytest.raises(VoxfaceError):
        VoiceParams.from_vector(vector[:-1])


def test_prior_follows_the_literature_and_the_sampler_follows_the_prior():
    for gender in ("male", "female"):
        assert set(VOICE_PRIOR[gender]) == set(FIELD_NAMES)
    assert VOICE_PRIOR["male"]["f0_hz"] == (120.0, 20.0) and VOICE_PRIOR["female"]["f0_hz"] == (210.0, 25.0)
    assert VOICE_PRIOR["male"]["vtl_cm"] == (17.5, 0.8) and VOICE_PRIOR["female"]["vtl_cm"] == (15.0, 0.8)
    rng = np.random.default_rng(0)
    for gender in ("male", "female"):
        samples = np.stack([sample_voice_params(rng, gender).to_vector() for _ in range(2000)])
        for k, name in enumerate(FIELD_NAMES):
            mean, sd = VOICE_PRIOR[gender][name]
            lo, hi = VOICE_BOUNDS[name]
            assert lo <= samples[:, k].min() and samples[:, k].max() <= hi
            if lo < mean - 3 * sd and mean + 3 * sd < hi:  # unclipped fields: moments match
                assert samples[:, k].mean() == pytest.approx(mean, abs=4 * sd / np.sqrt(2000))
                assert samples[:, k].std() == pytest.approx(sd, rel=0.1)
    assert voice_params_from_z(np.zeros(len(FIELD_NAMES)), "M").f0_hz == 120.0
    extreme = voice_params_from_z(np.full(len(FIELD_NAMES), 50.0), "female").to_vector()
    np.testing.assert_array_equal(extreme, [VOICE_BOUNDS[name][1] for name in FIELD_NAMES])
    with pytest.raises(VoxfaceError):
        sample_voice_params(rng, "child")


def test_sampled_conditions_are_valid():
    rng = np.random.default_rng(5)
    for _ in range(20):
        c = sample_conditions(rng, duration_s=(2.5, 4.0))
        assert 2.5 <= c.duration_s <= 4.0
        assert set(c.phones) <= set(PHONES) and len(c.phones) == len(c.phone_durations_s)
        assert any(PHONES[p].kind == "vowel" for p in c.phones)
        assert sum(c.phone_durations_s) * 1.6 * 1.1 > c.duration_s - c.lead_silence_s - c.tail_silence_s
        assert 15.0 <= c.snr_db <= 40.0 and c.lowpass_hz <= 7800.0
    with pytest.raises(VoxfaceError):
        sample_conditions(rng, duration_s=(3.0, 2.0))


def test_synthesis_is_deterministic_bounded_and_of_the_requested_length():
    rng = np.random.default_rng(2)
    for gender in ("male", "female"):
        voice, conditions = sample_voice_params(rng, gender), sample_conditions(rng)
        wave = synthesize(voice, conditions, SR)
        assert wave.dtype == np.float32 and wave.shape == (round(conditions.duration_s * SR),)
        assert np.all(np.isfinite(wave)) and np.abs(wave).max() <= 1.0
        assert np.sqrt(np.mean(wave**2)) > 1e-3  # not silent
        np.testing.assert_array_equal(wave, synthesize(voice, conditions, SR))
        other = synthesize(voice, dataclasses.replace(conditions, seed=conditions.seed + 1), SR)
        assert not np.array_equal(wave, other)


def _autocorrelation_f0(wave: np.ndarray, sr: int) -> float:
    """F0 (Hz) of a steady voiced signal from the highest autocorrelation peak in 60-400 Hz."""
    x = wave - wave.mean()
    ac = np.correlate(x, x, mode="full")[x.size - 1 :]
    lo, hi = sr // 400, sr // 60
    lag = lo + int(np.argmax(ac[lo:hi]))
    a, b, c = ac[lag - 1 : lag + 2]  # parabolic refinement of the peak
    return sr / (lag + 0.5 * (a - c) / (a - 2 * b + c))


@pytest.mark.parametrize("gender, f0", [("male", 95.0), ("male", 131.0), ("female", 205.0), ("female", 260.0)])
def test_f0_of_a_sustained_vowel_matches_f0_hz(gender, f0):
    wave = synthesize(_voice(gender, f0_hz=f0), _sustained("a"), SR)
    estimate = _autocorrelation_f0(wave[4000:14000].astype(np.float64), SR)
    assert estimate == pytest.approx(f0, rel=0.03)


def _lpc_formants(wave: np.ndarray, sr: int, order: int = 16) -> np.ndarray:
    """Formant frequencies (Hz, ascending) from LPC roots with bandwidth under 500 Hz, above 150 Hz."""
    x = np.append(wave[0], wave[1:] - 0.7 * wave[:-1]) * np.hamming(wave.size)
    roots = np.roots(librosa.lpc(x.astype(np.float64), order=order))
    roots = roots[np.imag(roots) > 0]
    freqs = np.angle(roots) * sr / (2 * np.pi)
    bandwidths = -np.log(np.abs(roots)) * sr / np.pi
    return np.sort(freqs[(bandwidths < 500) & (freqs > 150)])


@pytest.mark.parametrize("vowel", ["a", "ae", "E", "O"])  # F1 > 500 Hz: LPC is unbiased there at F0 = 100 Hz
def test_formants_scale_inversely_with_vocal_tract_length(vowel):
    short_tract, long_tract = 14.0, 19.0
    estimates = {}
    for vtl in (short_tract, long_tract):
        voice = _voice("male", f0_hz=100.0, vtl_cm=vtl, breathiness=0.0, jitter=0.0, shimmer=0.0, nasality=0.0)
        wave = synthesize(voice, _sustained(vowel), SR).astype(np.float64)
        estimates[vtl] = _lpc_formants(wave[4000:14000], SR)[:2]
    reference = np.array(PHONES[vowel].formants[:2]) * 17.5 / np.array([short_tract, long_tract])[:, None]
    np.testing.assert_allclose(estimates[short_tract], reference[0], rtol=0.08)
    np.testing.assert_allclose(estimates[long_tract], reference[1], rtol=0.08)
    assert np.all(estimates[long_tract] < estimates[short_tract])


def test_synthesis_rejects_bad_input():
    conditions = _sustained("a")
    with pytest.raises(VoxfaceError):
        synthesize(_voice(vtl_cm=40.0), conditions)
    with pytest.raises(VoxfaceError):
        synthesize(_voice(), dataclasses.replace(conditions, phones=("a", "#"), phone_durations_s=(0.5, 0.5)))
    with pytest.raises(VoxfaceError):
        synthesize(_voice(), dataclasses.replace(conditions, phone_durations_s=(0.5, 0.5)))


def test_pretrained_speaker_encoder_separates_synthetic_speakers():
    from voxface.audio.speaker_encoder import ResemblyzerEncoder
    from voxface.evaluate.speaker import verification_eer

    rng = np.random.default_rng(11)
    waves, ids = [], []
    for speaker in range(6):
        voice = sample_voice_params(rng, "male" if speaker % 2 else "female")
        for _ in range(3):
            waves.append(synthesize(voice, sample_conditions(rng), SR))
            ids.append(speaker)
    ids = np.array(ids)
    embeddings = ResemblyzerEncoder().embed(waves)
    similarity = embeddings @ embeddings.T
    same = (ids[:, None] == ids[None, :]) & ~np.eye(ids.size, dtype=bool)
    different = ids[:, None] != ids[None, :]
    assert similarity[same].mean() > similarity[different].mean() + 0.1
    assert verification_eer(embeddings, ids) < 0.3  # chance is 0.5
