"""The one way user audio enters voxface: load, trim silence, check there is enough speech."""

from __future__ import annotations

import os

import numpy as np

from ..errors import VoxfaceError
from .io import as_mono, load_audio
from .vad import trim_silence


def prepare_voice(
    path_or_wave: str | os.PathLike | np.ndarray, sr: int = 16000, min_seconds: float = 0.5, vad: bool = True
) -> np.ndarray:
    """Load a recording (or take a waveform), remove silence and check that speech remains.

    Args:
        path_or_wave: an audio file (any format ``load_audio`` reads), or a (N,) / (N, C)
            waveform already at ``sr`` Hz.
        sr: sample rate in Hz of the result; with ``vad`` it must be 8, 16, 32 or 48 kHz.
        min_seconds: shortest accepted duration, before and after silence removal.
        vad: remove silence with webrtcvad (SPEC.md §A settings).

    Returns:
        (N,) float32 mono speech in [-1, 1] at ``sr`` Hz, at least ``min_seconds`` long.

    Raises:
        VoxfaceError: naming the file, if it cannot be loaded (see ``load_audio``), is all zeros,
            is shorter than ``min_seconds``, or has no (or too little) speech after silence removal.
    """
    if isinstance(path_or_wave, np.ndarray):
        source = "the waveform"
        wave = np.clip(as_mono(path_or_wave, source=source), -1.0, 1.0)
    else:
        source = f"audio file {os.fspath(path_or_wave)}"
        wave = load_audio(path_or_wave, sr=sr)
    need = f"at least {min_seconds:g} s of speech is needed; use a longer recording"
    if len(wave) < min_seconds * sr:
        raise VoxfaceError(f"{source} is {len(wave) / sr:.2f} s long; {need}")
    if not np.any(wave):
        raise VoxfaceError(f"{source} is silent (every sample is zero); check the recording")
    if not vad:
        return wave
    speech = trim_silence(wave, sr=sr)
    if len(speech) == 0:
        raise VoxfaceError(
            f"no speech found in {source}: it is silent after voice-activity detection; "
            "record closer to the microphone or check that the file holds speech"
        )
    if len(speech) < min_seconds * sr:
        seconds = len(speech) / sr
        raise VoxfaceError(f"{source} has only {seconds:.2f} s of speech after removing silence; {need}")
    return speech
