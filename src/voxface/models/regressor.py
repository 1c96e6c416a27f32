"""The supervised 3DMM regressor φdec: voice embedding -> standardised 3DMM coefficients."""

from __future__ import annotations

import math

import torch
from torch import nn

from .registry import create, register
from .whitening import WhitenedTargets


@register("cmp_regressor")
class ParameterRegressor(WhitenedTargets):
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
        n_out = int(scale) + n_shape + n_expression
        self.head = nn.Linear(embed_dim, n_out)
        self.register_target_stats(n_out)

    def forward(self, embedding: torch.Tensor) -> torch.Tensor:
        """(B, D) -> (B, [1 +] K + E) de-whitened outputs: (scale,) shape, expression, in that order."""
        return self.dewhiten(self.head(self.dropout(embedding)))

    def split(self, outputs: torch.Tensor) -> dict[str, torch.Tensor]:
        """(B, [1 +] K + E) outputs -> ``scale`` (B,) (ones without a scale head), ``shape`` (B, K),
        ``expression`` (B, E)."""
        scale = outputs[:, 0] if self.scale else torch.ones_like(outputs[:, 0])
        shape, expression = outputs[:, int(self.scale):].split([self.n_shape, self.n_expression], dim=1)
        return {"scale": scale, "shape": shape, "expression": expression}


