"""Loading every supported format, resampling, down-mixing, writing, and the errors users can cause."""

from __future__ import annotations

import re
import shutil
import subprocess

import numpy as np
import pytest
import soundfile as sf

from voxface.audio import io as audio_io
from voxface.audio.io import as_mono, load_audio, save_wav
from voxface.audio.voice import prepare_voice
from voxface.errors import VoxfaceError

SR = 16000
needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not installed")


def sine(freq, seconds=1.0, sr=SR, amplitude=0.5):
    t = np.arange(int(seconds * sr)) / sr
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def peak_hz(wave, sr=SR):
    spectrum = np.abs(np.fft.rfft(wave * np.hanning(len(wave))))
    return spectrum.argmax() * sr / len(wave)


def buzz(seconds):
    """A voiced-speech-like 150 Hz harmonic buzz that webrtcvad calls speech, (N,) float32."""
    t = np.arange(int(seconds * SR)) / SR
    return (0.2 * sum(np.sin(2 * np.pi * 150 * k * t) / k for k in range(1, 20))).astype(np.float32)


@pytest.mark.parametrize("fmt", ["WAV", "FLAC"])
def test_lossless_round_trip_is_exact_to_16_bits(tmp_path, fmt):
    wave = sine(440)
    path = tmp_path / f"tone.{fmt.lower()}"
    sf.write(path, wave, SR, format=fmt, subtype="PCM_16")
    loaded = load_audio(path)
    assert loaded.dtype == np.float32 and loaded.shape == wave.shape
    np.testing.assert_allclose(loaded, wave, atol=1.0 / 32768)


@pytest.mark.parametrize("fmt", ["OGG", "MP3"])
def test_lossy_round_trip_keeps_the_tone(tmp_path, fmt):
    path = tmp_path / f"tone.{fmt.lower()}"
    sf.write(path, sine(440), SR, format=fmt)
    loaded = load_audio(path)
    assert loaded.dtype == np.float32 and loaded.ndim == 1
    assert abs(len(loaded) - SR) < 0.1 * SR
    assert abs(peak_hz(loaded) - 440) <= 2
    assert 0.4 < np.abs(loaded).max() <= 1.0


@needs_ffmpeg
def test_m4a_is_decoded_through_ffmpeg(tmp_path):
    wav, m4a = tmp_path / "tone.wav", tmp_path / "tone.m4a"
    sf.write(wav, np.stack([sine(440, sr=22050)] * 2, axis=1), 22050)
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(wav), "-c:a", "aac", str(m4a)], check=True)
    loaded = load_audio(m4a)
    assert loaded.dtype == np.float32 and loaded.ndim == 1
    assert abs(len(loaded) - SR) < 0.1 * SR  # plus the AAC encoder's priming samples
    assert abs(peak_hz(loaded) - 440) <= 2


def test_stereo_is_the_mean_of_the_channels(tmp_path):
    left, right = sine(440), sine(1000, amplitude=0.3)
    path = tmp_path / "stereo.wav"
    sf.write(path, np.stack([left, right], axis=1), SR, subtype="FLOAT")
    np.testing.assert_allclose(load_audio(path), (left + right) / 2, atol=1e-6)


@pytest.mark.parametrize(("native_sr", "freq"), [(8000, 1000.0), (44100, 3000.0)])
def test_other_rates_are_resampled_to_16k_keeping_the_frequency(tmp_path, native_sr, freq):
    path = tmp_path / f"tone_{native_sr}.wav"
    sf.write(path, sine(freq, seconds=2.0, sr=native_sr), native_sr)
    loaded = load_audio(path)
    assert len(loaded) == 2 * SR
    assert abs(peak_hz(loaded) - freq) <= 1
    assert abs(np.abs(loaded[1000:-1000]).max() - 0.5) < 0.01
    assert len(load_audio(path, sr=22050)) == 2 * 22050


def test_save_wav_writes_16_bit_pcm_atomically_and_clips(tmp_path):
    path = tmp_path / "sub" / "out.wav"
    wave = sine(440)
    wave[:10] = 2.0
    save_wav(path, wave, SR)
    info = sf.info(path)
    assert (info.subtype, info.samplerate, info.channels, info.frames) == ("PCM_16", SR, 1, SR)
    loaded = load_audio(path)
    np.testing.assert_allclose(loaded[10:], wave[10:], atol=1.0 / 32768)
    assert np.all(loaded[:10] > 0.999)
    assert [p.name for p in path.parent.iterdir()] == ["out.wav"]


def test_integer_samples_are_scaled_to_full_scale():
    pcm = np.array([[-32768, 16384], [0, 32767]], dtype=np.int16)
    np.testing.assert_allclose(as_mono(pcm), [(-1.0 + 0.5) / 2, 32767 / 32768 / 2])


def test_missing_file_and_folder_are_named(tmp_path):
    missing = tmp_path / "nope.wav"
    with pytest.raises(VoxfaceError, match=f"not found: {re.escape(str(missing))}"):
        load_audio(missing)
    with pytest.raises(VoxfaceError, match=f"{re.escape(str(tmp_path))} is a folder"):
        load_audio(tmp_path)


@pytest.mark.parametrize(
    "content",
    [b"", b"this is not audio at all " * 50, b"RIFF\x24\x08\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00"],
    ids=["zero-bytes", "text", "truncated-header"],
)
def test_empty_or_corrupt_files_are_named(tmp_path, content):
    path = tmp_path / "broken.wav"
    path.write_bytes(content)
    with pytest.raises(VoxfaceError, match=re.escape(str(path))):
        load_audio(path)


