"""Silence removal: the reference collector of CMP / Wen et al. (docs/release_models.md §4), step for step."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.io.wavfile

from voxface.audio import vad

SR = 16000
FRAME = 320  # 20 ms at 16 kHz


def buzz(seconds, amplitude=0.2):
    """A voiced-speech-like 150 Hz harmonic buzz, (N,) float32."""
    t = np.arange(int(seconds * SR)) / SR
    return (amplitude * sum(np.sin(2 * np.pi * 150 * k * t) / k for k in range(1, 20))).astype(np.float32)


def silence(seconds):
    return np.zeros(int(seconds * SR), dtype=np.float32)


def reference_rows(shared_data):
    folder = shared_data / "cmp_reference"
    if not (folder / "reference.json").is_file():
        pytest.skip(f"{folder}/reference.json not found (set VOXFACE_SHARED_DATA)")
    return folder, json.loads((folder / "reference.json").read_text())["rows"]


def test_segments_and_kept_samples_equal_the_official_collector_on_all_reference_clips(shared_data):
    folder, rows = reference_rows(shared_data)
    assert len(rows) == 18
    for row in rows:
        _, pcm = scipy.io.wavfile.read(folder / row["file"])
        assert pcm.dtype == np.int16 and len(pcm) == row["samples"]
        spans = vad.voiced_spans(pcm)
        assert [b - a for a, b in spans] == row["segment_samples"], row["file"]
        kept = vad.trim_silence(pcm)
        assert kept.dtype == np.int16 and len(kept) == row["speech_samples_after_vad"]
        np.testing.assert_array_equal(kept, np.concatenate([pcm[a:b] for a, b in spans]))


def test_asking_the_detector_once_per_frame_would_keep_other_samples(shared_data):
    """The re-asking of buffered frames matters on real speech (why the collector is copied exactly)."""
    import webrtcvad

    folder, rows = reference_rows(shared_data)
    differs = 0
    for row in rows:
        _, pcm = scipy.io.wavfile.read(folder / row["file"])
        frames = [pcm[i:i + FRAME].tobytes() for i in range(0, len(pcm) - FRAME, FRAME)]
        detector = webrtcvad.Vad(2)
        flags = [detector.is_speech(f, SR) for f in frames]
        kept, open_, ring = 0, False, []
        for i, flag in enumerate(flags):
            ring = (ring + [flag])[-2:]
            if not open_ and sum(ring) == 2:
                open_, ring, kept = True, [], kept + 2 * FRAME
            elif open_:
                kept += FRAME
                if len(ring) - sum(ring) == 2:
                    open_, ring = False, []
        differs += kept != row["speech_samples_after_vad"]
    assert differs >= 15  # measured: all 18 clips keep another number of samples


def test_float_input_on_the_int16_grid_gives_the_same_spans_and_samples():
    pcm = (np.concatenate([silence(0.4), buzz(0.8), silence(0.5)]) * 32768).round().astype(np.int16)
    as_float = pcm.astype(np.float32) / 32768
    assert vad.voiced_spans(pcm) == vad.voiced_spans(as_float)
    np.testing.assert_array_equal(vad.trim_silence(as_float) * 32768, vad.trim_silence(pcm))


def test_leading_and_trailing_silence_is_removed():
    wave = np.concatenate([silence(0.5), buzz(1.0), silence(0.7)])
    [(start, stop)] = vad.voiced_spans(wave)
    assert 8000 - 2 * FRAME <= start <= 8000 + 2 * FRAME
    assert 24000 <= stop <= 24000 + 12 * FRAME  # webrtcvad's hangover keeps a few frames after the sound
    assert vad.trim_silence(wave).dtype == np.float32


def test_the_last_frame_ending_exactly_at_the_end_is_dropped():
    """The frame generator stops at ``offset + n < len(audio)``."""
    loud = buzz(1.0)[: 50 * FRAME]  # exactly 50 frames of voice from the first sample
    [(start, stop)] = vad.voiced_spans(loud)
    assert start == 0 and stop == 49 * FRAME
    [(_, stop_longer)] = vad.voiced_spans(np.concatenate([loud, buzz(0.001)[:1]]))
    assert stop_longer == 50 * FRAME


def test_silence_gives_nothing_and_the_detector_starts_fresh_each_call():
    assert vad.voiced_spans(silence(1.0)) == []
    assert len(vad.trim_silence(silence(1.0))) == 0
    quiet = np.concatenate([silence(0.5), buzz(0.6, 0.05), silence(0.5)])
    before = vad.voiced_spans(quiet)
    vad.voiced_spans(buzz(2.0))
    assert vad.voiced_spans(quiet) == before


def test_unsupported_rate_frame_or_padding_is_refused():
    with pytest.raises(ValueError, match="sample rate"):
        vad.trim_silence(silence(1.0), sr=22050)
    with pytest.raises(ValueError, match="ms"):
        vad.trim_silence(silence(1.0), frame_ms=25)
    with pytest.raises(ValueError, match="padding"):
        vad.trim_silence(silence(1.0), padding_ms=10)