@register("cmp_gaussian_regressor")
class GaussianRegressor(WhitenedTargets):
    """A predictive distribution instead of a point: heads for the mean, the log-variance and a
    rank-``rank`` covariance factor of the K standardised coefficients (issue: uncertainty).

    The paper's losses act on the mean; the Gaussian negative log-likelihood
    (:meth:`negative_log_likelihood`) trains the covariance ``diag(exp(log_var)) + F Fᵀ``. Targets are
    whitened as in :class:`ParameterRegressor` (buffers ``target_mean``/``target_std``).

    Args:
        embed_dim: D.
        n_shape: K.
        dropout: before the heads.
        rank: R, 0 for a diagonal covariance.
        shared_factor: the factor F is one learnt (K, R) matrix for every voice (the correlations of
            the residuals, e.g. R = K for a full covariance) instead of a function of the voice.
    """

    MIN_LOG_VAR = -12.0
    FACTOR_INIT = 0.1

    def __init__(self, embed_dim: int, n_shape: int, dropout: float = 0.2, rank: int = 0,
                 shared_factor: bool = False):
        super().__init__()
        self.n_shape, self.rank, self.n_expression, self.scale = n_shape, rank, 0, False
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(embed_dim, n_shape)
        self.log_var_head = nn.Linear(embed_dim, n_shape)
        self.factor_head = nn.Linear(embed_dim, n_shape * rank) if rank and not shared_factor else None
        self.shared = nn.Parameter(self.FACTOR_INIT * torch.randn(n_shape, rank)) if rank and shared_factor else None
        self.register_target_stats(n_shape)

    def forward(self, embedding: torch.Tensor) -> torch.Tensor:
        """(B, D) -> (B, K) mean coefficients (the point prediction, as ParameterRegressor's)."""
        return self.dewhiten(self.head(self.dropout(embedding)))

    def split(self, outputs: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"scale": torch.ones_like(outputs[:, 0]), "shape": outputs, "expression": outputs[:, :0]}

    def distribution(self, embedding: torch.Tensor) -> dict[str, torch.Tensor]:
        """(B, D) -> ``mean`` (B, K), ``variance`` (B, K), ``factor`` (B, K, R), de-whitened."""
        h = self.dropout(embedding)
        log_var = self.log_var_head(h).clamp_min(self.MIN_LOG_VAR)
        std = self.target_std
        if self.factor_head is not None:
            factor = self.factor_head(h).view(-1, self.n_shape, self.rank)
        elif self.shared is not None:
            factor = self.shared.expand(h.shape[0], -1, -1)
        else:
            factor = h.new_zeros(h.shape[0], self.n_shape, 0)
        return {"mean": self.head(h) * std + self.target_mean, "variance": log_var.exp() * std ** 2,
                "factor": factor * std[:, None]}

    def member_distributions(self, embedding: torch.Tensor) -> list[dict[str, torch.Tensor]]:
        """[:meth:`distribution`]: the same interface as :class:`RegressorEnsemble`."""
        return [self.distribution(embedding)]

    def negative_log_likelihood(self, embedding: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """(B, D), (B, K) -> (B,) Gaussian NLL of the targets, in whitened units (nats)."""
        d = self.distribution(embedding)
        std = self.target_std
        mean, variance, factor = (d["mean"] - self.target_mean) / std, d["variance"] / std ** 2, d["factor"] / std[:, None]
        whitened = (target - self.target_mean) / std
        if self.rank:
            normal = torch.distributions.LowRankMultivariateNormal(mean, factor, variance)
            return -normal.log_prob(whitened)
        return 0.5 * (variance.log() + (whitened - mean) ** 2 / variance + math.log(2 * math.pi)).sum(-1)


@register("cmp_regressor_ensemble")
class RegressorEnsemble(nn.Module):
    """A deep ensemble of :class:`GaussianRegressor` members (different random initialisations);
    its point prediction is the members' mean, its distribution their moment-matched mixture."""

    def __init__(self, embed_dim: int, n_shape: int, members: int = 5, dropout: float = 0.2, rank: int = 0,
                 shared_factor: bool = False):
        super().__init__()
        self.n_shape, self.n_expression, self.scale = n_shape, 0, False
        self.members = nn.ModuleList(GaussianRegressor(embed_dim, n_shape, dropout, rank, shared_factor)
                                     for _ in range(members))

    def set_target_stats(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        for member in self.members:
            member.set_target_stats(mean, std)

    def forward(self, embedding: torch.Tensor) -> torch.Tensor:
        return torch.stack([m(embedding) for m in self.members]).mean(0)

    split = GaussianRegressor.split

    def member_distributions(self, embedding: torch.Tensor) -> list[dict[str, torch.Tensor]]:
        return [m.distribution(embedding) for m in self.members]

    def negative_log_likelihood(self, embedding: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """(B,) sum of the members' NLLs (each member is trained as its own Gaussian)."""
        return torch.stack([m.negative_log_likelihood(embedding, target) for m in self.members]).sum(0)


UNCERTAINTY = ("none", "gaussian", "ensemble")
"""What the supervised regressor predicts: a point (the paper), a Gaussian, or a deep ensemble of them."""
HEAD = "regressor-head"
"""The registry kind of the regressor heads, by the names of :data:`UNCERTAINTY`."""


@register("none", kind=HEAD)
def _point(embed_dim: int, n_shape: int, dropout: float, **_) -> ParameterRegressor:
    return ParameterRegressor(embed_dim, n_shape, dropout=dropout)


@register("gaussian", kind=HEAD)
def _gaussian(embed_dim: int, n_shape: int, dropout: float, rank: int, shared_factor: bool, **_) -> GaussianRegressor:
    return GaussianRegressor(embed_dim, n_shape, dropout, rank, shared_factor)


@register("ensemble", kind=HEAD)
def _ensemble(embed_dim: int, n_shape: int, dropout: float, members: int, rank: int, shared_factor: bool
              ) -> RegressorEnsemble:
    return RegressorEnsemble(embed_dim, n_shape, members, dropout, rank, shared_factor)


def create_regressor(uncertainty: str, embed_dim: int, n_shape: int, dropout: float = 0.2, members: int = 5,
                     rank: int = 0, shared_factor: bool = False) -> nn.Module:
    """The regressor head of ``uncertainty`` (one of :data:`UNCERTAINTY`); the settings a head does
    not have (``members`` of a single head) are not used."""
    return create(uncertainty, HEAD, embed_dim=embed_dim, n_shape=n_shape, dropout=dropout, members=members,
                  rank=rank, shared_factor=shared_factor)
