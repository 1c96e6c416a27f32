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

    Args:
        wave: (N,) int16 samples, or float samples in [-1, 1], at 16 kHz, N ≥ 1.

    Returns:
        (N // 160 + 1, 64) float32, natural log of the filter-bank power of int16-scaled samples.
    """
    wave = np.asarray(wave)
    if wave.ndim != 1 or len(wave) == 0:
        raise ValueError(f"expected a non-empty (N,) waveform, got shape {wave.shape}")
    scale = 1.0 if wave.dtype == np.int16 else PCM16_SCALE
    frames = _sphinx_frames(wave.astype(np.float32) * np.float32(scale))
    emphasised = _preemphasise_frames(frames)
    emphasised *= np.hamming(WINDOW_LENGTH).astype(np.float32)
    spectrum = scipy.fft.rfft(emphasised, n=N_FFT, axis=1)
    power = np.square(spectrum.real) + np.square(spectrum.imag)
    return np.log(np.maximum(power @ mel_filterbank(), np.float32(LOG_FLOOR)))


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


def _sphinx_frames(samples: np.ndarray) -> np.ndarray:
    """(N,) float32 → (N // 160 + 1, 400) float32 frames as the Sphinx front end cuts them."""
    n_frames = len(samples) // HOP_LENGTH + 1
    n_whole = 0 if len(samples) < WINDOW_LENGTH else (len(samples) - WINDOW_LENGTH) // HOP_LENGTH + 1
    frames = np.empty((n_frames, WINDOW_LENGTH), dtype=np.float32)
    if n_whole:
        frames[:n_whole] = sliding_window_view(samples, WINDOW_LENGTH)[::HOP_LENGTH][:n_whole]
    for t in range(n_whole, n_frames):  # the (at most 3) frames that run past the end
        frames[t] = np.resize(samples[t * HOP_LENGTH :], WINDOW_LENGTH)
    return frames


def _preemphasise_frames(frames: np.ndarray) -> np.ndarray:
    """(T, L) → (T, L) float32: y[i] = x[i] − 0.97·x[i−1] in each frame, x[−1] = last of the frame before."""
    out = np.empty_like(frames)
    np.multiply(frames[:, :-1], -np.float32(PREEMPHASIS), out=out[:, 1:])
    out[:, 1:] += frames[:, 1:]
    out[:, 0] = frames[:, 0]
    out[1:, 0] -= np.float32(PREEMPHASIS) * frames[:-1, -1]
    return out
