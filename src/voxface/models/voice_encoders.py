"""Voice encoders: log-mel (B, 64, T) -> L2-normalised embedding (B, D).

``cmp_voice`` is the CMP voice encoder φv (Cross-Modal Perceptionist, Sec. 3.2 and supplementary
Sec. B; docs/reproducing.md): four Conv1d(k3, s2, p1, no bias) → BN →
ReLU blocks over time with the mel bins as channels (64 → 256 → 384 → 576 → 864), a final
Conv1d(864 → D, k3, s2, p1) with bias, average pooling over time; ≈ 2.67 M parameters at D = 64.
It is pre-trained as a speaker classifier (:class:`SpeakerClassifier`) and then frozen.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .registry import register

CMP_CHANNELS = (256, 384, 576, 864)


@register("cmp_voice")
class CMPVoiceEncoder(nn.Module):
    """CMP's 1-D CNN voice encoder.

    Args:
        in_bins: mel bins (input channels), 64 in CMP.
        embed_dim: embedding size D, 64 in CMP.
    """

    def __init__(self, in_bins: int = 64, embed_dim: int = 64):
        super().__init__()
        layers: list[nn.Module] = []
        channels = (in_bins, *CMP_CHANNELS)
        for c_in, c_out in zip(channels[:-1], channels[1:]):
            layers += [nn.Conv1d(c_in, c_out, 3, stride=2, padding=1, bias=False),
                       nn.BatchNorm1d(c_out), nn.ReLU(inplace=True)]
        layers.append(nn.Conv1d(channels[-1], embed_dim, 3, stride=2, padding=1, bias=True))
        self.net = nn.Sequential(*layers)
        self.embed_dim = embed_dim

    def pooled(self, x: torch.Tensor) -> torch.Tensor:
        """(B, in_bins, T) float32 -> (B, D) time-averaged features before normalisation."""
        return self.net(x).mean(dim=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, in_bins, T) float32 -> (B, D) L2-normalised embedding."""
        return F.normalize(self.pooled(x), dim=1)

    def frame_statistics(self, x: torch.Tensor) -> torch.Tensor:
        """(B, in_bins, T) -> (B, 2·256) mean and standard deviation over time of the first block's
        output: the descriptor of a voice that :mod:`voxface.evaluate.in_distribution` compares with the
        training voices (it separates real from synthetic speech far better than the embedding)."""
        first = self.net[:3](x)
        return torch.cat([first.mean(2), first.std(2)], dim=1)


class SpeakerClassifier(nn.Module):
    """Encoder + linear identity head, for pre-training the encoder with cross-entropy.

    Args:
        encoder: a voice encoder with ``pooled`` and ``embed_dim``.
        n_speakers: number of training identities.
    """

    def __init__(self, encoder: CMPVoiceEncoder, n_speakers: int):
        super().__init__()
        self.encoder = encoder
        self.head = nn.Linear(encoder.embed_dim, n_speakers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, in_bins, T) -> (B, n_speakers) logits."""
        return self.head(self.encoder.pooled(x))
