"""The one way user audio enters voxface: load, trim silence, check there is enough speech."""

from __future__ import annotations

import os

import numpy as np

from ..errors import VoxfaceError
from .duration import DurationLimit
from .io import PCM16_SCALE, as_mono, load_pcm16, to_pcm16
from .vad import trim_silence

NOISE_FLATNESS = 0.35
"""Median spectral flatness above which a recording is noise, not speech: white noise is about 0.56
(e^-γ for a periodogram), voiced speech far below (0.0-0.02 on FSDD and the synthetic corpus)."""
FLATNESS_FRAME = 512
MAX_FLATNESS_FRAMES = 2000


def prepare_voice(
    path_or_wave: str | os.PathLike | np.ndarray, sr: int = 16000, min_seconds: float = 0.5, vad: bool = True,
    limit: DurationLimit | None = None,
) -> np.ndarray:
    """Load a recording (or take a waveform), remove silence and check that speech remains.

    At 16 kHz this is CMP's front end before the features, sample for sample: the file's int16
    samples (``load_pcm16``: other formats are converted to 16 kHz mono int16 first), then the
    reference collector (``trim_silence``). The result is those int16 samples / 32768.

    Args:
        path_or_wave: an audio file (any format ``load_audio`` reads), or a (N,) / (N, C)
            waveform already at ``sr`` Hz.
        sr: sample rate in Hz of the result; with ``vad`` it must be 8, 16, 32 or 48 kHz.
        min_seconds: shortest accepted duration, before and after silence removal.
        vad: remove silence with webrtcvad as CMP's released preprocessing does (``trim_silence``).
        limit: the longest recording decoded from a file (None: no limit), whatever its header says.

    Returns:
        (N,) float32 mono speech in [-1, 1] at ``sr`` Hz on the int16 grid (every sample · 32768
        is an integer), at least ``min_seconds`` long.

    Raises:
        VoxfaceError: naming the file, if it cannot be loaded (see ``load_audio``), is all zeros,
            is shorter than ``min_seconds``, or has no (or too little) speech after silence removal.
    """
    if isinstance(path_or_wave, np.ndarray):
        source = "the waveform"
        pcm = to_pcm16(as_mono(path_or_wave, source=source))
    else:
        source = f"audio file {os.fspath(path_or_wave)}"
        pcm = load_pcm16(path_or_wave, sr=sr, limit=limit)
    need = f"at least {min_seconds:g} s of speech is needed; use a longer recording"
    if len(pcm) < min_seconds * sr:
        raise VoxfaceError(f"{source} is {len(pcm) / sr:.2f} s long; {need}")
    if not np.any(pcm):
        raise VoxfaceError(f"{source} is silent (every sample is zero); check the recording")
    if not vad:
        return pcm.astype(np.float32) / np.float32(PCM16_SCALE)
    speech = trim_silence(pcm, sr=sr)
    if len(speech) == 0:
        raise VoxfaceError(
            f"no speech found in {source}: it is silent after voice-activity detection; "
            "record closer to the microphone or check that the file holds speech"
        )
    if len(speech) < min_seconds * sr:
        seconds = len(speech) / sr
        raise VoxfaceError(f"{source} has only {seconds:.2f} s of speech after removing silence; {need}")
    return speech.astype(np.float32) / np.float32(PCM16_SCALE)


def check_speech_like(speech: np.ndarray, source: str) -> None:
    """Refuse ``speech`` (the (N,) samples :func:`prepare_voice` kept) when it is noise-like: its median
    spectral flatness over 512-sample frames is above :data:`NOISE_FLATNESS` (voice-activity detection
    lets steady noise through).

    Raises:
        VoxfaceError: naming ``source`` ("audio file x.wav") and the flatness.
    """
    flatness = median_spectral_flatness(speech)
    if flatness > NOISE_FLATNESS:
        raise VoxfaceError(f"no speech found in {source}: it sounds like noise (spectral flatness {flatness:.2f}; "
                           f"speech stays below {NOISE_FLATNESS:g}); record speech closer to the microphone")


def median_spectral_flatness(wave: np.ndarray, frame: int = FLATNESS_FRAME) -> float:
    """Median over Hann frames (half-overlapping, at most ``MAX_FLATNESS_FRAMES`` spread evenly over
    the recording) of geometric / arithmetic mean of the power spectrum of (N,) ``wave``: 1 for flat
    (white) noise, near 0 for tonal or voiced sound; 0 when shorter than a frame."""
    wave = np.asarray(wave, dtype=np.float64)
    if len(wave) < frame:
        return 0.0
    count = min(MAX_FLATNESS_FRAMES, (len(wave) - frame) // (frame // 2) + 1)
    starts = np.linspace(0, len(wave) - frame, count).astype(np.int64)
    frames = wave[starts[:, None] + np.arange(frame)] * np.hanning(frame)
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2 + 1e-20
    return float(np.median(np.exp(np.mean(np.log(power), axis=1)) / np.mean(power, axis=1)))
