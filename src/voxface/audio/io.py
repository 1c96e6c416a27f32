"""Reading any audio file as mono float32 at one sample rate, and writing 16-bit WAV.

WAV, FLAC, OGG (Vorbis/Opus) and MP3 are decoded by libsndfile (through ``soundfile``; the
libsndfile 1.2 in the wheel reads and writes MP3). Anything libsndfile cannot open (M4A/AAC,
MP4, WMA, WebM, ...) is decoded by an ``ffmpeg`` subprocess into a temporary float WAV, so every
format then goes through the same down-mix (mean of the channels) and resampler (soxr, "HQ").
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from ..errors import VoxfaceError
from ..runs.atomic import atomic_path

logger = logging.getLogger(__name__)

FFMPEG_ONLY_SUFFIXES = frozenset(
    {".m4a", ".aac", ".mp4", ".m4b", ".wma", ".webm", ".mkv", ".mov", ".amr", ".3gp"}
)
"""Containers libsndfile never reads; without ffmpeg the error says to install it."""
PCM16_SCALE = 32768.0
"""Full scale of 16-bit PCM: float sample x is int16 value x · 32768."""


def load_audio(path: str | os.PathLike, sr: int = 16000) -> np.ndarray:
    """Decode an audio file to mono float32 samples at ``sr`` Hz.

    Args:
        path: any file libsndfile or ffmpeg can decode.
        sr: output sample rate in Hz.

    Returns:
        (N,) float32 in [-1, 1]: the mean of the channels, resampled to ``sr``.

    Raises:
        VoxfaceError: naming ``path``, if it is missing, a folder, empty, undecodable (corrupt, or a
            format that needs ffmpeg while ffmpeg is not installed) or holds NaN/infinite samples.
    """
    if sr <= 0:
        raise ValueError(f"sample rate must be positive, got {sr}")
    path = Path(path)
    if not path.exists():
        raise VoxfaceError(f"audio file not found: {path} (check the path)")
    if path.is_dir():
        raise VoxfaceError(f"{path} is a folder, not an audio file (give the path of one recording)")
    if path.stat().st_size == 0:
        raise VoxfaceError(f"audio file {path} is empty (0 bytes); record or export it again")
    samples, native_sr = _decode(path)
    return resample_mono(samples, native_sr, sr, source=f"audio file {path}")


def resample_mono(samples: np.ndarray, native_sr: int, sr: int = 16000, source: str = "waveform") -> np.ndarray:
    """Decoded samples -> what :func:`load_audio` makes of them: the mean of the channels, resampled
    from ``native_sr`` to ``sr`` (soxr "HQ"), clipped to [-1, 1].

    Args:
        samples: (N,) or (N, C) samples at ``native_sr`` Hz (integers scaled by their type's range).
        native_sr, sr: sample rates in Hz.
        source: how error messages name the input.

    Returns:
        (N',) float32 mono at ``sr`` Hz. For int16 samples this is what ``load_audio`` gives for
        them written as a 16-bit WAV.
    """
    wave = as_mono(samples, source=source)
    if native_sr != sr:
        wave = soxr.resample(wave, native_sr, sr, quality="HQ").astype(np.float32, copy=False)
    return np.clip(wave, -1.0, 1.0)


def load_pcm16(path: str | os.PathLike, sr: int = 16000) -> np.ndarray:
    """A recording as the int16 samples CMP's front end works on (docs/realdata.md, "Audio input").

    A file that is already 16-bit PCM, mono, at ``sr`` Hz is read as its samples, unchanged. Anything
    else (another rate, float or 24-bit samples, several channels, MP3/M4A/...) is converted first:
    decoded to float, averaged over its channels, resampled to ``sr`` (soxr "HQ"), then
    :func:`to_pcm16`.

    Args:
        path: any file ``load_audio`` reads.
        sr: sample rate in Hz of the result.

    Returns:
        (N,) int16 samples at ``sr`` Hz.

    Raises:
        VoxfaceError: as :func:`load_audio`.
    """
    path = Path(path)
    try:
        info = sf.info(path) if path.is_file() and path.stat().st_size else None
    except (sf.SoundFileError, RuntimeError):
        info = None
    if info is not None and info.subtype == "PCM_16" and info.channels == 1 and info.samplerate == sr:
        try:
            return sf.read(path, dtype="int16")[0]
        except sf.SoundFileError as err:
            raise VoxfaceError(f"cannot read audio file {path}: it is corrupt ({err}); export it again") from err
    return to_pcm16(load_audio(path, sr=sr))


def to_pcm16(wave: np.ndarray) -> np.ndarray:
    """Put a waveform on the 16-bit PCM grid: int16 stays as it is; floats become round(x·32768).

    Args:
        wave: (N,) int16 samples, or float samples with full scale 1 (values beyond are clipped).

    Returns:
        (N,) int16: ``clip(round_half_even(x * 32768), -32768, 32767)``. For float samples that came
        from int16 ones (x = s / 32768, as libsndfile decodes 16-bit files) this gives s back exactly.
    """
    wave = np.asarray(wave)
    if wave.dtype == np.int16:
        return wave
    if not np.issubdtype(wave.dtype, np.floating):
        raise ValueError(f"expected int16 or float samples, got {wave.dtype}")
    return np.clip(np.round(wave.astype(np.float64) * PCM16_SCALE), -PCM16_SCALE, PCM16_SCALE - 1).astype(np.int16)


def as_mono(samples: np.ndarray, source: str = "waveform") -> np.ndarray:
    """Check decoded samples and average their channels.

    Args:
        samples: (N,) or (N, C) samples, channels last. Floats are taken as full scale = 1;
            integers are scaled by their type's range (int16 by 1/32768).
        source: how error messages name the input (``"audio file x.wav"``).

    Returns:
        (N,) float32 mono samples (not resampled, not clipped).

    Raises:
        VoxfaceError: naming ``source``, if there are no samples or some are NaN or infinite.
    """
    samples = np.asarray(samples)
    if samples.ndim not in (1, 2):
        raise VoxfaceError(f"{source} has shape {samples.shape}; expected (samples,) or (samples, channels)")
    if np.issubdtype(samples.dtype, np.integer):
        samples = samples.astype(np.float32) / np.float32(-np.iinfo(samples.dtype).min)
    samples = samples.astype(np.float32, copy=False)
    if samples.size == 0:
        raise VoxfaceError(f"{source} contains no samples; record or export it again")
    if not np.isfinite(samples).all():
        raise VoxfaceError(f"{source} contains NaN or infinite samples; re-export it as 16-bit PCM WAV")
    return samples.mean(axis=1, dtype=np.float32) if samples.ndim == 2 else samples


def save_wav(path: str | os.PathLike, wave: np.ndarray, sr: int) -> None:
    """Write a mono or (N, C) waveform as 16-bit PCM WAV, atomically.

    Args:
        path: destination; its folder is created.
        wave: (N,) or (N, C) float samples in [-1, 1] (values beyond are clipped), or int16
            samples (written unchanged).
        sr: sample rate in Hz.
    """
    wave = np.asarray(wave)
    if wave.dtype != np.int16:
        wave = np.clip(wave.astype(np.float32), -1.0, 1.0)
    with atomic_path(path) as tmp:
        sf.write(tmp, wave, sr, subtype="PCM_16", format="WAV")


def _decode(path: Path) -> tuple[np.ndarray, int]:
    """(N, C) float32 samples and the native sample rate, by libsndfile, else by ffmpeg."""
    try:
        samples, native_sr = sf.read(path, dtype="float32", always_2d=True)
        return samples, native_sr
    except sf.SoundFileError as err:
        libsndfile_error = str(err)
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        if path.suffix.lower() in FFMPEG_ONLY_SUFFIXES:
            raise VoxfaceError(
                f"cannot read audio file {path}: {path.suffix} files need ffmpeg, which is not installed "
                "(install it, e.g. `apt-get install ffmpeg` or `conda install ffmpeg`, "
                "or convert the file to WAV)"
            )
        raise VoxfaceError(
            f"cannot read audio file {path}: it is corrupt or not an audio format libsndfile knows "
            f"({libsndfile_error}); convert it to WAV or FLAC, or install ffmpeg to read more formats"
        )
    logger.debug("libsndfile could not open %s (%s); decoding with ffmpeg", path, libsndfile_error)
    return _decode_with_ffmpeg(ffmpeg, path)


def _decode_with_ffmpeg(ffmpeg: str, path: Path) -> tuple[np.ndarray, int]:
    """Decode every channel at the native rate into a temporary float WAV and read it back."""
    with tempfile.TemporaryDirectory(prefix="voxface-ffmpeg-") as tmp_dir:
        decoded = Path(tmp_dir) / "decoded.wav"
        command = [ffmpeg, "-nostdin", "-v", "error", "-i", str(path), "-vn"]
        command += ["-c:a", "pcm_f32le", "-f", "wav", str(decoded)]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0 or not decoded.is_file():
            messages = result.stderr.strip().splitlines()
            reason = messages[-1] if messages else f"exit status {result.returncode}"
            raise VoxfaceError(
                f"cannot decode audio file {path}: it is corrupt or not audio (ffmpeg: {reason}); "
                "check the file or export it again as WAV"
            )
        samples, native_sr = sf.read(decoded, dtype="float32", always_2d=True)
    return samples, native_sr
