"""CMP log-mel (Cross-Modal Perceptionist, Sec. 4) and mel+delta (biometric-matching paper, Sec. IV-A)
against closed forms and a frame-by-frame re-implementation."""

from __future__ import annotations

import math

import librosa
import numpy as np
import pytest

from voxface.audio.features import cmp_logmel, log_mel_energies, mel_delta, mel_filterbank
from voxface.audio.io import load_audio
from voxface.audio.vad import trim_silence
from voxface.paths import shared_data_dir

SR = 16000


def loop_filterbank(n_filters=64, n_fft=1024, sr=16000, fmin=20.0, fmax=7200.0):
    """The Sphinx MFC filter bank, one filter and one bin at a time."""

    def mel(f):
        return 2595.0 * math.log10(1.0 + f / 700.0)

    def hz(m):
        return 700.0 * (10.0 ** (m / 2595.0) - 1.0)

    bin_hz = sr / n_fft
    step = (mel(fmax) - mel(fmin)) / (n_filters + 1)
    edges = [int(math.floor(hz(mel(fmin) + i * step) / bin_hz + 0.5)) for i in range(n_filters + 2)]
    bank = np.zeros((n_fft // 2 + 1, n_filters))
    for j in range(n_filters):
        left, centre, right = edges[j], edges[j + 1], edges[j + 2]
        height = 2.0 / ((right - left) * bin_hz)
        for k in range(left + 1, centre):
            bank[k, j] = height * (k - left) / (centre - left)
        bank[centre, j] = height
        for k in range(centre + 1, right):
            bank[k, j] = height * (right - k) / (right - centre)
    return bank


def sphinx_reference(wave, whole_signal_preemphasis=False):
    """Log mel energies frame by frame in float64, as the Sphinx MFC front end computes them."""
    x = np.asarray(wave, dtype=np.float64) * 32768.0
    if whole_signal_preemphasis:
        x = np.concatenate([x[:1], x[1:] - 0.97 * x[:-1]])
    bank = loop_filterbank()
    n = np.arange(400)
    hamming = 0.54 - 0.46 * np.cos(2.0 * np.pi * n / 399)
    rows, prior = [], 0.0
    for t in range(int(len(x) / 160 + 1)):
        frame = x[160 * t : 160 * t + 400]
        if len(frame) < 400:
            frame = np.array([frame[i % len(frame)] for i in range(400)]) if len(frame) else np.zeros(400)
        if whole_signal_preemphasis:
            emphasised = frame
        else:
            emphasised = np.concatenate([[frame[0] - 0.97 * prior], frame[1:] - 0.97 * frame[:-1]])
            prior = frame[-1]
        spectrum = np.fft.rfft(emphasised * hamming, 1024)
        rows.append(np.log(np.maximum(np.abs(spectrum) ** 2 @ bank, 1e-5)))
    return np.array(rows)


def normalised(feats):
    feats = feats - feats.mean(axis=0)
    return feats / (feats.std(axis=0) + np.finfo(np.float32).eps)


def speech_like(seconds, seed=0):
    """Noise with a slow random loudness contour, (N,) float32 at 16 kHz."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    envelope = np.interp(np.arange(n), np.linspace(0, n, 20), rng.uniform(0.01, 0.5, 20))
    return (rng.normal(0, 1, n) * envelope).clip(-1, 1).astype(np.float32)


def fsdd_speaker_files(speaker="george"):
    folder = shared_data_dir() / "fsdd" / "recordings"
    files = sorted(folder.glob(f"*_{speaker}_*.wav"))
    if not files:
        pytest.skip(f"FSDD recordings not found under {folder} (set VOXFACE_SHARED_DATA)")
    return files


def test_filterbank_matches_loop_and_has_equal_areas():
    bank = mel_filterbank()
    assert bank.shape == (513, 64) and bank.dtype == np.float32
    np.testing.assert_allclose(bank, loop_filterbank(), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(bank.sum(axis=0), 1024 / 16000, rtol=1e-5)
    nonzero = np.nonzero(bank.any(axis=1))[0]
    assert nonzero[0] == 2 and nonzero[-1] == 460  # edges: round(20/15.625)=1, round(7200/15.625)=461
    assert np.all(np.diff(bank.argmax(axis=0)) > 0)


def test_filterbank_refuses_filters_narrower_than_two_bins():
    with pytest.raises(ValueError, match="too narrow"):
        mel_filterbank(n_filters=128, n_fft=256)
    with pytest.raises(ValueError, match="Nyquist"):
        mel_filterbank(fmax=9000.0)


@pytest.mark.parametrize("n_samples", [100, 399, 400, 560, 16000, 16123])
def test_log_mel_energies_match_frame_by_frame_reference(n_samples):
    wave = speech_like(n_samples / SR + 1e-6, seed=n_samples)[:n_samples]
    ours = log_mel_energies(wave)
    assert ours.shape == (n_samples // 160 + 1, 64) and ours.dtype == np.float32
    np.testing.assert_allclose(ours, sphinx_reference(wave), atol=2e-3)


def test_frame_starting_at_the_end_holds_only_the_preemphasised_prior():
    wave = speech_like(1.0)
    last = log_mel_energies(wave)[-1]  # 16000 samples: frame 100 starts at sample 16000 (empty)
    impulse_power = (0.97 * 32768 * wave[15840 + 399 % 160] * 0.08) ** 2  # prior: frame 99 resized
    np.testing.assert_allclose(last, np.log(max(impulse_power * 1024 / 16000, 1e-5)), rtol=1e-4)


def test_cmp_logmel_long_input_is_normalised_per_bin_and_not_tiled():
    wave = speech_like(12.0)
    feats = cmp_logmel(wave)
    assert feats.shape == (1201, 64) and feats.dtype == np.float32
    np.testing.assert_allclose(feats.mean(axis=0), 0.0, atol=1e-4)
    np.testing.assert_allclose(feats.std(axis=0), 1.0, atol=1e-4)
    np.testing.assert_allclose(feats, normalised(sphinx_reference(wave)), atol=1e-3)


def test_cmp_logmel_short_input_is_tiled_from_the_start_to_1000_frames():
    wave = speech_like(3.0)
    feats = cmp_logmel(wave)
    n_frames = 3 * 100 + 1
    assert feats.shape == (1000, 64)
    np.testing.assert_array_equal(feats[n_frames : 2 * n_frames], feats[:n_frames])
    np.testing.assert_array_equal(feats[3 * n_frames :], feats[: 1000 - 3 * n_frames])
    np.testing.assert_allclose(feats[:n_frames].std(axis=0), 1.0, atol=1e-4)
    assert cmp_logmel(wave, min_frames=10).shape == (n_frames, 64)


@pytest.mark.parametrize("filter_index", [5, 20, 40, 63])
def test_pure_tone_peaks_in_the_filter_centred_on_it(filter_index):
    centre_hz = mel_filterbank()[:, filter_index].argmax() * 16000 / 1024
    t = np.arange(SR) / SR
    energies = log_mel_energies((0.5 * np.sin(2 * np.pi * centre_hz * t)).astype(np.float32))
    assert energies[10:-10].mean(axis=0).argmax() == filter_index


def test_mel_delta_shapes_and_delta_channel_is_librosa_delta():
    wave = speech_like(3.0)
    patches = mel_delta(wave)
    assert patches.shape == (1 + (48000 - 20480) // 10240, 60, 41, 2) and patches.dtype == np.float32
    for patch in patches:
        np.testing.assert_allclose(patch[..., 1], librosa.feature.delta(patch[..., 0], axis=-1), atol=1e-4)
    whole = librosa.power_to_db(
        librosa.feature.melspectrogram(y=wave, sr=SR, n_fft=1024, hop_length=512, n_mels=60), top_db=None
    )
    np.testing.assert_allclose(patches[2, ..., 0], whole[:, 40:81], atol=1e-3)


def test_mel_delta_short_clip_is_tiled_to_one_patch():
    wave = speech_like(0.5)
    patches = mel_delta(wave)
    assert patches.shape == (1, 60, 41, 2)
    np.testing.assert_allclose(patches, mel_delta(np.tile(wave, 3)[:20480]), atol=1e-5)


def test_mel_delta_of_exponential_envelope_is_its_slope_in_db_per_frame():
    rate = 1.0  # amplitude grows as exp(rate * t): 20 * rate / ln 10 dB per second
    t = np.arange(4 * SR) / SR
    wave = (0.001 * np.exp(rate * t) * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
    patches = mel_delta(wave)
    slope_db_per_frame = 20 * rate / math.log(10) * 512 / SR
    band = patches[1:, :, :, 0].mean(axis=(0, 2)).argmax()
    np.testing.assert_allclose(patches[1:, band, :, 1], slope_db_per_frame, rtol=0.02)


def test_mel_delta_is_unnormalised_power_in_db():
    wave = speech_like(3.0)
    patches, louder = mel_delta(wave), mel_delta(10 * wave)
    np.testing.assert_allclose(louder[..., 0] - patches[..., 0], 20.0, atol=1e-2)
    np.testing.assert_allclose(louder[..., 1], patches[..., 1], atol=1e-3)


def test_empty_waveforms_are_refused():
    for extractor in (cmp_logmel, mel_delta):
        with pytest.raises(ValueError, match="non-empty"):
            extractor(np.zeros(0, dtype=np.float32))


def test_real_speech_of_one_fsdd_speaker_gives_finite_features():
    files = fsdd_speaker_files()
    for path in files:
        wave = load_audio(path, sr=SR)
        assert wave.dtype == np.float32 and wave.ndim == 1
        feats = cmp_logmel(wave)
        assert feats.shape == (1000, 64) and np.isfinite(feats).all(), path
    assert np.isfinite(mel_delta(wave)).all()


def test_whole_signal_preemphasis_would_change_the_features_as_documented():
    """The measured effect quoted in the features module docstring (per-frame vs whole-signal)."""
    files = fsdd_speaker_files()
    interior, last = [], []
    for path in files:
        wave = load_audio(path, sr=SR)
        wave = wave[: len(wave) // 320 * 320]  # a whole number of VAD frames, as after trim_silence
        per_frame = cmp_logmel(wave, min_frames=0)
        whole_signal = normalised(sphinx_reference(wave, whole_signal_preemphasis=True))
        interior.append(np.abs(per_frame - whole_signal)[:-1])
        last.append(np.abs(per_frame - whole_signal)[-1])
    assert 0.15 < np.mean([d.mean() for d in interior]) < 0.5
    assert 1.0 < max(d.max() for d in interior) < 5.0
    assert np.mean([d.mean() for d in last]) > 1.0


def test_final_frame_is_the_bin_minimum_as_in_the_released_features():
    """The frame starting at the end of a VAD-trimmed utterance (pre-emphasis click only) is the
    lowest value of most bins, both in CMP's released features and in ours on real speech."""
    released = sorted((shared_data_dir() / "cmp_features").glob("*/*/*.npy"))
    if not released:
        pytest.skip("CMP's released features not found under shared data (set VOXFACE_SHARED_DATA)")
    for path in released:
        feats = np.load(path)
        period = next((p for p in range(1, len(feats)) if np.array_equal(feats[p:], feats[:-p])), len(feats))
        utterance = feats[:period]  # undo the tiling
        assert (utterance[-1] <= utterance.min(axis=0)).mean() >= 0.7, path
    shares = []
    for path in fsdd_speaker_files("theo")[:40]:
        speech = trim_silence(load_audio(path, sr=SR))
        if len(speech) >= 3200:
            feats = cmp_logmel(speech, min_frames=0)
            shares.append((feats[-1] <= feats.min(axis=0)).mean())
    assert min(shares) >= 0.65 and np.mean(shares) >= 0.85  # measured: 0.69-1.00, mean 0.91


def test_features_equal_the_official_ones_on_all_reference_clips():
    """``prepare_voice`` + ``cmp_logmel`` on the reference WAVs = the official get_fbank(rm_sil(wav))."""
    import json

    from voxface.audio.voice import prepare_voice

    folder = shared_data_dir() / "cmp_reference"
    if not (folder / "reference.json").is_file():
        pytest.skip(f"{folder}/reference.json not found (set VOXFACE_SHARED_DATA)")
    rows = json.loads((folder / "reference.json").read_text())["rows"]
    worst = 0.0
    for row in rows:
        ours = cmp_logmel(prepare_voice(folder / row["file"]))
        official = np.load(folder / row["features"])
        assert ours.dtype == np.float32 and ours.shape == official.shape == tuple(row["feature_shape"])
        worst = max(worst, float(np.abs(ours - official).max()))
    assert worst <= 1e-4


def test_features_equal_the_released_code_run_on_all_reference_clips():
    """The released preprocessing itself (``mfcc.py`` + ``rm_sil`` / ``get_fbank``, read from its own
    files), run now on the 18 reference WAVs: it reproduces the stored oracle, and voxface equals it."""
    from voxface.audio.official import official_frontend
    from voxface.audio.voice import prepare_voice
    from voxface.errors import VoxfaceError

    folder = shared_data_dir() / "cmp_reference"
    clips = sorted((folder / "wav").glob("*.wav"))
    if not clips:
        pytest.skip(f"no reference clips under {folder} (set VOXFACE_SHARED_DATA)")
    try:
        released = official_frontend()
    except VoxfaceError as err:
        pytest.skip(str(err))
    worst = 0.0
    for clip in clips:
        theirs = released(clip)
        np.testing.assert_array_equal(theirs, np.load(folder / "official_features" / f"{clip.stem}.npy"))
        ours = cmp_logmel(prepare_voice(clip))
        assert ours.shape == theirs.shape
        worst = max(worst, float(np.abs(ours - theirs).max()))
    assert len(clips) == 18 and worst <= 1e-4


@pytest.mark.parametrize("n_samples", [1, 399, 400, 128 * 160 + 399, 128 * 160 + 400, 300 * 160 + 7])
def test_block_boundaries_do_not_change_the_energies(n_samples):
    """Frames computed in blocks of BLOCK_FRAMES equal one frame at a time (the float64 loop above)."""
    from voxface.audio.features import BLOCK_FRAMES

    assert BLOCK_FRAMES == 128
    wave = speech_like(n_samples / SR + 1e-6, seed=n_samples)[:n_samples]
    np.testing.assert_allclose(log_mel_energies(wave), sphinx_reference(wave), atol=2e-3)


def test_filter_bands_hold_every_weight_of_the_filter_bank_once():
    from voxface.audio.features import _filter_bands

    rebuilt = np.zeros((2 * 513, 64), np.float32)
    for band in _filter_bands():
        assert not rebuilt[band.squares, band.filters].any()
        rebuilt[band.squares, band.filters] = band.weights
    np.testing.assert_array_equal(rebuilt[0::2], mel_filterbank())
    np.testing.assert_array_equal(rebuilt[1::2], mel_filterbank())
