"""Differentiable augmentation of a discriminator's inputs (DiffAugment: Zhao et al. 2020,
"Differentiable Augmentation for Data-Efficient GAN Training").

A discriminator shown only a handful of real images (gan2d pairs every voice with one face of its
identity: 9 distinct real images in the paper's closed set) memorises them and stops giving the
generator a useful gradient. Augmenting real *and* generated images alike, in every discriminator
call of both steps, with transforms the gradient passes through, keeps it from memorising pixels
without teaching the generator to draw augmented faces.

Images are (B, 3, H, W) float tensors in [0, 1]; every transform draws its own per-image parameters
from torch's global generator.
"""

from __future__ import annotations

import torch

POLICIES = ("none", "color", "color,translation", "color,translation,cutout")
"""The settings a config may name: comma-separated transforms, applied in this order."""


def brightness(x: torch.Tensor) -> torch.Tensor:
    """Adds one offset per image, uniform in [-0.5, 0.5)."""
    return x + (torch.rand(len(x), 1, 1, 1, device=x.device, dtype=x.dtype) - 0.5)


def saturation(x: torch.Tensor) -> torch.Tensor:
    """Scales each pixel's distance from its grey level by a factor uniform in [0, 2)."""
    grey = x.mean(dim=1, keepdim=True)
    return (x - grey) * (2 * torch.rand(len(x), 1, 1, 1, device=x.device, dtype=x.dtype)) + grey


def contrast(x: torch.Tensor) -> torch.Tensor:
    """Scales each image's distance from its mean by a factor uniform in [0.5, 1.5)."""
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (torch.rand(len(x), 1, 1, 1, device=x.device, dtype=x.dtype) + 0.5) + mean


def translation(x: torch.Tensor, ratio: float = 0.125) -> torch.Tensor:
    """Shifts each image by whole pixels, up to ``ratio`` of its side in each direction; what is shifted
    in is 0."""
    b, _, h, w = x.shape
    pad_h, pad_w = int(h * ratio + 0.5), int(w * ratio + 0.5)
    dy = torch.randint(-pad_h, pad_h + 1, (b, 1), device=x.device)
    dx = torch.randint(-pad_w, pad_w + 1, (b, 1), device=x.device)
    rows = torch.arange(h, device=x.device)[None, :] + pad_h + dy  # (B, H)
    cols = torch.arange(w, device=x.device)[None, :] + pad_w + dx  # (B, W)
    padded = torch.nn.functional.pad(x, (pad_w, pad_w, pad_h, pad_h))
    batch = torch.arange(b, device=x.device)[:, None, None]
    return padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)


def cutout(x: torch.Tensor, ratio: float = 0.5) -> torch.Tensor:
    """Sets a square of ``ratio`` of the side (a quarter of the image at 0.5), centred anywhere, to 0."""
    b, _, h, w = x.shape
    size_h, size_w = int(h * ratio + 0.5), int(w * ratio + 0.5)
    top = torch.randint(0, h, (b, 1, 1), device=x.device) - size_h // 2
    left = torch.randint(0, w, (b, 1, 1), device=x.device) - size_w // 2
    rows = torch.arange(h, device=x.device)[None, :, None]
    cols = torch.arange(w, device=x.device)[None, None, :]
    inside = (rows >= top) & (rows < top + size_h) & (cols >= left) & (cols < left + size_w)  # (B, H, W)
    return x * (~inside).unsqueeze(1).to(x.dtype)


_TRANSFORMS = {"color": (brightness, saturation, contrast), "translation": (translation,), "cutout": (cutout,)}


def diff_augment(x: torch.Tensor, policy: str) -> torch.Tensor:
    """``x`` through every transform of ``policy`` (one of :data:`POLICIES`)."""
    if policy not in POLICIES:
        raise ValueError(f"augmentation policy must be one of {POLICIES}, got {policy!r}")
    if policy == "none":
        return x
    for name in policy.split(","):
        for transform in _TRANSFORMS[name]:
            x = transform(x)
    return x
