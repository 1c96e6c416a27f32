"""webrtcvad trimming with the ring-buffer collector (SPEC.md §A: aggressiveness 2, 20 ms, 50 ms padding)."""

from __future__ import annotations

import numpy as np
import pytest

from voxface.audio import vad
from voxface.audio.io import load_audio
from voxface.paths import shared_data_dir

SR = 16000
FRAME = 320  # 20 ms at 16 kHz
HANGOVER = 10 * FRAME  # webrtcvad keeps "speech" ~6 frames after it stops; the collector adds 2


def buzz(seconds):
    """A voiced-speech-like 150 Hz harmonic buzz, (N,) float32."""
    t = np.arange(int(seconds * SR)) / SR
    return (0.2 * sum(np.sin(2 * np.pi * 150 * k * t) / k for k in range(1, 20))).astype(np.float32)


def silence(seconds):
    return np.zeros(int(seconds * SR), dtype=np.float32)


def test_leading_and_trailing_silence_of_known_length_is_removed():
    burst = buzz(1.0)
    wave = np.concatenate([silence(0.5), burst, silence(0.7)])
    [(start, stop)] = vad.voiced_spans(wave)
    assert abs(start - 8000) <= 2 * FRAME
    assert 24000 <= stop <= 24000 + HANGOVER
    trimmed = vad.trim_silence(wave)
    assert trimmed.dtype == np.float32
    np.testing.assert_array_equal(trimmed, wave[start:stop])
    np.testing.assert_array_equal(trimmed[8000 - start : 8000 - start + len(burst)], burst)


def test_two_bursts_give_two_segments_concatenated():
    wave = np.concatenate([silence(0.5), buzz(0.5), silence(0.5), buzz(0.7), silence(0.5)])
    spans = vad.voiced_spans(wave)
    assert len(spans) == 2
    assert abs(spans[0][0] - 8000) <= 2 * FRAME and abs(spans[1][0] - 24000) <= 2 * FRAME
    assert 16000 <= spans[0][1] <= 16000 + HANGOVER and 35200 <= spans[1][1] <= 35200 + HANGOVER
    trimmed = vad.trim_silence(wave)
    assert len(trimmed) == sum(b - a for a, b in spans)


def test_silence_gives_nothing_and_a_partial_last_frame_is_dropped():
    assert vad.voiced_spans(silence(1.0)) == []
    assert len(vad.trim_silence(silence(1.0))) == 0
    assert len(vad.speech_flags(silence(1.0)[:1000])) == 1000 // FRAME


def test_detector_state_does_not_leak_between_calls():
    loud = buzz(2.0)
    quiet = np.concatenate([silence(0.5), buzz(0.6), silence(0.5)])
    before = vad.voiced_spans(quiet)
    vad.voiced_spans(loud)
    assert vad.voiced_spans(quiet) == before


def test_collector_opens_on_two_voiced_frames_and_closes_on_two_unvoiced(monkeypatch):
    flags = np.array([0, 1, 0, 1, 1, 1, 0, 1, 0, 0, 1, 1, 1], dtype=bool)
    monkeypatch.setattr(vad, "speech_flags", lambda wave, sr, aggressiveness, frame_ms: flags)
    # opens at frames 3-4 (both voiced), survives the single gaps at 6 and 8, closes after 8-9;
    # reopens at 10-11 and runs to the end.
    assert vad.voiced_spans(np.zeros(13 * FRAME)) == [(3 * FRAME, 10 * FRAME), (10 * FRAME, 13 * FRAME)]
    # a 100 ms window (5 frames) needs more than 4.5 of 5 frames to agree
    assert vad.voiced_spans(np.zeros(13 * FRAME), padding_ms=100) == []


def test_unsupported_rate_or_frame_length_is_refused():
    with pytest.raises(ValueError, match="sample rate"):
        vad.trim_silence(silence(1.0), sr=22050)
    with pytest.raises(ValueError, match="ms"):
        vad.trim_silence(silence(1.0), frame_ms=25)


def test_real_speech_padded_with_silence_is_trimmed_back():
    folder = shared_data_dir() / "fsdd" / "recordings"
    path = folder / "3_jackson_0.wav"
    if not path.is_file():
        pytest.skip(f"FSDD recording {path} not found (set VOXFACE_SHARED_DATA)")
    speech = load_audio(path, sr=SR)
    wave = np.concatenate([silence(1.0), speech, silence(1.0)])
    spans = vad.voiced_spans(wave)
    assert spans and spans[0][0] >= 16000 - 2 * FRAME
    assert spans[-1][1] <= 16000 + len(speech) + HANGOVER
    assert 0.3 * len(speech) < len(vad.trim_silence(wave)) <= len(speech) + HANGOVER
