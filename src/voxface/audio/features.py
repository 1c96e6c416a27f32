"""Speech features of the two papers' voice encoders: CMP's log-mel (Cross-Modal Perceptionist, Sec. 4)
and the biometric-matching paper's mel+delta patches (Sec. IV-A).

``cmp_logmel``: CMP's 64-bin log-mel ("fbank") features. CMP reuses the preprocessing of Wen et
al., which computes them with the CMU Sphinx ``MFC`` front end (sphinxtrain's ``mfcc.py``) on
16-bit sample values read by ``scipy.io.wavfile``. This module reproduces that front end,
vectorised, including its quirks:

- The spectrum is of int16 sample values (float input is scaled by 32768), so the 1e-5 floor of
  the log sits where it did in the release (CMVN removes the constant offset otherwise). Computed
  in float32 (the release: float64); on the 18 real clips of ``shared/data/cmp_reference`` the
  features differ from the official ones by at most 6e-5 (tested).
- T = N // 160 + 1 frames, frame t starting at sample 160·t. A frame that runs past the end of
  the signal is its remaining samples repeated cyclically up to 400 (``np.resize``); a frame
  starting at the very end is all zeros. VAD output is a whole number of 20 ms frames, so N is a
  multiple of 160 and that last frame is always there: its only non-zero sample is the
  pre-emphasised prior (a click, −0.97·0.08·previous sample). In the released features
  (``shared/data/cmp_features``) the last frame of every utterance averages −2.7 to −8.1 after
  CMVN and is the lowest value of 73–100% of the bins; in ours on one FSDD speaker, of 69–100%
  (mean 91%, tested).
- Pre-emphasis is applied per frame; the first sample of frame t uses as "previous sample" the last
  sample of frame t−1 (sample 160·t + 239 for overlapping frames), and 0 for the first frame.
  The release carried that prior over from the previous utterance it processed, which no
  stateless function can reproduce; it only touches sample 0 of frame 0.
  Pre-emphasising the whole signal instead (y[n] = x[n] − 0.97·x[n−1]) changes one sample per
  frame, weighted 0.08 by the Hamming window, but that sample is not small: it differs from the
  per-frame value by 0.97·(x[n−1] − x[n+239]), a broadband click that dominates the bins where the
  frame has little energy (between formants, above the band of a narrow-band recording). Measured
  on the 500 FSDD recordings of one speaker (8 kHz originals upsampled to 16 kHz), after CMVN
  (unit-variance features): mean |Δ| 0.29 over all but the last frame, up to 3.1, and 1.8 in the
  last frame (the floor instead of the click); see ``tests/test_features.py``. That is not
  negligible and the per-frame variant costs no more, so it is the one used.

``mel_delta``: the 60 × 41 × 2 log-mel + delta patches of the biometric-matching paper.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import librosa
import numpy as np
import scipy.fft
from numpy.lib.stride_tricks import sliding_window_view

from .io import PCM16_SCALE

SAMPLE_RATE = 16000

PREEMPHASIS = 0.97
WINDOW_LENGTH = 400
"""Samples per CMP analysis frame (25 ms)."""
HOP_LENGTH = 160
"""Samples between CMP frames (10 ms, 100 frames/s)."""
N_FFT = 1024
N_MELS = 64
F_MIN = 20.0
F_MAX = 7200.0
LOG_FLOOR = 1e-5
MIN_FRAMES = 1000
BLOCK_FRAMES = 128
"""Frames transformed together: 128 · 1024 float32 (512 KiB) with their spectrum fit in the L2 cache."""

DELTA_N_MELS = 60
DELTA_FRAMES = 41
DELTA_N_FFT = 1024
DELTA_HOP = 512
DELTA_WINDOW = DELTA_HOP * (DELTA_FRAMES - 1)
"""Samples per mel+delta patch: 20,480 (1.28 s at 16 kHz); patches overlap by half."""


def hz_to_mel(f_hz: np.ndarray | float) -> np.ndarray:
    """The HTK/Sphinx mel scale, 2595·log10(1 + f/700), of frequencies in Hz."""
    return 2595.0 * np.log10(1.0 + np.asarray(f_hz, dtype=np.float64) / 700.0)


def mel_to_hz(mel: np.ndarray | float) -> np.ndarray:
    """Inverse of ``hz_to_mel``: frequencies in Hz."""
    return 700.0 * (10.0 ** (np.asarray(mel, dtype=np.float64) / 2595.0) - 1.0)


@functools.lru_cache(maxsize=8)
def mel_filterbank(
    n_filters: int = N_MELS,
    n_fft: int = N_FFT,
    sr: int = SAMPLE_RATE,
    fmin: float = F_MIN,
    fmax: float = F_MAX,
) -> np.ndarray:
    """Triangular mel filters as the Sphinx ``MFC`` front end builds them.

    The ``n_filters + 2`` edges are equally spaced in mel from ``fmin`` to ``fmax`` and rounded
    (half up) to FFT bins; filter k rises linearly from edge k to its peak at edge k+1 and falls
    to edge k+2 (zero at both ends). Its peak height is 2 / (its width in Hz), so every filter's
    weights sum to ``n_fft / sr`` (equal area).

    Returns:
        (n_fft // 2 + 1, n_filters) float32, read-only (cached); column k is filter k (ascending
        frequency).

    Raises:
        ValueError: if ``fmax`` exceeds Nyquist or some filter is narrower than two FFT bins.
    """
    if fmax > sr / 2:
        raise ValueError(f"fmax {fmax} Hz exceeds the Nyquist frequency {sr / 2} Hz")
    mel_lo, mel_hi = hz_to_mel(fmin), hz_to_mel(fmax)
    edges_hz = mel_to_hz(mel_lo + (mel_hi - mel_lo) / (n_filters + 1) * np.arange(n_filters + 2))
    bin_hz = sr / n_fft
    edges = np.floor(edges_hz / bin_hz + 0.5).astype(np.int64)
    left, centre, right = edges[:-2], edges[1:-1], edges[2:]
    if np.any(centre <= left) or np.any(right <= centre):
        raise ValueError(f"{n_filters} mel filters over {fmin}-{fmax} Hz are too narrow for n_fft={n_fft}")
    k = np.arange(n_fft // 2 + 1)[:, None]
    rising = (k - left) / (centre - left)
    falling = (right - k) / (right - centre)
    height = 2.0 / ((right - left) * bin_hz)
    bank = (np.clip(np.minimum(rising, falling), 0.0, None) * height).astype(np.float32)
    bank.flags.writeable = False
    return bank


def log_mel_energies(wave: np.ndarray) -> np.ndarray:
    """CMP's log mel energies before normalisation: log(clip(|rfft|² · filters, 1e-5)).

    Computed in blocks of :data:`BLOCK_FRAMES` frames, so that the working set (the frames zero-padded
    to ``N_FFT``, their spectrum) stays in the CPU cache and no buffer grows with the recording.

    Args:
        wave: (N,) int16 samples, or float samples in [-1, 1], at 16 kHz, N ≥ 1.

    Returns:
        (N // 160 + 1, 64) float32, natural log of the filter-bank power of int16-scaled samples.
    """
    wave = np.asarray(wave)
    if wave.ndim != 1 or len(wave) == 0:
        raise ValueError(f"expected a non-empty (N,) waveform, got shape {wave.shape}")
    samples = wave.astype(np.float32)
    if wave.dtype != np.int16:
        samples *= np.float32(PCM16_SCALE)
    n_frames = len(samples) // HOP_LENGTH + 1
    energies = np.empty((n_frames, N_MELS), dtype=np.float32)
    block = np.zeros((min(BLOCK_FRAMES, n_frames), N_FFT), dtype=np.float32)  # columns 400: stay zero
    frames = _SphinxFrames(samples)
    for start in range(0, n_frames, BLOCK_FRAMES):
        rows = block[: min(BLOCK_FRAMES, n_frames - start)]
        frames.windowed(start, out=rows[:, :WINDOW_LENGTH])
        _filter_bank_energies(scipy.fft.rfft(rows, axis=1), out=energies[start : start + len(rows)])
    np.maximum(energies, np.float32(LOG_FLOOR), out=energies)
    return np.log(energies, out=energies)


def cmp_logmel(wave: np.ndarray, min_frames: int = MIN_FRAMES) -> np.ndarray:
    """CMP's voice-encoder input: per-utterance normalised 64-bin log-mel features
    (Cross-Modal Perceptionist, Sec. 4: 25 ms windows, each bin normalised per utterance).

    Args:
        wave: (N,) int16 samples or float samples in [-1, 1] at 16 kHz, silence already removed
            (``trim_silence``).
        min_frames: shorter utterances are tiled (whole, from the start) and cropped to this.

    Returns:
        (max(T, min_frames), 64) float32, T = N // 160 + 1 frames at 100 per second. Each bin is
        normalised over the T frames to zero mean and unit variance (std + float32 eps) before tiling.
    """
    feats = log_mel_energies(wave)
    feats -= feats.mean(axis=0)
    feats /= feats.std(axis=0) + np.finfo(np.float32).eps
    n_frames = len(feats)
    if n_frames < min_frames:
        feats = np.tile(feats, (-(-min_frames // n_frames), 1))[:min_frames]
    return feats


def mel_delta(wave: np.ndarray) -> np.ndarray:
    """The biometric-matching paper's voice input: 60 log-mel bands × 41 frames × (value, delta).

    The log-mel spectrogram of the whole clip is computed once (librosa: n_fft 1024, Hann window,
    hop 512, centred frames with zero padding, 60 Slaney mel bands over 0–8 kHz, power in dB,
    10·log10(max(power, 1e-10)), no top-dB clipping and no normalisation), then cut into patches
    of 41 frames = 512·(41−1) samples, one every 20 frames (50% overlap): the frames of patch w are
    centred on samples 10240·w + 512·k, k = 0..40. Samples after the last whole patch are dropped.
    A clip shorter than one patch (1.28 s) is first tiled (repeated from its start) to one patch.
    The delta channel is ``librosa.feature.delta`` (width 9, "interp" edges) within each patch.

    Args:
        wave: (N,) float samples in [-1, 1] at 16 kHz, N ≥ 1.

    Returns:
        (W, 60, 41, 2) float32, W = 1 + (max(N, 20480) − 20480) // 10240; [..., 0] log-mel in dB,
        [..., 1] its delta over frames (dB per frame).
    """
    wave = np.asarray(wave, dtype=np.float32)
    if wave.ndim != 1 or len(wave) == 0:
        raise ValueError(f"expected a non-empty (N,) waveform, got shape {wave.shape}")
    if len(wave) < DELTA_WINDOW:
        wave = np.resize(wave, DELTA_WINDOW)
    power = librosa.feature.melspectrogram(
        y=wave, sr=SAMPLE_RATE, n_fft=DELTA_N_FFT, hop_length=DELTA_HOP, n_mels=DELTA_N_MELS, power=2.0
    )
    log_mel = librosa.power_to_db(power, ref=1.0, amin=1e-10, top_db=None)
    step = DELTA_WINDOW // 2
    n_patches = 1 + (len(wave) - DELTA_WINDOW) // step
    patches = sliding_window_view(log_mel, DELTA_FRAMES, axis=1)[:, :: step // DELTA_HOP][:, :n_patches]
    patches = np.ascontiguousarray(patches.transpose(1, 0, 2))
    deltas = librosa.feature.delta(patches, axis=-1)
    return np.stack([patches, deltas], axis=-1).astype(np.float32)


def _filter_bank_energies(spectrum: np.ndarray, out: np.ndarray) -> None:
    """``out`` (m, 64) = |spectrum|² @ ``mel_filterbank()`` for a (m, 513) complex64 ``spectrum``, which
    is overwritten by its squares."""
    squares = spectrum.view(np.float32)  # (m, 2·513): re, im, re, im, ...
    np.square(squares, out=squares)
    for band in _filter_bands():
        out[:, band.filters] = squares[:, band.squares] @ band.weights


class _FilterBand(NamedTuple):
    """Consecutive mel filters and the stretch of the spectrum they weigh (see :func:`_filter_bands`)."""

    filters: slice
    squares: slice
    weights: np.ndarray


@functools.lru_cache(maxsize=1)
def _filter_bands(n_bands: int = 8) -> tuple[_FilterBand, ...]:
    """The filter bank cut into ``n_bands`` groups of consecutive filters, applied to interleaved squares.

    A mel filter is non-zero on a few dozen of the 513 bins, so the dense (513, 64) product is mostly
    zeros: each band multiplies only the bins its filters cover, about 1/n_bands of the work, and
    skips only zero weights. Its weights are (2·bins, filters) float32, read-only, rows 2k and 2k+1
    both filter row k, so that (re₀², im₀², re₁², ...) @ weights = |X|² @ filters.
    """
    bank = mel_filterbank()
    bands = []
    for filters in np.array_split(np.arange(bank.shape[1]), n_bands):
        rows = np.nonzero(bank[:, filters].any(axis=1))[0]
        weights = np.repeat(bank[rows[0] : rows[-1] + 1, filters], 2, axis=0)
        weights.flags.writeable = False
        bands.append(_FilterBand(slice(filters[0], filters[-1] + 1), slice(2 * rows[0], 2 * rows[-1] + 2), weights))
    return tuple(bands)


@functools.lru_cache(maxsize=1)
def _hamming() -> np.ndarray:
    window = np.hamming(WINDOW_LENGTH).astype(np.float32)
    window.flags.writeable = False
    return window


class _SphinxFrames:
    """The analysis frames of (N,) float32 samples as the Sphinx front end cuts and pre-emphasises them.

    T = N // 160 + 1 frames; frame t holds samples 160·t … 160·t + 399. A frame that runs past the
    end is its remaining samples repeated cyclically up to 400 (``np.resize``; all zeros when none
    remain). Each frame is pre-emphasised on its own, y[i] = x[i] − 0.97·x[i−1], where x[−1] is the
    last sample of the frame before (0 for frame 0). Frames that lie inside the signal share the
    pre-emphasised signal, so only their first sample is computed per frame.
    """

    def __init__(self, samples: np.ndarray):
        self.samples = samples
        self.n_frames = len(samples) // HOP_LENGTH + 1
        self.n_whole = 0 if len(samples) < WINDOW_LENGTH else (len(samples) - WINDOW_LENGTH) // HOP_LENGTH + 1
        emphasised = samples[:-1] * -np.float32(PREEMPHASIS)
        emphasised += samples[1:]  # emphasised[n - 1] = x[n] − 0.97·x[n − 1]
        self.inner = (sliding_window_view(emphasised, WINDOW_LENGTH - 1)[::HOP_LENGTH][: self.n_whole] if self.n_whole
                      else np.empty((0, WINDOW_LENGTH - 1), dtype=np.float32))  # y[1:] of the inner frames
        self.inner_first = samples[: HOP_LENGTH * self.n_whole : HOP_LENGTH].copy()  # y[0] of the inner frames
        self.inner_first[1:] -= np.float32(PREEMPHASIS) * samples[WINDOW_LENGTH - 1 :: HOP_LENGTH][: self.n_whole - 1]
        self.tail = self._tail_frames()

    def windowed(self, start: int, out: np.ndarray) -> None:
        """Write frames start … start + len(out) − 1, pre-emphasised and Hamming-windowed, into ``out`` (m, 400)."""
        window = _hamming()
        inner_stop = min(start + len(out), self.n_whole)
        if start < inner_stop:
            np.multiply(self.inner[start:inner_stop], window[1:], out=out[: inner_stop - start, 1:])
            np.multiply(self.inner_first[start:inner_stop], window[0], out=out[: inner_stop - start, 0])
        for t in range(max(start, self.n_whole), start + len(out)):
            np.multiply(self.tail[t - self.n_whole], window, out=out[t - start])

    def _tail_frames(self) -> np.ndarray:
        """(T − n_whole, 400) pre-emphasised frames that run past the end of the signal (at most 3)."""
        raw = [np.resize(self.samples[t * HOP_LENGTH :], WINDOW_LENGTH) for t in range(self.n_whole, self.n_frames)]
        prior = self.samples[HOP_LENGTH * (self.n_whole - 1) + WINDOW_LENGTH - 1] if self.n_whole else np.float32(0)
        tail = np.empty((len(raw), WINDOW_LENGTH), dtype=np.float32)
        for row, frame in zip(tail, raw):
            np.multiply(frame[:-1], -np.float32(PREEMPHASIS), out=row[1:])
            row[1:] += frame[1:]
            row[0] = frame[0] - np.float32(PREEMPHASIS) * prior
            prior = frame[-1]
        return tail
