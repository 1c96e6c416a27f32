"""The one way user audio enters voxface: load, trim silence, check there is enough speech."""

from __future__ import annotations

import os

import numpy as np

from ..errors import VoxfaceError
from .io import PCM16_SCALE, as_mono, load_pcm16, to_pcm16
from .vad import trim_silence


def prepare_voice(
    path_or_wave: str | os.PathLike | np.ndarray, sr: int = 16000, min_seconds: float = 0.5, vad: bool = True
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
        pcm = load_pcm16(path_or_wave, sr=sr)
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
