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

import copy
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from ..corpus.data import photos, target_faces
from ..corpus.format import Corpus
from ..corpus.validate import check_corpus
from ..errors import VoxfaceError
from ..models.biometric_gan2d import CONDITIONING, UPSAMPLING, ConditionalDiscriminator, ConditionalGenerator, VoiceVAE
from ..models.registry import create, register
from ..predictors.bundle import FILES, read_network, write_bundle
from ..predictors.provenance import training_provenance
from ..reports.gan2d_progress import CURVE_FILE, PREFIX, held_out_probe, plot_learning_curve
from ..predictors.voice_to_image import BUNDLE_FILE as VOICE_TO_IMAGE_FILE
from ..predictors.voice_to_image import GENERATOR, VoiceToImage
from ..runs.config import TrainingSettings, count, positive, random_seed, weight
from ..runs.config import setting as choice_or_range
from ..runs.folder import read_run_config, resume_checkpoint, run_folder
from ..runs.distributed import data_loader
from ..runs.trainer import PeriodicEvaluation, fit_module, record_metrics
from ..vision.diff_augment import POLICIES, diff_augment
from ..vision.face_embedding import create_face_embedder
from . import Fitted
from .speaker_cnn import SPEAKER_CNN, load_voice_embeddings

log = logging.getLogger(__name__)

GENERATORS = ("vae", "cgan", "rcgan")
GENERATOR_FILE = FILES[GENERATOR]
TRAINING = "generator-2d-training"
"""The registry kind of the generators' training modules (:mod:`voxface.models.registry`), by the
names of :data:`GENERATORS`: ``create(name, TRAINING, config=config)``."""


@dataclass
class Config(TrainingSettings):
    """Generator settings; ``generator`` is vae, cgan or rcgan (configs/gan2d_*.yaml).

    The defaults are the paper's recipe. ``discriminator`` (concat: the paper's; projection: Miyato &
    Koyama 2018) and ``mismatch_weight`` (> 0: a matching-aware discriminator, Reed et al. 2016) are
    departures for the fast configs, named there. So are the GANs' ``augment`` (a DiffAugment policy
    of :mod:`voxface.vision.diff_augment` for every image the discriminator sees),
    ``feature_matching_weight`` (:class:`ConditionalGANTraining`), ``upsampling``
    (:data:`voxface.models.biometric_gan2d.UPSAMPLING`) and ``ema_decay`` (the saved generator is
    its weights' moving average). ``eval_every`` epochs (0: never) the generator is
    scored on ``eval_per_identity`` held-out voice patches per identity (reports/gan2d_progress.py);
    a checkpoint is kept every ``checkpoint_every`` epochs (``last.ckpt`` is the newest).
    """

    corpus: str = "data/synth9"
    speaker_run: str | None = None
    generator: str = choice_or_range("rcgan", choices=GENERATORS)
    epochs: int = count(40)
    batch_size: int = count(32)
    lr: float = positive(1e-3)
    lr_d: float = positive(2e-4)
    lr_g: float = positive(1e-4)
    l1_weight: float = weight(100.0)
    discriminator: str = choice_or_range("concat", choices=CONDITIONING)
    mismatch_weight: float = weight(0.0)
    augment: str = choice_or_range("none", choices=POLICIES)
    feature_matching_weight: float = weight(0.0)
    upsampling: str = choice_or_range("transposed", choices=UPSAMPLING)
    ema_decay: float = choice_or_range(0.0, ge=0.0, lt=1.0)
    width: int = count(64)
    latent_dim: int = count(32)
    eval_every: int = count(5, minimum=0)
    eval_per_identity: int = count(4)
    checkpoint_every: int = count(10)
    seed: int = random_seed()


class GeneratorTraining(L.LightningModule):
    """A generator's training module: :meth:`train_batch` is the whole step on one batch ``(voice
    (B, 128), image (B, 3, 64, 64), identity (B,) int64)``, given the optimisers and a backward
    function, so that Lightning (``manual_backward``) and a bare PyTorch loop (``loss.backward``, see
    bench/bench_gan2d.py) run the same step. Optimisation is manual; ``steps_per_batch`` optimiser
    steps per batch (Lightning's ``global_step`` counts each)."""

    steps_per_batch = 1

    def __init__(self):
        super().__init__()
        self.automatic_optimization = False

    @property
    def sampler(self) -> torch.nn.Module:
        """The generator whose faces are evaluated and saved (here the trained one)."""
        return self.generator

    def train_batch(self, batch, optimizers, backward) -> dict[str, torch.Tensor]:
        """One training step; returns the detached loss terms by name."""
        raise NotImplementedError

    def training_step(self, batch, batch_idx):
        optimizers = self.optimizers()
        terms = self.train_batch(batch, optimizers if isinstance(optimizers, list) else [optimizers],
                                 self.manual_backward)
        self.log_dict({f"train/{k}": v for k, v in terms.items()}, prog_bar=True)


