"""Speaker pre-training of the CMP voice encoder (``voxface train speaker``): a speaker classifier
over the training identities' log-mel crops, whose encoder is then frozen (Cross-Modal
Perceptionist, Sec. 3.1: the voice encoder is pre-trained for speaker recognition and kept fixed).

Data: the corpus's training identities, ``held_out_per_identity`` utterances of each held out for
validation; random 800-frame crops, one random length in [300, 800] per batch. Saves ``encoder.pt``
(a ``voice-encoder`` file, :mod:`voxface.predictors.bundle`) and ``metrics.json`` (validation accuracy).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import torch

from ..corpus.data import held_out_mask, utterance_set
from ..corpus.datasets import SpeakerCrops, random_batch_length
from ..corpus.validate import check_corpus
from ..errors import VoxfaceError
from ..models.voice_encoders import CMPVoiceEncoder, SpeakerClassifier
from ..predictors.bundle import FILES, write_bundle
from ..runs.config import TrainingSettings, count, positive, random_seed
from ..runs.distributed import data_loader
from ..runs.folder import run_folder
from ..runs.trainer import ClassifierSteps, fit_module, record_metrics
from . import Fitted

log = logging.getLogger(__name__)

KIND = "speaker"
ENCODER = "voice-encoder"
ENCODER_FILE = FILES[ENCODER]


@dataclass
class Config(TrainingSettings):
    """Speaker pre-training settings (configs/speaker_fast.yaml, configs/speaker_paper.yaml)."""

    corpus: str = "data/synthetic"
    max_steps: int = count(600)
    batch_size: int = count(32)
    lr: float = positive(1e-3)
    cosine_decay: bool = True
    embed_dim: int = count(64)
    held_out_per_identity: int = count(1)
    val_every: int = count(200)
    seed: int = random_seed()
    workers: int = count(2, minimum=0)
    feature_shards: str | None = None


class SpeakerPretraining(ClassifierSteps):
    """Encoder + identity head trained with cross-entropy; validation accuracy on held-out utterances.

    Args:
        n_speakers: number of training identities.
        lr: Adam learning rate; betas as CMP's (0.5, 0.999).
        embed_dim: encoder output size (64 in CMP).
        cosine_steps: decay the learning rate to zero along a cosine over this many steps
            (0: constant learning rate).
    """

    def __init__(self, n_speakers: int, lr: float = 2e-4, embed_dim: int = 64, betas=(0.5, 0.999),
                 cosine_steps: int = 0):
        super().__init__()
        self.save_hyperparameters()
        self.model = SpeakerClassifier(CMPVoiceEncoder(embed_dim=embed_dim), n_speakers)

    @property
    def encoder(self) -> CMPVoiceEncoder:
        return self.model.encoder

    def training_inputs(self, crops: torch.Tensor) -> torch.Tensor:
        return random_batch_length(crops)

    def configure_optimizers(self):
        optimizer = torch.optim.Adam(self.parameters(), lr=self.hparams.lr, betas=tuple(self.hparams.betas))
        if not self.hparams.cosine_steps:
            return optimizer
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=self.hparams.cosine_steps)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}


def fit(config: Config, run_dir: str | Path, progress: bool = True) -> Fitted:
    """Train on the corpus's training identities; save ``encoder.pt``; the encoder and validation metrics."""
    with run_folder(run_dir, config, KIND) as run:
        L.seed_everything(config.seed, workers=True)
        corpus = check_corpus(config.corpus)
        data = utterance_set(corpus, corpus.identity_ids("train"), "cmp_logmel", config.workers, progress=progress,
                             feature_shards=config.feature_shards)
        held_out = held_out_mask(data.identity_index, config.held_out_per_identity)
        train, val = data.subset(~held_out), data.subset(held_out)
        if not len(val.features):
            raise VoxfaceError(f"corpus {config.corpus} has too few utterances per identity to hold any out")
        module = SpeakerPretraining(len(data.identity_ids), lr=config.lr, embed_dim=config.embed_dim,
                                    cosine_steps=config.max_steps if config.cosine_decay else 0)
        trainer = fit_module(
            module, run, config,
            data_loader(SpeakerCrops(train.features, train.identity_index, config.batch_size * config.val_every,
                                     seed=config.seed), config.batch_size),
            data_loader(SpeakerCrops(val.features, val.identity_index, seed=config.seed + 1), config.batch_size),
            max_steps=config.max_steps, val_every=config.val_every, progress=progress)
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val/")}
        encoder = module.encoder.cpu().eval()
        if trainer.is_global_zero:
            write_bundle(run / ENCODER_FILE, ENCODER, {"network": encoder}, n_speakers=len(data.identity_ids))
        recorded = record_metrics(run, {"held_out_utterances": len(val.features), **metrics}, trainer)
        metrics = {k: v for k, v in recorded.items() if k.startswith("val/")}
        log.info("speaker encoder: %s", metrics)
        return Fitted(run, encoder, metrics)

