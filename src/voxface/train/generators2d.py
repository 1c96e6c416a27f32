"""Training the voice-to-face generators: VAE, C-GAN and RC-GAN (C-GAN + L1 pixel loss).

Batches are ``(voice (B, 128) float32, image (B, 3, 64, 64) float32 in [0, 1])``.
"""

from __future__ import annotations

import lightning as L
import torch
import torch.nn.functional as F

from ..models.generators2d import ConditionalDiscriminator, ConditionalGenerator, VoiceVAE

GENERATORS = ("vae", "cgan", "rcgan")


class VAETraining(L.LightningModule):
    """Loss per image: Σ pixel squared error + KL(q(z | voice) ‖ N(0, I)); Adam 1e-3."""

    def __init__(self, lr: float = 1e-3, latent_dim: int = 32, width: int = 64):
        super().__init__()
        self.save_hyperparameters()
        self.generator = VoiceVAE(latent_dim=latent_dim, width=width)

    def training_step(self, batch, batch_idx):
        voice, image = batch
        recon, mean, log_var = self.generator(voice)
        reconstruction = F.mse_loss(recon, image, reduction="sum") / len(image)
        kl = -0.5 * torch.sum(1 + log_var - mean ** 2 - log_var.exp()) / len(image)
        loss = reconstruction + kl
        self.log_dict({"train/loss": loss, "train/recon": reconstruction, "train/kl": kl}, prog_bar=True)
        return loss

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)


class ConditionalGANTraining(L.LightningModule):
    """Conditional GAN on (image, voice) pairs; ``l1_weight`` > 0 makes it the RC-GAN.

    Discriminator step: BCE(D(real, v), 1) + BCE(D(G(v), v), 0). Generator step:
    BCE(D(G(v), v), 1) + l1_weight · mean |G(v) − real|. Adam 2e-4 (D) and 1e-4 (G) as in the
    paper; betas (0.5, 0.999) (DCGAN's; the paper does not say).
    Two optimiser steps per batch, so Lightning's ``global_step`` counts 2 per batch.
    """

    def __init__(self, lr_d: float = 2e-4, lr_g: float = 1e-4, l1_weight: float = 0.0, width: int = 64,
                 betas=(0.5, 0.999)):
        super().__init__()
        self.save_hyperparameters()
        self.automatic_optimization = False
        self.generator = ConditionalGenerator(width=width)
        self.discriminator = ConditionalDiscriminator(width=width)

    def training_step(self, batch, batch_idx):
        voice, real = batch
        opt_d, opt_g = self.optimizers()
        fake = self.generator(voice)
        ones, zeros = torch.ones(len(real), device=real.device), torch.zeros(len(real), device=real.device)

        d_loss = (F.binary_cross_entropy_with_logits(self.discriminator(real, voice), ones)
                  + F.binary_cross_entropy_with_logits(self.discriminator(fake.detach(), voice), zeros))
        opt_d.zero_grad()
        self.manual_backward(d_loss)
        opt_d.step()

        adversarial = F.binary_cross_entropy_with_logits(self.discriminator(fake, voice), ones)
        l1 = F.l1_loss(fake, real)
        g_loss = adversarial + self.hparams.l1_weight * l1
        opt_g.zero_grad()
        self.manual_backward(g_loss)
        opt_g.step()
        self.log_dict({"train/d_loss": d_loss, "train/g_adv": adversarial, "train/l1": l1}, prog_bar=True)

    def configure_optimizers(self):
        betas = tuple(self.hparams.betas)
        return (torch.optim.Adam(self.discriminator.parameters(), lr=self.hparams.lr_d, betas=betas),
                torch.optim.Adam(self.generator.parameters(), lr=self.hparams.lr_g, betas=betas))


def make_generator_module(generator: str, lr: float, l1_weight: float, width: int, latent_dim: int) -> L.LightningModule:
    """The training module of ``generator`` ("vae", "cgan" or "rcgan"). ``lr`` is the VAE's rate."""
    if generator == "vae":
        return VAETraining(lr=lr, latent_dim=latent_dim, width=width)
    if generator in ("cgan", "rcgan"):
        return ConditionalGANTraining(l1_weight=l1_weight if generator == "rcgan" else 0.0, width=width)
    raise ValueError(f"unknown generator {generator!r}; expected one of {GENERATORS}")


def optimizer_steps_per_batch(generator: str) -> int:
    """How much Lightning's global_step advances per batch (2 for the GANs' two optimisers)."""
    return 1 if generator == "vae" else 2
