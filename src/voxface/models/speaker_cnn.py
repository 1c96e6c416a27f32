"""The biometric-matching paper's speaker CNN ("Cross-modal biometric matching with generative networks",
Sec. III-A, voice embeddings generator; docs/gan2d.md): mel+delta patches -> 128-d voice embedding.

Input (B, 2, 60, 41): channels log-mel (dB) and delta, 60 mel bands, 41 frames, no normalisation
(``audio.features.mel_delta`` gives (W, 60, 41, 2); move the last axis first).

Layers: two blocks Conv2d(3×3, 128 kernels, 'same' padding) → MaxPool(4×2) → ReLU, giving
128 × 3 × 10; then fully connected 3840 → 512 → 128 → N classes with ReLU and dropout 0.5 on the
fully connected layers. The paper's "6 layers" with 4×2 pooling fit a 60-band input only with two
convolution blocks (a third pooling would shrink the 3 remaining bands to 0). The 128-d layer
(after its ReLU) is the voice embedding. The L2 penalty of 0.001 applies to the fully connected
weights (:meth:`fc_l2`).
"""

from __future__ import annotations

import torch
from torch import nn

from .registry import register

N_BANDS, N_FRAMES = 60, 41
EMBED_DIM = 128


@register("speaker_cnn")
class SpeakerCNN(nn.Module):
    """Speaker classifier whose penultimate layer is the voice embedding.

    Args:
        n_classes: number of speakers.
        channels: convolution kernels per layer (128 in the paper).
        dropout: dropout rate on the fully connected layers.
    """

    def __init__(self, n_classes: int, channels: int = 128, dropout: float = 0.5):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(2, channels, 3, padding=1), nn.MaxPool2d((4, 2)), nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 3, padding=1), nn.MaxPool2d((4, 2)), nn.ReLU(inplace=True),
            nn.Flatten(),
        )
        flat = channels * (N_BANDS // 4 // 4) * (N_FRAMES // 2 // 2)
        self.embedding = nn.Sequential(
            nn.Dropout(dropout), nn.Linear(flat, 512), nn.ReLU(inplace=True),
            nn.Dropout(dropout), nn.Linear(512, EMBED_DIM), nn.ReLU(inplace=True),
        )
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(EMBED_DIM, n_classes))
        self.n_classes, self.channels = n_classes, channels

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 2, 60, 41) float32 -> (B, 128) non-negative voice embedding."""
        return self.embedding(self.features(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 2, 60, 41) float32 -> (B, n_classes) logits."""
        return self.classifier(self.embed(x))

    def fc_l2(self) -> torch.Tensor:
        """Sum of squared weights of the fully connected layers (scaled by 0.001 in the loss)."""
        return sum((m.weight ** 2).sum() for m in self.modules() if isinstance(m, nn.Linear))
