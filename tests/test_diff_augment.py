"""DiffAugment transforms against what each one must do, written out per image."""

from __future__ import annotations

import pytest
import torch

from voxface.vision.diff_augment import POLICIES, brightness, contrast, cutout, diff_augment, saturation, translation


def _images(n=6, seed=0):
    return torch.rand(n, 3, 16, 16, generator=torch.Generator().manual_seed(seed))


def test_colour_transforms_are_the_per_image_affine_maps_they_say():
    x = _images()
    torch.manual_seed(3)
    y = brightness(x)
    offset = (y - x).flatten(1)
    assert torch.allclose(offset, offset[:, :1].expand_as(offset), atol=1e-6)  # one offset per image
    assert (offset.abs() <= 0.5).all() and offset[:, 0].std() > 0
    y = saturation(x)
    grey = x.mean(dim=1, keepdim=True)
    factor = ((y - grey) / (x - grey)).flatten(1)
    assert torch.allclose(y.mean(dim=1), grey[:, 0], atol=1e-6)  # the grey level is kept
    assert torch.allclose(factor, factor.median(dim=1, keepdim=True).values.expand_as(factor), atol=1e-3)
    y = contrast(x)
    assert torch.allclose(y.mean(dim=(1, 2, 3)), x.mean(dim=(1, 2, 3)), atol=1e-6)  # the mean is kept
    ratio = (y - y.mean(dim=(1, 2, 3), keepdim=True)).std(dim=(1, 2, 3)) / x.std(dim=(1, 2, 3))
    assert ((ratio >= 0.5 - 1e-5) & (ratio < 1.5)).all()


def test_translation_shifts_each_image_by_whole_pixels_within_an_eighth():
    x = _images() + 1.0  # no zeros inside, so what is shifted in shows
    torch.manual_seed(5)
    y = translation(x)
    for image, shifted in zip(x, y):
        matches = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)
                   if torch.equal(shifted, _shift(image, dy, dx))]
        assert len(matches) == 1  # exactly one shift of at most 16/8 = 2 pixels explains it
    assert len({tuple(map(float, (y[i] == 0).sum(dim=(1, 2)))) for i in range(len(y))}) > 1  # shifts differ


def _shift(image, dy, dx):
    """image (3, H, W) moved down by dy and right by dx, zeros shifted in: the closed form."""
    out = torch.zeros_like(image)
    h, w = image.shape[1:]
    out[:, max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = \
        image[:, max(-dy, 0):h - max(dy, 0), max(-dx, 0):w - max(dx, 0)]
    return out


def test_cutout_zeroes_one_square_of_half_the_side_clipped_at_the_border():
    x = _images(n=200) + 1.0
    torch.manual_seed(7)
    y = cutout(x)
    for shifted in y:
        zero = (shifted == 0).all(dim=0)
        rows, cols = zero.any(dim=1).nonzero()[:, 0], zero.any(dim=0).nonzero()[:, 0]
        assert len(rows) <= 8 and len(cols) <= 8 and int(zero.sum()) == len(rows) * len(cols)  # one rectangle
        assert (rows.diff() == 1).all() and (cols.diff() == 1).all()
    assert int((y == 0).all(dim=1).sum(dim=(1, 2)).max()) == 64  # some squares lie wholly inside


def test_policies_compose_and_pass_gradients():
    x = _images().requires_grad_()
    torch.manual_seed(0)
    diff_augment(x, "color,translation,cutout").sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert diff_augment(x, "none") is x
    assert POLICIES[0] == "none"
    with pytest.raises(ValueError, match="policy"):
        diff_augment(x, "flip")
