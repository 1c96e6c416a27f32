"""Pre-training the CMP voice encoder as a speaker classifier (cross-entropy over training identities)."""

from __future__ import annotations

import lightning as L
import torch
import torch.nn.functional as F

from ..corpus.datasets import random_batch_length
from ..models.voice_encoders import CMPVoiceEncoder, SpeakerClassifier


class SpeakerPretraining(L.LightningModule):
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

    def training_step(self, batch, batch_idx):
        crops, labels = batch
        logits = self.model(random_batch_length(crops))
        loss = F.cross_entropy(logits, labels)
        self.log("train/loss", loss, prog_bar=True)
        self.log("train/acc", (logits.argmax(1) == labels).float().mean(), prog_bar=True)
        return loss

    def validation_step(self, batch, batch_idx):
        crops, labels = batch
        logits = self.model(crops)
        self.log("val/loss", F.cross_entropy(logits, labels), prog_bar=True, sync_dist=True)
        self.log("val/acc", (logits.argmax(1) == labels).float().mean(), prog_bar=True, sync_dist=True)

    def configure_optimizers(self):
        optimizer = torch.optim.Adam(self.parameters(), lr=self.hparams.lr, betas=tuple(self.hparams.betas))
        if not self.hparams.cosine_steps:
            return optimizer
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=self.hparams.cosine_steps)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}