def test_corrupt_file_without_ffmpeg_says_corrupt(tmp_path, monkeypatch):
    monkeypatch.setattr(audio_io.shutil, "which", lambda name: None)
    path = tmp_path / "broken.flac"
    path.write_bytes(b"not flac " * 100)
    with pytest.raises(VoxfaceError, match=f"{re.escape(str(path))}: it is corrupt"):
        load_audio(path)


def test_m4a_without_ffmpeg_says_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setattr(audio_io.shutil, "which", lambda name: None)
    path = tmp_path / "voice.m4a"
    path.write_bytes(b"\x00\x00\x00\x20ftypM4A " + bytes(200))
    with pytest.raises(VoxfaceError, match=f"{re.escape(str(path))}.*install it"):
        load_audio(path)


def test_wav_without_samples_is_named(tmp_path):
    path = tmp_path / "empty.wav"
    sf.write(path, np.zeros(0, dtype=np.float32), SR)
    with pytest.raises(VoxfaceError, match=f"{re.escape(str(path))} contains no samples"):
        load_audio(path)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_samples_are_named(tmp_path, bad):
    wave = sine(440)
    wave[100] = bad
    path = tmp_path / "nan.wav"
    sf.write(path, wave, SR, subtype="FLOAT")
    with pytest.raises(VoxfaceError, match=f"{re.escape(str(path))} contains NaN or infinite"):
        load_audio(path)


def test_prepare_voice_trims_silence_from_a_file(tmp_path):
    path = tmp_path / "voice.flac"
    sf.write(path, np.concatenate([np.zeros(SR), buzz(1.0), np.zeros(SR)]), SR)
    voice = prepare_voice(path)
    assert voice.dtype == np.float32 and SR <= len(voice) <= 1.25 * SR
    assert len(prepare_voice(path, vad=False)) == 3 * SR


def test_prepare_voice_accepts_a_waveform():
    wave = np.concatenate([np.zeros(SR), buzz(1.0)])
    assert len(prepare_voice(wave)) == SR - 320  # the collector drops a last frame ending at the very end
    with pytest.raises(VoxfaceError, match="the waveform is 0.20 s long"):
        prepare_voice(buzz(0.2))


def test_prepare_voice_errors_name_the_file(tmp_path):
    cases = {
        "short.wav": (buzz(0.3), "0.30 s long"),
        "zeros.wav": (np.zeros(SR, dtype=np.float32), "silent"),
        "hiss.wav": (np.random.default_rng(0).normal(0, 1e-4, SR).astype(np.float32), "no speech found"),
        "blip.wav": (np.concatenate([np.zeros(SR), buzz(0.2), np.zeros(SR)]), "only 0.3"),
    }
    for name, (wave, reason) in cases.items():
        path = tmp_path / name
        sf.write(path, wave, SR, subtype="FLOAT")
        with pytest.raises(VoxfaceError, match=reason) as caught:
            prepare_voice(path)
        assert str(path) in str(caught.value)
    with pytest.raises(VoxfaceError, match=re.escape(str(tmp_path / "missing.ogg"))):
        prepare_voice(tmp_path / "missing.ogg")


def test_16k_mono_pcm16_files_are_read_as_their_samples(tmp_path):
    from voxface.audio.io import load_pcm16

    samples = np.random.default_rng(1).integers(-32768, 32768, 3 * SR).astype(np.int16)
    sf.write(tmp_path / "pcm.wav", samples, SR, subtype="PCM_16")
    loaded = load_pcm16(tmp_path / "pcm.wav")
    assert loaded.dtype == np.int16
    np.testing.assert_array_equal(loaded, samples)


def test_other_inputs_are_converted_to_16k_mono_int16_by_the_documented_rule(tmp_path):
    from voxface.audio.io import load_pcm16

    samples = (buzz(1.0) * 32768).round().astype(np.int16)
    sf.write(tmp_path / "float.wav", samples.astype(np.float32) / 32768, SR, subtype="FLOAT")
    sf.write(tmp_path / "stereo.wav", np.stack([samples, samples], axis=1), SR, subtype="PCM_16")
    sf.write(tmp_path / "24bit.flac", samples.astype(np.float32) / 32768, SR, subtype="PCM_24")
    for name in ("float.wav", "stereo.wav", "24bit.flac"):
        np.testing.assert_array_equal(load_pcm16(tmp_path / name), samples, err_msg=name)
    sf.write(tmp_path / "8k.wav", sine(300, sr=8000), 8000, subtype="PCM_16")
    at_16k = load_pcm16(tmp_path / "8k.wav")
    assert at_16k.dtype == np.int16 and len(at_16k) == SR and abs(peak_hz(at_16k / 32768) - 300) < 2


def test_to_pcm16_rounds_half_to_even_and_clips():
    from voxface.audio.io import to_pcm16

    x = np.array([0.0, 0.5 / 32768, 1.5 / 32768, -1.0, 1.0, 2.0, -3.0, 100.4 / 32768])
    np.testing.assert_array_equal(to_pcm16(x), [0, 0, 2, -32768, 32767, 32767, -32768, 100])
    ints = np.array([-32768, -1, 0, 32767], dtype=np.int16)
    assert to_pcm16(ints) is ints
    np.testing.assert_array_equal(to_pcm16(ints.astype(np.float32) / 32768), ints)


@needs_ffmpeg
def test_m4a_goes_through_the_same_front_end(tmp_path):
    from voxface.audio.features import cmp_logmel

    wav = tmp_path / "voice.wav"
    sf.write(wav, np.concatenate([np.zeros(SR // 2), buzz(1.5), np.zeros(SR // 2)]), SR, subtype="PCM_16")
    m4a = tmp_path / "voice.m4a"
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(wav), "-c:a", "aac", "-b:a", "192k", str(m4a)], check=True)
    features = cmp_logmel(prepare_voice(m4a))
    assert features.shape == (1000, 64) and np.isfinite(features).all()
