"""The supervised 3DMM regressor φdec: voice embedding -> standardised 3DMM coefficients."""

from __future__ import annotations

import torch
from torch import nn

from .registry import register


@register("cmp_regressor")
class ParameterRegressor(nn.Module):
    """Dropout + linear heads from the embedding to (scale,) shape (and expression) coefficients.

    CMP regresses whitened 3DMM parameters and de-normalises them with the training statistics;
    here the targets are the corpus's standardised coefficients, further whitened by the training
    identities' mean and std (buffers ``target_mean``/``target_std``, set by :meth:`set_target_stats`).
    The CMP release also regresses the mesh's scale (``scale=True``: one more output, first).

    Args:
        embed_dim: input embedding size D.
        n_shape: shape coefficients K.
        n_expression: expression coefficients E (0: no expression head).
        dropout: dropout before the heads (0.2 in CMP).
        scale: also regress a scale factor (the CMP release's ``classifier_scale``).
    """

    def __init__(self, embed_dim: int, n_shape: int, n_expression: int = 0, dropout: float = 0.2,
                 scale: bool = False):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.n_shape, self.n_expression, self.scale = n_shape, n_expression, scale
        self.config = dict(embed_dim=embed_dim, n_shape=n_shape, n_expression=n_expression, dropout=dropout,
                           scale=scale)
        n_out = int(scale) + n_shape + n_expression
        self.head = nn.Linear(embed_dim, n_out)
        self.register_buffer("target_mean", torch.zeros(n_out))
        self.register_buffer("target_std", torch.ones(n_out))

    def set_target_stats(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Whitening statistics of the (K + E) targets over the training set."""
        self.target_mean.copy_(mean)
        self.target_std.copy_(std.clamp_min(1e-6))

    def forward(self, embedding: torch.Tensor) -> torch.Tensor:
        """(B, D) -> (B, [1 +] K + E) de-whitened outputs: (scale,) shape, expression, in that order."""
        return self.head(self.dropout(embedding)) * self.target_std + self.target_mean

    def split(self, outputs: torch.Tensor) -> dict[str, torch.Tensor]:
        """(B, [1 +] K + E) outputs -> ``scale`` (B,) (ones without a scale head), ``shape`` (B, K),
        ``expression`` (B, E)."""
        scale = outputs[:, 0] if self.scale else torch.ones_like(outputs[:, 0])
        shape, expression = outputs[:, int(self.scale):].split([self.n_shape, self.n_expression], dim=1)
        return {"scale": scale, "shape": shape, "expression": expression}
