"""How long a recording is, read from its container before anything is decoded.

A few MB of a compressed format decode to hours of float samples (about 65 MB of memory per
minute of audio on the way to the features), so a size limit alone does not bound the work of
one request. :func:`check_duration` reads the duration from the header (libsndfile for WAV,
FLAC, OGG/Opus and MP3; ``ffprobe`` for what only ffmpeg reads) and refuses a recording past a
limit before it is decoded.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
from pathlib import Path

import soundfile as sf

from ..errors import VoxfaceError

PROBE_TIMEOUT_S = 20
PREDICT_MAX_MINUTES = 10.0
"""Longest recording ``voxface predict`` decodes unless ``--max-minutes`` says otherwise."""
SERVE_MAX_MINUTES = 2.0
"""Longest recording the web page accepts unless ``voxface serve --max-minutes`` says otherwise."""


def audio_seconds(path: str | os.PathLike) -> float | None:
    """Duration of an audio file in seconds from its container, without decoding it; None when
    neither libsndfile nor ffprobe can tell (the decoder then reports the file as unreadable)."""
    path = Path(path)
    try:
        info = sf.info(path)
        if info.samplerate > 0 and info.frames > 0:
            return info.frames / info.samplerate
    except (sf.SoundFileError, RuntimeError, OSError):
        pass
    return _ffprobe_seconds(path)


def _ffprobe_seconds(path: Path) -> float | None:
    ffprobe = shutil.which("ffprobe")
    if ffprobe is None:
        return None
    command = [ffprobe, "-v", "error", "-show_entries", "format=duration", "-of", "default=nw=1:nk=1", str(path)]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=PROBE_TIMEOUT_S, check=False)
        return float(result.stdout.strip().splitlines()[0])
    except (subprocess.TimeoutExpired, ValueError, IndexError):
        return None


def check_duration(path: str | os.PathLike, max_seconds: float | None, name: str | None = None,
                   hint: str = "use a shorter recording") -> float | None:
    """Refuse a recording longer than ``max_seconds`` (None: no limit) before it is decoded.

    Args:
        path: the audio file.
        max_seconds: the longest accepted duration in seconds, or None.
        name: how messages name the file (default: its path).
        hint: what the user can do, for the message; ``{needed}`` in it becomes the recording's length
            in whole minutes, rounded up ("pass --max-minutes {needed} to allow it").

    Returns:
        The duration in seconds, or None when the container does not tell (the decoder then judges
        the file).

    Raises:
        VoxfaceError: naming the file, its duration and the limit, when it is longer.
    """
    if max_seconds is None or not Path(path).is_file():
        return None
    seconds = audio_seconds(path)
    if seconds is not None and seconds > max_seconds:
        raise VoxfaceError(f"audio file {name or path} is {_minutes(seconds)} long; the limit is "
                           f"{_minutes(max_seconds)}: {hint.format(needed=math.ceil(seconds / 60))}")
    return seconds


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} minutes" if seconds >= 60 else f"{seconds:.1f} s"
