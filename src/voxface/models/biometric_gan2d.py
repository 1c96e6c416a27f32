"""Voice-conditioned 64×64 face generators of the biometric-matching paper ("Cross-modal biometric
matching with generative networks", Sec. III-C, voice to face decoder, and Sec. IV: VAE, C-GAN,
RC-GAN; docs/gan2d.md).

Images are (B, 3, 64, 64) float32 in [0, 1] (min-max normalised RGB); the condition is the 128-d
speaker-CNN voice embedding (B, 128). ``width`` sets the channel counts; the paper's figures give
no numbers the text keeps, so widths are a setting (64 by default, small enough for 2 CPU cores).

- ``voice_vae``: encoder of two fully connected layers (128 units + ReLU) to a Gaussian latent
  (mean, log-variance); decoder fully connected → two transposed convolutions (16 → 32 → 64).
- ``cgan_generator``: the embedding (no noise) → two fully connected layers → four transposed
  convolutions (4 → 8 → 16 → 32 → 64). RC-GAN uses the same network with an extra L1 loss.
- ``cgan_discriminator``: four stride-2 convolutions (64 → 4), the features concatenated with the
  voice embedding, one fully connected layer → a real/fake logit (the paper); or, with
  ``conditioning="projection"``, a projection discriminator (Miyato & Koyama 2018).
"""

from __future__ import annotations

import torch
from torch import nn

from .registry import register

VOICE_DIM = 128
IMAGE_SIZE = 64


@register("voice_vae")
class VoiceVAE(nn.Module):
    """Voice embedding -> Gaussian latent -> face image.

    Args:
        voice_dim: condition size (128).
        latent_dim: size of the Gaussian latent.
        width: channels of the first transposed convolution's output (decoder: 2·width at 16×16).
    """

    def __init__(self, voice_dim: int = VOICE_DIM, latent_dim: int = 32, width: int = 64):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(voice_dim, 128), nn.ReLU(inplace=True),
                                     nn.Linear(128, 128), nn.ReLU(inplace=True))
        self.mean = nn.Linear(128, latent_dim)
        self.log_var = nn.Linear(128, latent_dim)
        self.decoder_fc = nn.Sequential(nn.Linear(latent_dim, 2 * width * 16 * 16), nn.ReLU(inplace=True))
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(2 * width, width, 4, 2, 1), nn.ReLU(inplace=True),
            nn.ConvTranspose2d(width, 3, 4, 2, 1), nn.Sigmoid())
        self.width = width

    def encode(self, voice: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 128) -> mean, log-variance (B, latent_dim)."""
        h = self.encoder(voice)
        return self.mean(h), self.log_var(h)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """(B, latent_dim) -> (B, 3, 64, 64) in [0, 1]."""
        return self.decoder(self.decoder_fc(z).view(len(z), 2 * self.width, 16, 16))

    def forward(self, voice: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Training pass with the reparameterisation trick: (image, mean, log-variance)."""
        mean, log_var = self.encode(voice)
        z = mean + torch.randn_like(mean) * torch.exp(0.5 * log_var)
        return self.decode(z), mean, log_var

    def generate(self, voice: torch.Tensor) -> torch.Tensor:
        """(B, 128) -> (B, 3, 64, 64): the decoded latent mean (deterministic)."""
        return self.decode(self.encode(voice)[0])


UPSAMPLING = ("transposed", "resize")
"""How the C-GAN generator doubles its resolution: ``transposed`` (the paper: 4×4 transposed
convolutions of stride 2) or ``resize`` (nearest-neighbour ×2, then a 3×3 convolution: Odena et al.
2016; the transposed kernels' uneven overlap draws a checkerboard that a generator trained by a
discriminator alone keeps, and a face detector then rejects; 2.25× the multiply-adds per layer)."""


def _upsample(c_in: int, c_out: int, upsampling: str, bias: bool) -> list[nn.Module]:
    """Layers that map (B, c_in, H, W) to (B, c_out, 2H, 2W) as ``upsampling`` says."""
    if upsampling == "transposed":
        return [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=bias)]
    return [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c_in, c_out, 3, 1, 1, bias=bias)]


