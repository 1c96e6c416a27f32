"""The image-to-3D network of CMP (expert and student): MobileNetV2 on 120×120 with 3DMM heads.

Written from the MobileNetV2 paper (Sandler et al. 2018): a stride-2 stem, 17 inverted-residual
blocks (expansion t, channels c, repeats n, first stride s as in its Table 2), a 1×1 convolution to
``last_channel`` features, global average pooling. ``width`` scales the channels (1.0 and 1280
pooled features in CMP; the fast CPU default is smaller), and ``input_size`` is the side images are
resized to (120 in CMP; the fast CPU default feeds the 64×64 images as they are). Two intermediate features are exposed for
distillation: the map after the 9th block ("early": 64·width channels, 8×8 at 120×120 input, 4×4 at
64×64) and the
pooled vector ("pooled").
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .registry import register
from .whitening import WhitenedTargets

INPUT_SIZE = 120
POSE_DIM = 12
"""Pose parameters: the 3×4 scaled-orthographic camera (see :mod:`voxface.methods.expert`)."""

_BLOCKS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
           (6, 320, 1, 1))
"""(expansion t, channels c, repeats n, first stride s) of MobileNetV2's inverted-residual stages."""
EARLY_BLOCK = 9
"""The early distilled feature is the output of this many inverted-residual blocks."""


def _divisible(value: float, divisor: int = 8) -> int:
    """Round channels to a multiple of ``divisor`` without going more than 10% down (as MobileNetV2)."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def _conv_bn(c_in: int, c_out: int, kernel: int, stride: int = 1, groups: int = 1, relu: bool = True):
    layers = [nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, groups=groups, bias=False), nn.BatchNorm2d(c_out)]
    return layers + [nn.ReLU6(inplace=True)] if relu else layers


class InvertedResidual(nn.Module):
    """1×1 expansion -> 3×3 depthwise (stride s) -> 1×1 linear projection, residual when shapes match."""

    def __init__(self, c_in: int, c_out: int, stride: int, expansion: int):
        super().__init__()
        hidden = c_in * expansion
        layers = _conv_bn(c_in, hidden, 1) if expansion != 1 else []
        layers += _conv_bn(hidden, hidden, 3, stride, groups=hidden) + _conv_bn(hidden, c_out, 1, relu=False)
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x) if self.residual else self.body(x)


@register("mobilenet_v2_3dmm")
class ImageTo3D(WhitenedTargets):
    """(B, 3, H, W) image in [-1, 1] (bilinearly resized to ``input_size``) -> whitened pose (12), shape (K) and expression (E) parameters.

    ``forward`` returns a dict: ``pose`` (B, 12), ``shape`` (B, K), ``expression`` (B, E) — all
    de-whitened with the buffers ``target_mean``/``target_std`` (set by :meth:`set_target_stats`) —
    plus the features ``early`` (B, C, input_size/16, input_size/16) and ``pooled`` (B, last_channel).

    Args:
        n_shape: K shape coefficients.
        n_expression: E expression coefficients.
        width: channel multiplier (1.0 in CMP).
        last_channel: pooled feature size (1280 in CMP).
        dropout: dropout before the heads.
        input_size: side of the square input the network sees.
        align_corners: of the bilinear resize to ``input_size`` (True in the CMP release's inference).
    """

    def __init__(self, n_shape: int, n_expression: int, width: float = 1.0, last_channel: int = 1280,
                 dropout: float = 0.2, input_size: int = INPUT_SIZE, align_corners: bool = False):
        super().__init__()
        self.n_shape, self.n_expression = n_shape, n_expression
        self.input_size, self.align_corners = input_size, align_corners
        c = _divisible(32 * width)
        self.stem = nn.Sequential(*_conv_bn(3, c, 3, 2))
        blocks = []
        for t, channels, repeats, stride in _BLOCKS:
            c_out = _divisible(channels * width)
            for r in range(repeats):
                blocks.append(InvertedResidual(c, c_out, stride if r == 0 else 1, t))
                c = c_out
        self.early_blocks = nn.Sequential(*blocks[:EARLY_BLOCK])
        self.late_blocks = nn.Sequential(*blocks[EARLY_BLOCK:], *_conv_bn(c, last_channel, 1))
        self.dropout = nn.Dropout(dropout)
        n_out = POSE_DIM + n_shape + n_expression
        self.head = nn.Linear(last_channel, n_out)
        self.register_target_stats(n_out)  # of the concatenated (pose, shape, expression) targets

    def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        if image.shape[-2:] != (self.input_size, self.input_size):
            image = F.interpolate(image, size=(self.input_size,) * 2, mode="bilinear",
                                  align_corners=self.align_corners)
        early = self.early_blocks(self.stem(image))
        pooled = self.late_blocks(early).mean((2, 3))
        params = self.dewhiten(self.head(self.dropout(pooled)))
        pose, shape, expression = params.split([POSE_DIM, self.n_shape, self.n_expression], dim=1)
        return {"pose": pose, "shape": shape, "expression": expression, "early": early, "pooled": pooled}

    def distilled_feature_sizes(self) -> list[int]:
        """Flattened sizes per item of the distilled features [early map, pooled vector]."""
        was_training = self.training
        with torch.no_grad():
            out = self.eval()(torch.zeros(1, 3, self.input_size, self.input_size))
        self.train(was_training)
        return [out["early"][0].numel(), out["pooled"][0].numel()]
