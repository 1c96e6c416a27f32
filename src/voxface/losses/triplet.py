"""The triplet loss of CMP (paper Eq. 3) on predicted parameters or meshes."""

from __future__ import annotations

import torch


def squared_triplet_loss(anchor: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor,
                         margin: float = 1.0) -> torch.Tensor:
    """mean over the batch of max(‖a − p‖² − ‖a − n‖² + margin, 0).

    Args:
        anchor, positive, negative: (B, ...) predictions; positive shares the anchor's identity,
            negative does not. Trailing dimensions are flattened.

    Returns:
        Scalar tensor.
    """
    a, p, n = (t.flatten(1) for t in (anchor, positive, negative))
    d_pos = (a - p).pow(2).sum(1)
    d_neg = (a - n).pow(2).sum(1)
    return torch.relu(d_pos - d_neg + margin).mean()
