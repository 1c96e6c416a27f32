"""Conversions between uint8 RGB images and the networks' [-1, 1] tensors, and image grids."""

from __future__ import annotations

import numpy as np
import torch


def to_unit_range(images: np.ndarray) -> torch.Tensor:
    """(B, H, W, 3) uint8 -> (B, 3, H, W) float32 in [-1, 1]."""
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 127.5 - 1.0


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """(B, 3, H, W) float in [-1, 1] -> (B, H, W, 3) uint8."""
    return ((images.detach().float().clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).cpu().numpy()


def image_grid(images: np.ndarray, columns: int = 8) -> np.ndarray:
    """(N, H, W, 3) uint8 -> one (rows·H, columns·W, 3) uint8 image, row-major, black padding."""
    n, h, w, _ = images.shape
    rows = -(-n // columns)
    grid = np.zeros((rows * h, columns * w, 3), np.uint8)
    for i, tile in enumerate(images):
        r, c = divmod(i, columns)
        grid[r * h:(r + 1) * h, c * w:(c + 1) * w] = tile
    return grid
