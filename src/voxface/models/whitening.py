"""Targets regressed in whitened units: the buffers a regressing network keeps for them."""

from __future__ import annotations

import torch
from torch import nn


class WhitenedTargets(nn.Module):
    """A network whose head regresses ``(target - target_mean) / target_std`` (buffers of shape
    (n,), set from the training targets by :meth:`set_target_stats`; identity until then)."""

    def register_target_stats(self, n: int) -> None:
        """Add the (n,) buffers ``target_mean`` (zeros) and ``target_std`` (ones)."""
        self.register_buffer("target_mean", torch.zeros(n))
        self.register_buffer("target_std", torch.ones(n))

    def set_target_stats(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Whitening statistics (n,) of the targets over the training set (std floored at 1e-6)."""
        self.target_mean.copy_(mean)
        self.target_std.copy_(std.clamp_min(1e-6))

    def dewhiten(self, raw: torch.Tensor) -> torch.Tensor:
        """(B, n) head outputs -> (B, n) targets."""
        return raw * self.target_std + self.target_mean

    def whiten(self, targets: torch.Tensor) -> torch.Tensor:
        """(B, n) targets -> the (B, n) whitened values the head regresses."""
        return (targets - self.target_mean) / self.target_std