@register("cgan_generator")
class ConditionalGenerator(nn.Module):
    """Voice embedding -> face image, no noise input (the identity is all that should vary).

    Args:
        upsampling: one of :data:`UPSAMPLING`.
    """

    def __init__(self, voice_dim: int = VOICE_DIM, width: int = 64, upsampling: str = "transposed"):
        super().__init__()
        if upsampling not in UPSAMPLING:
            raise ValueError(f"upsampling must be one of {UPSAMPLING}, got {upsampling!r}")
        self.fc = nn.Sequential(nn.Linear(voice_dim, 256), nn.ReLU(inplace=True),
                                nn.Linear(256, 8 * width * 4 * 4), nn.BatchNorm1d(8 * width * 4 * 4),
                                nn.ReLU(inplace=True))
        layers: list[nn.Module] = []
        channels = (8 * width, 4 * width, 2 * width, width)
        for c_in, c_out in zip(channels[:-1], channels[1:]):
            layers += [*_upsample(c_in, c_out, upsampling, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]
        layers += [*_upsample(width, 3, upsampling, bias=True), nn.Sigmoid()]
        self.net = nn.Sequential(*layers)
        self.width = width

    def forward(self, voice: torch.Tensor) -> torch.Tensor:
        """(B, 128) -> (B, 3, 64, 64) in [0, 1]."""
        return self.net(self.fc(voice).view(len(voice), 8 * self.width, 4, 4))

    generate = forward


CONDITIONING = ("concat", "projection")
"""How the discriminator sees the voice: ``concat`` (the paper: the flattened 4×4 features and the
voice embedding, one linear layer) or ``projection`` (Miyato & Koyama 2018).

With ``concat`` the logit is w·h(image) + u·voice + b: the voice adds a term that does not depend
on the image, so D(real, v) − D(fake, v) is the same for every voice and the adversarial gradient
cannot tell the generator which identity to draw. ``projection`` scores ψ(h) + ⟨P·v̂, h⟩ with h the
pooled features and v̂ the unit-length voice, so the voice weighs the image's features; as in that
paper the discriminator is spectrally normalised (Miyato et al. 2018) instead of batch-normalised."""


@register("cgan_discriminator")
class ConditionalDiscriminator(nn.Module):
    """(image, voice embedding) -> logit that the image is a real face of the voice's identity.

    Args:
        conditioning: one of :data:`CONDITIONING`.
    """

    def __init__(self, voice_dim: int = VOICE_DIM, width: int = 64, conditioning: str = "concat"):
        super().__init__()
        if conditioning not in CONDITIONING:
            raise ValueError(f"conditioning must be one of {CONDITIONING}, got {conditioning!r}")
        projection = conditioning == "projection"
        norm = nn.utils.parametrizations.spectral_norm if projection else (lambda layer: layer)
        layers: list[nn.Module] = [norm(nn.Conv2d(3, width, 4, 2, 1)), nn.LeakyReLU(0.2, inplace=True)]
        channels = (width, 2 * width, 4 * width, 8 * width)
        for c_in, c_out in zip(channels[:-1], channels[1:]):
            layers += [norm(nn.Conv2d(c_in, c_out, 4, 2, 1, bias=projection))]
            layers += [] if projection else [nn.BatchNorm2d(c_out)]
            layers += [nn.LeakyReLU(0.2, inplace=True)]
        self.conditioning = conditioning
        if projection:
            self.features = nn.Sequential(*layers, nn.Flatten(2))
            self.score = norm(nn.Linear(8 * width, 1))
            self.voice_projection = norm(nn.Linear(voice_dim, 8 * width, bias=False))
        else:
            self.features = nn.Sequential(*layers, nn.Flatten())
            self.score = nn.Linear(8 * width * 4 * 4 + voice_dim, 1)

    def image_features(self, image: torch.Tensor) -> torch.Tensor:
        """(B, 3, 64, 64) -> (B, F): what the logit reads of the image (concat: the flattened 4×4
        features, F = 128·width; projection: their sum over the positions, F = 8·width)."""
        h = self.features(image)
        return h if self.conditioning == "concat" else h.sum(dim=2)

    def forward(self, image: torch.Tensor, voice: torch.Tensor) -> torch.Tensor:
        """(B, 3, 64, 64), (B, 128) -> (B,) logits."""
        return self.logits(self.image_features(image), voice)

    def logits(self, features: torch.Tensor, voice: torch.Tensor) -> torch.Tensor:
        """(B, F) :meth:`image_features`, (B, 128) voices -> (B,) logits."""
        if self.conditioning == "concat":
            return self.score(torch.cat([features, voice], dim=1)).squeeze(1)
        voice = nn.functional.normalize(voice, dim=1)
        return self.score(features).squeeze(1) + (self.voice_projection(voice) * features).sum(dim=1)
