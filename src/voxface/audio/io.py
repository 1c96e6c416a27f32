"""Reading any audio file as mono float32 at one sample rate, and writing 16-bit WAV.

WAV, FLAC, OGG (Vorbis/Opus) and MP3 are decoded by libsndfile (through ``soundfile``; the
libsndfile 1.2 in the wheel reads and writes MP3). Anything libsndfile cannot open (M4A/AAC,
MP4, WMA, WebM, ...) is decoded by an ``ffmpeg`` subprocess writing float WAV to a pipe (no
temporary file), so every format then goes through the same down-mix (mean of the channels) and
resampler (soxr, "HQ"). Given a :class:`~voxface.audio.duration.DurationLimit`, both decoders stop
one block past the limit and the file is refused, whatever its header says about its length.
"""

from __future__ import annotations

import logging
import os
import shutil
import struct
import subprocess
import tempfile
from pathlib import Path
from typing import BinaryIO

import numpy as np
import soundfile as sf
import soxr

from ..errors import VoxfaceError
from ..runs.atomic import atomic_path
from .duration import DurationLimit

logger = logging.getLogger(__name__)

FFMPEG_ONLY_SUFFIXES = frozenset(
    {".m4a", ".aac", ".mp4", ".m4b", ".wma", ".webm", ".mkv", ".mov", ".amr", ".3gp"}
)
"""Containers libsndfile never reads; without ffmpeg the error says to install it."""
PCM16_SCALE = 32768.0
"""Full scale of 16-bit PCM: float sample x is int16 value x · 32768."""
BLOCK_FRAMES = 1 << 16
"""Frames decoded at a time; a limited decode holds at most the limit plus one block."""
LIMIT_MARGIN_S = 0.5
"""ffmpeg is asked for this much past the limit, so that a longer file is seen to be longer."""


def load_audio(path: str | os.PathLike, sr: int = 16000, limit: DurationLimit | None = None) -> np.ndarray:
    """Decode an audio file to mono float32 samples at ``sr`` Hz.

    Args:
        path: any file libsndfile or ffmpeg can decode.
        sr: output sample rate in Hz.
        limit: the longest recording decoded (None: no limit); decoding stops just past it.

    Returns:
        (N,) float32 in [-1, 1]: the mean of the channels, resampled to ``sr``.

    Raises:
        VoxfaceError: naming ``path``, if it is missing, a folder, empty, undecodable (corrupt, or a
            format that needs ffmpeg while ffmpeg is not installed), holds NaN/infinite samples, or
            is longer than ``limit``.
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
    samples, native_sr = _decode(path, limit)
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


def load_pcm16(path: str | os.PathLike, sr: int = 16000, limit: DurationLimit | None = None) -> np.ndarray:
    """A recording as the int16 samples CMP's front end works on (docs/realdata.md, "Audio input").

    A file that is already 16-bit PCM, mono, at ``sr`` Hz is read as its samples, unchanged. Anything
    else (another rate, float or 24-bit samples, several channels, MP3/M4A/...) is converted first:
    decoded to float, averaged over its channels, resampled to ``sr`` (soxr "HQ"), then
    :func:`to_pcm16`.

    Args:
        path: any file ``load_audio`` reads.
        sr: sample rate in Hz of the result.
        limit: as for :func:`load_audio`.

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
            with sf.SoundFile(path) as file:
                return _read_blocks(file, "int16", limit, path)[:, 0]
        except sf.SoundFileError as err:
            raise VoxfaceError(f"cannot read audio file {path}: it is corrupt ({err}); export it again") from err
    return to_pcm16(load_audio(path, sr=sr, limit=limit))


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


def _decode(path: Path, limit: DurationLimit | None) -> tuple[np.ndarray, int]:
    """(N, C) float32 samples and the native sample rate, by libsndfile, else by ffmpeg."""
    try:
        with sf.SoundFile(path) as file:
            return _read_blocks(file, "float32", limit, path), file.samplerate
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
    return _decode_with_ffmpeg(ffmpeg, path, limit)


