"""How long a recording may be, and how long it is, read from its container before anything is decoded.

A few MB of a compressed format decode to hours of float samples (about 65 MB of memory per
minute of audio on the way to the features), so a size limit alone does not bound the work of
one request. A :class:`DurationLimit` is enforced twice: :meth:`DurationLimit.check_header` reads
the duration from the header (libsndfile for WAV, FLAC, OGG/Opus and MP3; ``ffprobe`` for what only
ffmpeg reads) and refuses a recording past the limit before it is decoded; and ``load_audio``
decodes at most the limit's worth of samples and refuses when there are more, because a header
may state no duration (a streamed WebM/Opus file from a browser's MediaRecorder) or understate it.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
from dataclasses import dataclass
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


@dataclass(frozen=True)
class DurationLimit:
    """The longest recording accepted, and what the refusal tells the user.

    Args:
        seconds: the longest accepted duration in seconds.
        hint: what the user can do; ``{needed}`` in it becomes the recording's length in whole
            minutes, rounded up ("pass --max-minutes {needed} to allow it"), or, when decoding
            stopped at the limit before the end was known, a number above the limit.
    """

    seconds: float
    hint: str = "use a shorter recording"

    def check_header(self, path: str | os.PathLike, name: str | None = None) -> float | None:
        """Refuse ``path`` when its header says it is longer than the limit (nothing is decoded).

        Returns:
            The duration in seconds, or None when the container does not tell (decoding then
            enforces the limit).

        Raises:
            VoxfaceError: naming the file (``name``, default its path), its duration and the limit.
        """
        if not Path(path).is_file():
            return None
        seconds = audio_seconds(path)
        if seconds is not None and seconds > self.seconds:
            raise self.refusal(name or path, seconds)
        return seconds

    def refusal(self, name: str | os.PathLike, seconds: float | None = None) -> VoxfaceError:
        """The one-line error for a recording of ``seconds`` (None: decoding stopped at the limit)."""
        if seconds is not None:
            return VoxfaceError(f"audio file {name} is {_minutes(seconds)} long; the limit is "
                                f"{_minutes(self.seconds)}: {self.hint.format(needed=math.ceil(seconds / 60))}")
        above = f"N (more than {self.seconds / 60:g})"
        return VoxfaceError(f"audio file {name} is longer than the limit of {_minutes(self.seconds)} (its container "
                            f"does not say how long; decoding stopped at the limit): {self.hint.format(needed=above)}")


def check_duration(path: str | os.PathLike, max_seconds: float | None, name: str | None = None,
                   hint: str = "use a shorter recording") -> float | None:
    """``DurationLimit(max_seconds, hint).check_header(path, name)``; None (no check) when
    ``max_seconds`` is None."""
    return None if max_seconds is None else DurationLimit(max_seconds, hint).check_header(path, name)


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} minutes" if seconds >= 60 else f"{seconds:.1f} s"