def optimise(optimizer, loss: torch.Tensor, backward) -> None:
    """zero_grad, ``backward(loss)``, step."""
    optimizer.zero_grad()
    backward(loss)
    optimizer.step()


class VAETraining(GeneratorTraining):
    """Loss per image: Σ pixel squared error + KL(q(z | voice) ‖ N(0, I)); Adam 1e-3."""

    def __init__(self, lr: float = 1e-3, latent_dim: int = 32, width: int = 64):
        super().__init__()
        self.save_hyperparameters()
        self.generator = VoiceVAE(latent_dim=latent_dim, width=width)

    def train_batch(self, batch, optimizers, backward):
        voice, image, _ = batch
        recon, mean, log_var = self.generator(voice)
        reconstruction = F.mse_loss(recon, image, reduction="sum") / len(image)
        kl = -0.5 * torch.sum(1 + log_var - mean ** 2 - log_var.exp()) / len(image)
        loss = reconstruction + kl
        optimise(optimizers[0], loss, backward)
        return {"loss": loss.detach(), "recon": reconstruction.detach(), "kl": kl.detach()}

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)


def mismatched_rows(identity: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """For each row of a batch, a random other row of another identity (-1 where the batch has none).

    Args:
        identity: (B,) int64 identity of each row.

    Returns:
        (B,) int64 row indices.
    """
    other = identity[None, :] != identity[:, None]
    draw = torch.rand(other.shape, generator=generator, device=identity.device).masked_fill(~other, -1.0)
    choice = draw.argmax(dim=1)
    return torch.where(other.any(dim=1), choice, torch.full_like(choice, -1))


class ConditionalGANTraining(GeneratorTraining):
    """Conditional GAN on (image, voice) pairs; ``l1_weight`` > 0 makes it the RC-GAN.

    Discriminator step: BCE(D(real, v), 1) + BCE(D(G(v), v), 0), plus ``mismatch_weight`` ·
    BCE(D(real, v'), 0) with v' the voice of another identity of the batch (GAN-CLS, Reed et al.
    2016: a real face with the wrong voice is also "fake", so D must check the pairing, not only
    the image; 0 in the paper). Every image D sees, real or generated, first goes through the
    ``augment`` policy (DiffAugment, Zhao et al. 2020; "none" in the paper). Generator step:
    BCE(D(G(v), v), 1) + l1_weight · mean |G(v) − real|, plus ``feature_matching_weight`` · the mean
    squared difference between each identity's mean D image features of its generated and of its
    real faces in the batch (feature matching, Salimans et al. 2016, per identity; 0 in the paper).
    Adam 2e-4 (D) and 1e-4 (G) as in the paper; betas (0.5, 0.999) (DCGAN's; the paper does not say).
    Two optimiser steps per batch. With ``ema_decay`` > 0 the faces evaluated and saved are those of
    an exponential moving average of the generator's weights (after every generator step,
    θ̄ ← d·θ̄ + (1 − d)·θ; batch-norm statistics copied), which smooths away the step-to-step jitter of
    adversarial training (Yazıcı et al. 2019; 0 in the paper).
    """

    steps_per_batch = 2

    def __init__(self, lr_d: float = 2e-4, lr_g: float = 1e-4, l1_weight: float = 0.0, width: int = 64,
                 betas=(0.5, 0.999), discriminator: str = "concat", mismatch_weight: float = 0.0,
                 augment: str = "none", feature_matching_weight: float = 0.0, upsampling: str = "transposed",
                 ema_decay: float = 0.0):
        super().__init__()
        self.save_hyperparameters()
        self.generator = ConditionalGenerator(width=width, upsampling=upsampling)
        self.discriminator = ConditionalDiscriminator(width=width, conditioning=discriminator)
        self.generator_average = copy.deepcopy(self.generator).requires_grad_(False) if ema_decay > 0 else None

    @property
    def sampler(self) -> torch.nn.Module:
        """The weights' moving average with ``ema_decay`` > 0, else the trained generator."""
        return self.generator if self.generator_average is None else self.generator_average

    @torch.no_grad()
    def _update_average(self) -> None:
        decay = self.hparams.ema_decay
        for average, current in zip(self.generator_average.parameters(), self.generator.parameters()):
            average.lerp_(current, 1.0 - decay)
        for average, current in zip(self.generator_average.buffers(), self.generator.buffers()):
            average.copy_(current)

    def judge(self, image: torch.Tensor, voice: torch.Tensor) -> torch.Tensor:
        """D's logits (B,) for (B, 3, 64, 64) images, augmented, and (B, 128) voices."""
        return self.discriminator(diff_augment(image, self.hparams.augment), voice)

    def train_batch(self, batch, optimizers, backward):
        voice, real, identity = batch
        opt_d, opt_g = optimizers
        fake = self.generator(voice)
        ones, zeros = torch.ones(len(real), device=real.device), torch.zeros(len(real), device=real.device)
        d_loss = (F.binary_cross_entropy_with_logits(self.judge(real, voice), ones)
                  + F.binary_cross_entropy_with_logits(self.judge(fake.detach(), voice), zeros))
        terms = {}
        if self.hparams.mismatch_weight > 0:
            wrong = mismatched_rows(identity)
            keep = wrong >= 0
            mismatch = F.binary_cross_entropy_with_logits(self.judge(real[keep], voice[wrong[keep]]),
                                                          zeros[keep])
            d_loss = d_loss + self.hparams.mismatch_weight * mismatch
            terms["d_mismatch"] = mismatch.detach()
        optimise(opt_d, d_loss, backward)

        fake_features = self.discriminator.image_features(diff_augment(fake, self.hparams.augment))
        adversarial = F.binary_cross_entropy_with_logits(self.discriminator.logits(fake_features, voice), ones)
        l1 = F.l1_loss(fake, real)
        g_loss = adversarial + self.hparams.l1_weight * l1
        if self.hparams.feature_matching_weight > 0:
            with torch.no_grad():
                real_features = self.discriminator.image_features(diff_augment(real, self.hparams.augment))
            matching = F.mse_loss(identity_means(fake_features, identity), identity_means(real_features, identity))
            g_loss = g_loss + self.hparams.feature_matching_weight * matching
            terms["feature_matching"] = matching.detach()
        optimise(opt_g, g_loss, backward)
        if self.generator_average is not None:
            self._update_average()
        return {"d_loss": d_loss.detach(), "g_adv": adversarial.detach(), "l1": l1.detach(), **terms}

    def configure_optimizers(self):
        betas = tuple(self.hparams.betas)
        return (torch.optim.Adam(self.discriminator.parameters(), lr=self.hparams.lr_d, betas=betas),
                torch.optim.Adam(self.generator.parameters(), lr=self.hparams.lr_g, betas=betas))


def identity_means(features: torch.Tensor, identity: torch.Tensor) -> torch.Tensor:
    """(B, F) features, (B,) int64 identities -> (K, F) the mean of each identity's rows, for the K
    identities of the batch in increasing order."""
    _, row_identity = torch.unique(identity, return_inverse=True)
    one_hot = F.one_hot(row_identity).to(features.dtype).T  # (K, B)
    return (one_hot @ features) / one_hot.sum(dim=1, keepdim=True)


@register("vae", kind=TRAINING)
def _vae(config: Config) -> VAETraining:
    return VAETraining(lr=config.lr, latent_dim=config.latent_dim, width=config.width)


def _gan(config: Config, l1_weight: float) -> ConditionalGANTraining:
    return ConditionalGANTraining(lr_d=config.lr_d, lr_g=config.lr_g, l1_weight=l1_weight, width=config.width,
                                  discriminator=config.discriminator, mismatch_weight=config.mismatch_weight,
                                  augment=config.augment, feature_matching_weight=config.feature_matching_weight,
                                  upsampling=config.upsampling, ema_decay=config.ema_decay)


@register("cgan", kind=TRAINING)
def _cgan(config: Config) -> ConditionalGANTraining:
    return _gan(config, 0.0)


@register("rcgan", kind=TRAINING)
def _rcgan(config: Config) -> ConditionalGANTraining:
    return _gan(config, config.l1_weight)


def training_loader(config: Config, corpus: Corpus, voices: dict[str, np.ndarray]) -> DataLoader:
    """Batches ``(voice (B, 128) float32, target face (B, 3, 64, 64) float32 in [0, 1], identity (B,)
    int64)`` of the speaker run's training and validation voice patches (``voices``:
    :func:`load_voice_embeddings`), shuffled with ``config.seed``; each identity's target is its
    one face of :func:`target_faces`."""
    train = np.isin(voices["role"], ["train", "val"])
    names = voices["identity"][train]
    targets = target_faces(corpus, config.seed)
    missing = sorted(set(names) - set(targets))
    if missing:
        raise VoxfaceError(f"identities {missing[:5]} of {config.corpus} have no face image")
    images = photos(corpus, corpus.faces).astype(np.float32) / 255.0
    x = voices["embedding"][train].astype(np.float32)
    y = np.ascontiguousarray(images[[targets[i] for i in names]].transpose(0, 3, 1, 2))
    label = np.unique(names, return_inverse=True)[1].astype(np.int64)
    return data_loader(TensorDataset(*map(torch.from_numpy, (x, y, label))), config.batch_size, config.seed)


def train_generator(module: GeneratorTraining, run: Path, config: Config, loader: DataLoader,
                    callbacks: tuple = (), progress: bool = True) -> L.Trainer:
    """``config.epochs`` epochs of ``module`` on ``loader`` through the training skeleton, a checkpoint
    every ``config.checkpoint_every`` epochs; the Trainer after fitting."""
    epoch = len(loader) * module.steps_per_batch
    return fit_module(module, run, config, loader, max_steps=config.epochs * epoch, val_every=epoch,
                      checkpoint_every=epoch * config.checkpoint_every, callbacks=callbacks, progress=progress)


def fit(config: Config, run_dir: str | Path, progress: bool = True) -> Fitted:
    """Train ``config.generator`` on (training voice embedding, target face of its identity) pairs."""
    if not config.speaker_run:
        raise VoxfaceError("gan2d needs a trained speaker CNN: pass --speaker-run RUN (voxface train speaker-cnn)")
    with run_folder(run_dir, config, "gan2d") as run:
        corpus = check_corpus(config.corpus)
        voices = load_voice_embeddings(config.speaker_run)
        if read_run_config(config.speaker_run)["corpus"] != config.corpus:
            log.warning("speaker run %s was trained on another corpus path", config.speaker_run)
        loader = training_loader(config, corpus, voices)
        L.seed_everything(config.seed, workers=True)
        module = create(config.generator, TRAINING, config=config)
        callbacks = (held_out_evaluation(run, config, corpus, voices),) if config.eval_every else ()
        resume = resume_checkpoint(run)
        start = time.perf_counter()
        trainer = train_generator(module, run, config, loader, callbacks, progress)
        seconds = time.perf_counter() - start
        generator = module.sampler.cpu().eval()
        identities = len(set(voices["identity"][np.isin(voices["role"], ["train", "val"])]))
        predictor = VoiceToImage(read_network(config.speaker_run, SPEAKER_CNN), generator,
                                 {"generator": config.generator}, training_provenance(corpus, identities))
        if trainer.is_global_zero:
            write_bundle(run / GENERATOR_FILE, GENERATOR, {"network": generator}, generator=config.generator)
            predictor.save(run / VOICE_TO_IMAGE_FILE)
        metrics = {"generator": config.generator, "training_pairs": len(loader.dataset), "epochs": config.epochs,
                   "train_seconds": seconds, "resumed": resume is not None}
        if callbacks and callbacks[0].last:
            metrics["held_out"] = callbacks[0].last
        return Fitted(run, predictor, record_metrics(run, metrics, trainer))


def held_out_evaluation(run: Path, config: Config, corpus: Corpus, voices: dict[str, np.ndarray]) -> PeriodicEvaluation:
    """The run's periodic evaluation: every ``config.eval_every`` epochs its generator's faces for
    ``config.eval_per_identity`` test voice patches per identity, scored by
    :meth:`HeldOutProbe.score` into ``logs/metrics.csv`` / TensorBoard, and
    ``report/learning_curve.png`` redrawn."""
    probe = held_out_probe(corpus, voices, config.seed, config.eval_per_identity, create_face_embedder("dlib"))
    log.info("held-out evaluation every %d epochs on %d voices; tau %.2f, the verifier's ceiling %.1f%%",
             config.eval_every, len(probe.voices), probe.tau, 100 * probe.ceiling)

    def redraw() -> None:
        plot_learning_curve(run / "report" / CURVE_FILE, run / "logs" / "metrics.csv",
                            f"{config.generator}: held-out voices")

    return PeriodicEvaluation(lambda module: probe.score(module.sampler), config.eval_every, PREFIX, redraw)
