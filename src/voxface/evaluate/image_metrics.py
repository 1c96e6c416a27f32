"""Image-quality metrics of the biometric-matching paper's Table II (Sec. IV-C), as pure functions.

Ranges: every function takes float images with values in [0, 1] (``data_range`` = 1), shape
(H, W) grey or (H, W, C) colour, the reference first. Results:

| metric | definition | range |
|---|---|---|
| MAE   | mean |x − y| | [0, 1], lower is better |
| MSE   | mean (x − y)² | [0, 1], lower is better |
| SNR   | 10·log10(Σ x² / Σ (x − y)²), x = reference | dB, higher is better (inf if equal) |
| PSNR  | 10·log10(1 / MSE) | dB, higher is better (inf if equal) |
| PAMSE | mean of the squared error image filtered by a 7×7 Gaussian (σ = 0.8), 'valid' border, on grey levels 0–255 (Xue et al. 2013) | [0, 255²], lower is better |
| SSIM  | Wang et al. 2004: Gaussian window σ = 1.5 (11×11), K1 = 0.01, K2 = 0.03, population covariances, mean over the map without the 5-pixel border, averaged over channels | [−1, 1], higher is better |

Colour images are converted to grey for PAMSE with the ITU-R BT.601 luma weights. MSE, PSNR and
SSIM are scikit-image's (``skimage.metrics``) with these settings; MAE, SNR and PAMSE are computed here.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import convolve2d
from skimage.metrics import mean_squared_error, peak_signal_noise_ratio, structural_similarity

from ..errors import VoxfaceError

LUMA = np.array([0.299, 0.587, 0.114])
"""ITU-R BT.601 weights of R, G, B in the grey level."""
PAMSE_SIGMA = 0.8
PAMSE_SIZE = 7
SSIM_SIGMA = 1.5
SSIM_TRUNCATE = 3.5
"""Gaussian window half-width in sigmas: radius int(3.5·1.5 + 0.5) = 5, an 11×11 window."""
SSIM_K1, SSIM_K2 = 0.01, 0.03

METRICS = ("MAE", "MSE", "SNR", "PSNR", "PAMSE", "SSIM")


def _pair(reference: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(reference, dtype=np.float64)
    y = np.asarray(test, dtype=np.float64)
    if x.shape != y.shape or x.ndim not in (2, 3):
        raise VoxfaceError(f"images must share an (H, W) or (H, W, C) shape, got {x.shape} and {y.shape}")
    return x, y


def mae(reference: np.ndarray, test: np.ndarray) -> float:
    """Mean absolute error of images in [0, 1]."""
    x, y = _pair(reference, test)
    return float(np.mean(np.abs(x - y)))


def mse(reference: np.ndarray, test: np.ndarray) -> float:
    """Mean squared error of images in [0, 1]."""
    x, y = _pair(reference, test)
    return float(mean_squared_error(x, y))


def snr(reference: np.ndarray, test: np.ndarray) -> float:
    """Signal-to-noise ratio in dB: reference energy over error energy."""
    x, y = _pair(reference, test)
    noise = np.sum((x - y) ** 2)
    return float("inf") if noise == 0 else float(10.0 * np.log10(np.sum(x ** 2) / noise))


def psnr(reference: np.ndarray, test: np.ndarray, data_range: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB for images whose values span ``data_range``."""
    x, y = _pair(reference, test)
    return float("inf") if np.array_equal(x, y) else float(peak_signal_noise_ratio(x, y, data_range=data_range))


def gaussian_kernel(size: int, sigma: float) -> np.ndarray:
    """(size, size) float64 Gaussian weights summing to 1, centred (size odd)."""
    r = np.arange(size) - (size - 1) / 2
    g = np.exp(-(r ** 2) / (2 * sigma ** 2))
    kernel = np.outer(g, g)
    return kernel / kernel.sum()


def to_grey_255(image: np.ndarray) -> np.ndarray:
    """(H, W) or (H, W, 3) image in [0, 1] -> (H, W) float64 grey levels in [0, 255]."""
    image = np.asarray(image, dtype=np.float64)
    grey = image @ LUMA if image.ndim == 3 else image
    return 255.0 * grey


def pamse(reference: np.ndarray, test: np.ndarray) -> float:
    """Perceptual-fidelity aware MSE (Xue et al. 2013) on grey levels 0–255.

    The error image (reference − test in grey levels) is convolved with a 7×7 Gaussian (σ = 0.8,
    weights summing to 1) over the 'valid' region only, then its squares are averaged.
    """
    x, y = _pair(reference, test)
    error = to_grey_255(x) - to_grey_255(y)
    if min(error.shape) < PAMSE_SIZE:
        raise VoxfaceError(f"PAMSE needs images of at least {PAMSE_SIZE}x{PAMSE_SIZE} pixels, got {error.shape}")
    filtered = convolve2d(error, gaussian_kernel(PAMSE_SIZE, PAMSE_SIGMA), mode="valid")
    return float(np.mean(filtered ** 2))


def ssim(reference: np.ndarray, test: np.ndarray, data_range: float = 1.0) -> float:
    """Structural similarity (Wang et al. 2004) with a Gaussian window, averaged over channels.

    Local means, variances and the covariance are Gaussian-weighted (σ = 1.5, truncated at 3.5 σ,
    mirrored borders, population covariances); the SSIM map is averaged without its 5-pixel border.
    This is ``skimage.metrics.structural_similarity`` with those settings (Wang et al.'s).
    """
    x, y = _pair(reference, test)
    radius = int(SSIM_TRUNCATE * SSIM_SIGMA + 0.5)
    if min(x.shape[:2]) <= 2 * radius:
        raise VoxfaceError(f"SSIM needs images larger than {2 * radius + 1} pixels a side, got {x.shape}")
    return float(structural_similarity(x, y, data_range=data_range, gaussian_weights=True, sigma=SSIM_SIGMA,
                                       use_sample_covariance=False, K1=SSIM_K1, K2=SSIM_K2,
                                       channel_axis=2 if x.ndim == 3 else None))


def image_quality_per_image(references: np.ndarray, tests: np.ndarray) -> dict[str, np.ndarray]:
    """All six metrics of each image pair.

    Args:
        references, tests: (N, H, W, C) or (N, H, W) float images in [0, 1].

    Returns:
        ``{"MAE", "MSE", "SNR", "PSNR", "PAMSE", "SSIM"}`` -> (N,) float64 (SNR and PSNR in dB).
    """
    references, tests = np.asarray(references), np.asarray(tests)
    if references.shape != tests.shape or len(references) == 0:
        raise VoxfaceError(f"need equal, non-empty image stacks, got {references.shape} and {tests.shape}")
    functions = {"MAE": mae, "MSE": mse, "SNR": snr, "PSNR": psnr, "PAMSE": pamse, "SSIM": ssim}
    return {name: np.array([f(r, t) for r, t in zip(references, tests)]) for name, f in functions.items()}


def image_quality(references: np.ndarray, tests: np.ndarray) -> dict[str, float]:
    """All six metrics averaged over image pairs (shapes as :func:`image_quality_per_image`; PSNR and
    SNR averaged in dB, as per-image scores)."""
    return {name: float(v.mean()) for name, v in image_quality_per_image(references, tests).items()}
