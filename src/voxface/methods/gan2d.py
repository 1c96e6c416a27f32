"""Voice -> 2D face generators of the biometric-matching paper (``voxface train gan2d``): VAE, C-GAN and
RC-GAN (C-GAN + L1 pixel loss), on the voice embeddings of a speaker-CNN run ("Cross-modal
biometric matching ... with GANs": its speech-to-face generators; docs/gan2d.md).

Each training voice is paired with one fixed, randomly chosen face image of its identity (as the
paper does). Batches are ``(voice (B, 128) float32, image (B, 3, 64, 64) float32 in [0, 1])``. A run
saves ``generator.pt`` (a ``generator-2d`` file of :mod:`voxface.predictors.bundle`),
``voice_to_image.pt`` (speaker CNN + generator: speech -> face image, the file
``voxface serve --image-run`` loads) and ``metrics.json``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F

from ..corpus.data import photos
from ..corpus.format import Corpus
from ..corpus.validate import check_corpus
from ..errors import VoxfaceError
from ..models.biometric_gan2d import ConditionalDiscriminator, ConditionalGenerator, VoiceVAE
from ..models.registry import create, register
from ..predictors.bundle import FILES, read_network, write_bundle
from ..predictors.provenance import training_provenance
from ..predictors.voice_to_image import BUNDLE_FILE as VOICE_TO_IMAGE_FILE
from ..predictors.voice_to_image import VoiceToImage
from ..runs.config import TrainingSettings, count, positive, random_seed, weight
from ..runs.config import setting as choice_or_range
from ..runs.folder import read_run_config, resume_checkpoint, run_folder
from ..runs.trainer import fit_module, record_metrics
from . import Fitted
from .speaker_cnn import SPEAKER_CNN, load_voice_embeddings, tensor_loader

log = logging.getLogger(__name__)

GENERATORS = ("vae", "cgan", "rcgan")
GENERATOR = "generator-2d"
GENERATOR_FILE = FILES[GENERATOR]
TRAINING = "generator-2d-training"
"""The registry kind of the generators' training modules (:mod:`voxface.models.registry`), by the
names of :data:`GENERATORS`: ``create(name, TRAINING, config=config)``."""


@dataclass
class Config(TrainingSettings):
    """Generator settings; ``generator`` is vae, cgan or rcgan (configs/gan2d_*.yaml)."""

    corpus: str = "data/synth9"
    speaker_run: str | None = None
    generator: str = choice_or_range("rcgan", choices=GENERATORS)
    epochs: int = count(40)
    batch_size: int = count(32)
    lr: float = positive(1e-3)
    l1_weight: float = weight(100.0)
    width: int = count(64)
    latent_dim: int = count(32)
    seed: int = random_seed()


class VAETraining(L.LightningModule):
    """Loss per image: Σ pixel squared error + KL(q(z | voice) ‖ N(0, I)); Adam 1e-3."""

    steps_per_batch = 1

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

    steps_per_batch = 2

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


@register("vae", kind=TRAINING)
def _vae(config: Config) -> VAETraining:
    return VAETraining(lr=config.lr, latent_dim=config.latent_dim, width=config.width)


@register("cgan", kind=TRAINING)
def _cgan(config: Config) -> ConditionalGANTraining:
    return ConditionalGANTraining(l1_weight=0.0, width=config.width)


@register("rcgan", kind=TRAINING)
def _rcgan(config: Config) -> ConditionalGANTraining:
    return ConditionalGANTraining(l1_weight=config.l1_weight, width=config.width)


def target_faces(corpus: Corpus, seed: int) -> dict[str, int]:
    """Each identity's training target: one face (index into corpus.faces) chosen at random with ``seed``."""
    rows: dict[str, list[int]] = {}
    for n, f in enumerate(corpus.faces):
        rows.setdefault(f.identity, []).append(n)
    rng = np.random.default_rng(seed)
    return {ident: int(rng.choice(r)) for ident, r in sorted(rows.items())}


def fit(config: Config, run_dir: str | Path, progress: bool = True) -> Fitted:
    """Train ``config.generator`` on (training voice embedding, target face of its identity) pairs."""
    if not config.speaker_run:
        raise VoxfaceError("gan2d needs a trained speaker CNN: pass --speaker-run RUN (voxface train speaker-cnn)")
    with run_folder(run_dir, config, "gan2d") as run:
        corpus = check_corpus(config.corpus)
        voices = load_voice_embeddings(config.speaker_run)
        if read_run_config(config.speaker_run)["corpus"] != config.corpus:
            log.warning("speaker run %s was trained on another corpus path", config.speaker_run)
        train = np.isin(voices["role"], ["train", "val"])
        targets = target_faces(corpus, config.seed)
        missing = sorted(set(voices["identity"][train]) - set(targets))
        if missing:
            raise VoxfaceError(f"identities {missing[:5]} of {config.corpus} have no face image")
        images = photos(corpus, corpus.faces).astype(np.float32) / 255.0
        target_of = np.array([targets[i] for i in voices["identity"][train]])
        x = voices["embedding"][train].astype(np.float32)
        y = np.ascontiguousarray(images[target_of].transpose(0, 3, 1, 2))
        L.seed_everything(config.seed, workers=True)
        module = create(config.generator, TRAINING, config=config)
        loader = tensor_loader(x, y, config.batch_size, True, config.seed)
        epoch = len(loader) * module.steps_per_batch
        resume = resume_checkpoint(run)
        start = time.perf_counter()
        trainer = fit_module(module, run, config, loader, max_steps=config.epochs * epoch, val_every=epoch,
                             progress=progress)
        seconds = time.perf_counter() - start
        generator = module.generator.cpu().eval()
        predictor = VoiceToImage(read_network(config.speaker_run, SPEAKER_CNN), generator,
                                 {"generator": config.generator},
                                 training_provenance(corpus, len(set(voices["identity"][train]))))
        if trainer.is_global_zero:
            write_bundle(run / GENERATOR_FILE, GENERATOR, {"network": generator}, generator=config.generator)
            predictor.save(run / VOICE_TO_IMAGE_FILE)
        metrics = {"generator": config.generator, "training_pairs": len(x), "epochs": config.epochs,
                   "train_seconds": seconds, "resumed": resume is not None}
        return Fitted(run, predictor, record_metrics(run, metrics, trainer))