def _read_blocks(file: sf.SoundFile, dtype: str, limit: DurationLimit | None, path: Path) -> np.ndarray:
    """(N, C) samples of an open file, read a block at a time; refused once past ``limit``."""
    most = None if limit is None else int(limit.seconds * file.samplerate)
    blocks, frames = [], 0
    while True:
        block = file.read(BLOCK_FRAMES, dtype=dtype, always_2d=True)
        if not len(block):
            break
        blocks.append(block)
        frames += len(block)
        if most is not None and frames > most:
            raise limit.refusal(path)
    return np.concatenate(blocks) if blocks else np.zeros((0, file.channels), dtype)


def _ffmpeg_command(ffmpeg: str, path: Path, limit: DurationLimit | None) -> list[str]:
    """ffmpeg decoding every channel of ``path`` at its native rate to float WAV on stdout, stopping
    :data:`LIMIT_MARGIN_S` past ``limit``."""
    bound = [] if limit is None else ["-t", f"{limit.seconds + LIMIT_MARGIN_S:.3f}"]
    return [ffmpeg, "-nostdin", "-v", "error", "-i", str(path), *bound, "-vn", "-map_metadata", "-1",
            "-c:a", "pcm_f32le", "-f", "wav", "pipe:1"]


def _decode_with_ffmpeg(ffmpeg: str, path: Path, limit: DurationLimit | None) -> tuple[np.ndarray, int]:
    """Decode through an ffmpeg pipe: nothing is written to disk, and at most the limit is decoded."""
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(_ffmpeg_command(ffmpeg, path, limit), stdout=subprocess.PIPE, stderr=errors)
        try:
            channels, native_sr = _wav_stream_header(process.stdout)
            samples = _read_pipe(process.stdout, channels, native_sr, limit, path)
        except _NoWav:
            samples = native_sr = None
        finally:
            process.stdout.close()
            process.wait()
        if samples is None or process.returncode != 0:
            errors.seek(0)
            messages = errors.read().decode("utf-8", "replace").strip().splitlines()
            reason = messages[-1] if messages else f"exit status {process.returncode}"
            raise VoxfaceError(
                f"cannot decode audio file {path}: it is corrupt or not audio (ffmpeg: {reason}); "
                "check the file or export it again as WAV"
            )
    return samples, native_sr


class _NoWav(Exception):
    """ffmpeg's output ended before the samples began (it failed)."""


def _wav_stream_header(stream: BinaryIO) -> tuple[int, int]:
    """(channels, sample rate) from the header ffmpeg writes before the samples of a float WAV;
    the stream is left at the first sample (the sizes in a piped header are placeholders)."""
    if _read_exactly(stream, 12)[8:12] != b"WAVE":
        raise _NoWav
    channels = native_sr = None
    while True:
        chunk, size = struct.unpack("<4sI", _read_exactly(stream, 8))
        if chunk == b"data":
            if channels is None:
                raise _NoWav
            return channels, native_sr
        body = _read_exactly(stream, size + size % 2)
        if chunk == b"fmt ":
            channels, native_sr = struct.unpack("<HI", body[2:8])


def _read_exactly(stream: BinaryIO, n: int) -> bytes:
    data = stream.read(n)
    if len(data) < n:
        raise _NoWav
    return data


def _read_pipe(stream: BinaryIO, channels: int, native_sr: int, limit: DurationLimit | None,
               path: Path) -> np.ndarray:
    """(N, C) float32 samples from the rest of the stream; refused once past ``limit``."""
    most = None if limit is None else int(limit.seconds * native_sr)
    frame_bytes = 4 * channels
    parts, frames = [], 0
    while block := stream.read(BLOCK_FRAMES * frame_bytes):
        parts.append(block)
        frames += len(block) // frame_bytes
        if most is not None and frames > most:
            raise limit.refusal(path)
    data = b"".join(parts)
    return np.frombuffer(data[: len(data) - len(data) % frame_bytes], dtype="<f4").reshape(-1, channels).copy()
