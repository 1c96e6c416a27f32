"""Silence removal exactly as CMP's and Wen et al.'s preprocessing does it (Cross-Modal Perceptionist,
Sec. 4, follows Wen et al. 2019; docs/release_models.md §4).

Their collector is py-webrtcvad's example as it stood in 2019, and its result depends on details
that a tidier re-implementation changes (measured on ``shared/data/cmp_reference``: asking the
detector once per frame keeps up to ~10% more audio), so this module follows it step for step:

- Frames: 20 ms (320 samples at 16 kHz) from the start, while ``offset + frame < len(audio)``
  counted in bytes, so a last frame that ends exactly at the end of the audio is dropped too.
- One *stateful* ``webrtcvad.Vad(2)`` per recording. At every frame the collector appends the
  frame to a ring buffer of ``padding_ms // frame_ms = 2`` frames and asks the detector again
  about *every* frame in the buffer (oldest first), so the detector hears most frames twice
  (f0; f0 f1; f1 f2; ...) and adapts to the repeats.
- Not in a segment: when more than 0.9 × 2 of the buffered frames are speech, a segment opens
  with the buffered frames. In a segment: each frame is kept; when more than 0.9 × 2 of the
  buffered frames are not speech, the segment closes (with them). The buffer is emptied at each
  change, so the detector then hears one frame alone once.
- The kept audio is the segments' int16 samples concatenated; nothing is resampled or scaled.

It works on int16 samples; a float waveform is first put on the int16 grid by
:func:`voxface.audio.io.to_pcm16` (exact for audio that came from 16-bit PCM).
"""

from __future__ import annotations

import warnings
from collections import deque

import numpy as np

from .io import to_pcm16

with warnings.catch_warnings():  # webrtcvad 2.0.10 imports the deprecated pkg_resources
    warnings.filterwarnings("ignore", message="pkg_resources is deprecated")
    import _webrtcvad
    import webrtcvad

VAD_SAMPLE_RATES = (8000, 16000, 32000, 48000)
VAD_FRAME_MS = (10, 20, 30)
AGGRESSIVENESS = 2
FRAME_MS = 20
PADDING_MS = 50
TRIGGER_FRACTION = 0.9
"""Share of the ring buffer that must agree to open or close a segment (the collector's 0.9)."""


def voiced_spans(
    audio: np.ndarray, sr: int = 16000, aggressiveness: int = AGGRESSIVENESS, frame_ms: int = FRAME_MS,
    padding_ms: int = PADDING_MS,
) -> list[tuple[int, int]]:
    """The voiced segments the reference collector yields, as sample ranges.

    Args:
        audio: (N,) int16 samples, or float samples in [-1, 1] (put on the int16 grid first).
        sr: 8000, 16000, 32000 or 48000 Hz.
        aggressiveness: webrtcvad mode, 0 (keeps most) to 3 (drops most); 2 in CMP.
        frame_ms: 10, 20 or 30; 20 in CMP.
        padding_ms: ring-buffer length; ``int(padding_ms / frame_ms)`` frames (50 ms -> 2 in CMP).

    Returns:
        ``(start, stop)`` sample indices in order, disjoint, multiples of the frame length.
    """
    if sr not in VAD_SAMPLE_RATES:
        raise ValueError(f"webrtcvad needs a sample rate in {VAD_SAMPLE_RATES}, got {sr}")
    if frame_ms not in VAD_FRAME_MS:
        raise ValueError(f"webrtcvad needs frames of {VAD_FRAME_MS} ms, got {frame_ms}")
    window = int(padding_ms / frame_ms)
    if window < 1:
        raise ValueError(f"padding_ms must be at least one frame ({frame_ms} ms), got {padding_ms}")
    pcm = to_pcm16(audio).astype("<i2", copy=False).tobytes()
    frame_bytes = 2 * (sr * frame_ms // 1000)
    frames = [pcm[offset:offset + frame_bytes] for offset in range(0, len(pcm) - frame_bytes, frame_bytes)]
    detector = webrtcvad.Vad(aggressiveness)
    # Vad.is_speech only checks the length and calls _webrtcvad.process; every frame here is whole, so
    # the collector calls it directly (same detector state, a fifth less time on real recordings).
    process, state, samples = _webrtcvad.process, detector._vad, frame_bytes // 2
    ring: deque[int] = deque(maxlen=window)
    threshold = TRIGGER_FRACTION * window
    spans: list[tuple[int, int]] = []
    start = None
    for index in range(len(frames)):
        ring.append(index)
        voiced = 0
        for i in ring:  # every buffered frame, every time
            voiced += process(state, sr, frames[i], samples)
        if start is None and voiced > threshold:
            start = ring[0]
            ring.clear()
        elif start is not None and len(ring) - voiced > threshold:
            spans.append((start, index + 1))
            start = None
            ring.clear()
    if start is not None:
        spans.append((start, len(frames)))
    frame_len = frame_bytes // 2
    return [(a * frame_len, b * frame_len) for a, b in spans]


def trim_silence(
    audio: np.ndarray, sr: int = 16000, aggressiveness: int = AGGRESSIVENESS, frame_ms: int = FRAME_MS,
    padding_ms: int = PADDING_MS,
) -> np.ndarray:
    """The voiced segments of ``audio``, concatenated (CMP's ``rm_sil``).

    Args:
        audio: (N,) int16 samples, or float samples in [-1, 1].
        sr, aggressiveness, frame_ms, padding_ms: as for :func:`voiced_spans`.

    Returns:
        (M,) samples of ``audio``'s own dtype (int16 stays int16; floats come back as float32 on the
        int16 grid), M ≤ N a multiple of the frame length; empty if nothing is voiced.
    """
    spans = voiced_spans(audio, sr, aggressiveness, frame_ms, padding_ms)
    source = audio if np.asarray(audio).dtype == np.int16 else to_pcm16(audio).astype(np.float32) / 32768.0
    if not spans:
        return source[:0].copy()
    return np.concatenate([source[a:b] for a, b in spans])
