"""Voice-activity trimming with webrtcvad, as CMP's and Wen et al.'s preprocessing does (SPEC.md §A).

webrtcvad labels each 20 ms frame speech or not; a ring-buffer collector turns the labels into
segments: a segment opens when more than 90% of the last ``padding_ms`` of frames are speech
(the opening frames are kept) and closes when more than 90% of them are not (the closing frames
are kept too). With 20 ms frames and 50 ms padding the window is 2 frames, so two speech frames in
a row open a segment and two non-speech frames close it. webrtcvad itself holds "speech" for a
few frames after speech stops (its hangover, about 120 ms at aggressiveness 2), so a segment ends
that much later than the sound does; starts are exact to the frame.
"""

from __future__ import annotations

import warnings
from collections import deque

import numpy as np

with warnings.catch_warnings():  # webrtcvad 2.0.10 imports the deprecated pkg_resources
    warnings.filterwarnings("ignore", message="pkg_resources is deprecated")
    import webrtcvad

VAD_SAMPLE_RATES = (8000, 16000, 32000, 48000)
VAD_FRAME_MS = (10, 20, 30)
TRIGGER_FRACTION = 0.9
"""Share of the padding window that must agree to open or close a segment (py-webrtcvad's example)."""


def speech_flags(
    wave: np.ndarray, sr: int = 16000, aggressiveness: int = 2, frame_ms: int = 20
) -> np.ndarray:
    """webrtcvad's speech/non-speech label of each whole frame.

    Args:
        wave: (N,) float samples in [-1, 1] at ``sr`` Hz.
        sr: 8000, 16000, 32000 or 48000.
        aggressiveness: 0 (keeps most) to 3 (drops most).
        frame_ms: 10, 20 or 30.

    Returns:
        (N // frame_len,) bool, frame_len = sr * frame_ms / 1000; a trailing partial frame is dropped.
    """
    if sr not in VAD_SAMPLE_RATES:
        raise ValueError(f"webrtcvad needs a sample rate in {VAD_SAMPLE_RATES}, got {sr}")
    if frame_ms not in VAD_FRAME_MS:
        raise ValueError(f"webrtcvad needs frames of {VAD_FRAME_MS} ms, got {frame_ms}")
    frame_len = sr * frame_ms // 1000
    pcm = (np.clip(np.asarray(wave, dtype=np.float32), -1.0, 1.0) * 32767.0).astype("<i2").tobytes()
    detector = webrtcvad.Vad(aggressiveness)  # fresh per call: the detector adapts to what it has heard
    n_frames = len(wave) // frame_len
    step = 2 * frame_len
    flags = [detector.is_speech(pcm[i * step : (i + 1) * step], sr) for i in range(n_frames)]
    return np.array(flags, dtype=bool)


def voiced_spans(
    wave: np.ndarray, sr: int = 16000, aggressiveness: int = 2, frame_ms: int = 20, padding_ms: int = 50
) -> list[tuple[int, int]]:
    """The voiced segments the ring-buffer collector finds, as sample ranges.

    Args:
        wave: (N,) float samples in [-1, 1] at ``sr`` Hz.
        sr, aggressiveness, frame_ms: as for ``speech_flags``.
        padding_ms: length of the ring buffer (``padding_ms // frame_ms`` frames, at least 1).

    Returns:
        Sorted, disjoint ``(start, stop)`` sample indices, multiples of the frame length.
    """
    flags = speech_flags(wave, sr, aggressiveness, frame_ms)
    frame_len = sr * frame_ms // 1000
    window = max(1, padding_ms // frame_ms)
    spans = []
    recent: deque[bool] = deque(maxlen=window)
    start = None
    for i, is_speech in enumerate(flags):
        recent.append(bool(is_speech))
        if start is None and sum(recent) > TRIGGER_FRACTION * window:
            start = i - len(recent) + 1
            recent.clear()
        elif start is not None and len(recent) - sum(recent) > TRIGGER_FRACTION * window:
            spans.append((start * frame_len, (i + 1) * frame_len))
            start = None
            recent.clear()
    if start is not None:
        spans.append((start * frame_len, len(flags) * frame_len))
    return spans


def trim_silence(
    wave: np.ndarray, aggressiveness: int = 2, frame_ms: int = 20, padding_ms: int = 50, sr: int = 16000
) -> np.ndarray:
    """Keep only the voiced segments, concatenated.

    Args:
        wave: (N,) float32 samples in [-1, 1] at ``sr`` Hz (16 kHz in CMP).
        aggressiveness, frame_ms, padding_ms, sr: as for ``voiced_spans`` (SPEC.md §A: 2, 20, 50).

    Returns:
        (M,) float32, M ≤ N and a multiple of the frame length; empty if nothing is voiced.
    """
    wave = np.asarray(wave, dtype=np.float32)
    spans = voiced_spans(wave, sr, aggressiveness, frame_ms, padding_ms)
    if not spans:
        return np.zeros(0, dtype=np.float32)
    return np.concatenate([wave[a:b] for a, b in spans])
