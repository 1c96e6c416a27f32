"""Cross-Modal Perceptionist's speech-to-image GAN: generator φg, face trunk, discriminator φdis, identity
classifier φc (the paper's Sec. 3.3, "Synthesizing face images from voices with GANs", and its
supplementary Sec. B, network architecture; docs/unsupervised.md).

Channel widths scale with ``base``: the paper's networks are ``base=64`` (generator 1024→512→256→128→64,
trunk 32→64→128→256→512); the fast CPU default uses a smaller ``base`` with the same layout, and batch
normalisation after the generator's hidden up-convolutions (``norm="batch"``, as DCGAN): without it the
small generator collapses within the fast default's few thousand iterations (docs/unsupervised.md).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .registry import register

IMAGE_SIZE = 64
"""Side of generated and real face images in pixels."""


def noisy_voice_embedding(embedding: torch.Tensor, noise: float = 0.05,
                          generator: torch.Generator | None = None) -> torch.Tensor:
    """CMP's generator input: L2-normalise, add ``noise``·N(0, 1), L2-normalise again. (B, D) -> (B, D)."""
    x = F.normalize(embedding, dim=1)
    if noise > 0:
        x = x + noise * torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    return F.normalize(x, dim=1)


@register("cmp_generator")
class FaceGenerator(nn.Module):
    """φg: (B, D) voice embedding -> (B, 3, 64, 64) face image in [-1, 1].

    ConvTranspose2d(D→16·base, k4, s1, p0) to 4×4, then four k4/s2/p1 up-convolutions halving the
    channels (16·base→8·base→4·base→2·base→base) with ReLU, then ConvTranspose2d(base→3, k1);
    no tanh, the output is clamped to [-1, 1] (as CMP's training). ``norm``: "none" (CMP) or "batch"
    (BatchNorm2d between each hidden up-convolution and its ReLU). ``clamp=False`` returns the raw
    output, as the CMP release's inference code feeds it to the student.
    """

    NORMS = ("none", "batch")

    def __init__(self, embed_dim: int = 64, base: int = 64, norm: str = "none", clamp: bool = True):
        super().__init__()
        if norm not in self.NORMS:
            raise ValueError(f"generator norm must be one of {self.NORMS}, got {norm!r}")
        widths = [embed_dim, 16 * base, 8 * base, 4 * base, 2 * base, base]
        layers: list[nn.Module] = []
        for k, (c_in, c_out) in enumerate(zip(widths[:-1], widths[1:])):
            stride, padding = (1, 0) if k == 0 else (2, 1)
            layers.append(nn.ConvTranspose2d(c_in, c_out, 4, stride, padding))
            if norm == "batch":
                layers.append(nn.BatchNorm2d(c_out))
            layers.append(nn.ReLU(inplace=True))
        layers.append(nn.ConvTranspose2d(base, 3, 1, 1, 0))
        self.net = nn.Sequential(*layers)
        self.embed_dim, self.base, self.norm, self.clamp = embed_dim, base, norm, clamp

    def forward(self, embedding: torch.Tensor) -> torch.Tensor:
        image = self.net(embedding[:, :, None, None])
        return image.clamp(-1.0, 1.0) if self.clamp else image


@register("cmp_face_trunk")
class FaceTrunk(nn.Module):
    """(B, 3, 64, 64) image -> (B, out_dim) feature shared by φdis and φc.

    Conv2d(3→base/2, k1), then k4/s2/p1 convolutions base/2→base→2·base→4·base→8·base with
    LeakyReLU(0.2), then Conv2d(8·base→out_dim, k4, valid) (64×64 input -> 4×4 -> 1×1).
    """

    def __init__(self, base: int = 64, out_dim: int = 64):
        super().__init__()
        widths = [base // 2, base, 2 * base, 4 * base, 8 * base]
        layers: list[nn.Module] = [nn.Conv2d(3, widths[0], 1), nn.LeakyReLU(0.2, inplace=True)]
        for c_in, c_out in zip(widths[:-1], widths[1:]):
            layers += [nn.Conv2d(c_in, c_out, 4, 2, 1), nn.LeakyReLU(0.2, inplace=True)]
        layers.append(nn.Conv2d(widths[-1], out_dim, 4, 1, 0))
        self.net = nn.Sequential(*layers)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.net(image).flatten(1)


@register("cmp_face_critic")
class FaceCritic(nn.Module):
    """Face trunk with the discriminator φdis (Linear(64→1), no bias) and identity classifier φc
    (Linear(64→N), no bias). ``forward`` returns (real/fake logit (B,), identity logits (B, N))."""

    def __init__(self, n_identities: int, base: int = 64, feature_dim: int = 64):
        super().__init__()
        self.trunk = FaceTrunk(base, feature_dim)
        self.discriminator = nn.Linear(feature_dim, 1, bias=False)
        self.classifier = nn.Linear(feature_dim, n_identities, bias=False)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feature = self.trunk(image)
        return self.discriminator(feature).squeeze(1), self.classifier(feature)
