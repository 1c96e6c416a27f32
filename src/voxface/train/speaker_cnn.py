"""Training the biometric-matching speaker CNN: cross-entropy + 0.001 · L2 of the fully connected weights."""

from __future__ import annotations

import lightning as L
import torch
import torch.nn.functional as F

from ..models.speaker_cnn import SpeakerCNN


class SpeakerCNNTraining(L.LightningModule):
    """Speaker classification on (B, 2, 60, 41) patches; validation loss drives early stopping.

    Args:
        n_classes: training speakers.
        lr: Adam learning rate (1e-3 in the paper).
        l2: weight of the squared fully-connected weights in the loss (0.001, Keras-style).
    """

    def __init__(self, n_classes: int, lr: float = 1e-3, l2: float = 1e-3, channels: int = 128, dropout: float = 0.5):
        super().__init__()
        self.save_hyperparameters()
        self.model = SpeakerCNN(n_classes, channels=channels, dropout=dropout)

    def training_step(self, batch, batch_idx):
        patches, labels = batch
        logits = self.model(patches)
        loss = F.cross_entropy(logits, labels) + self.hparams.l2 * self.model.fc_l2()
        self.log("train/loss", loss, prog_bar=True)
        self.log("train/acc", (logits.argmax(1) == labels).float().mean(), prog_bar=True)
        return loss

    def validation_step(self, batch, batch_idx):
        patches, labels = batch
        logits = self.model(patches)
        self.log("val/loss", F.cross_entropy(logits, labels), prog_bar=True, sync_dist=True)
        self.log("val/acc", (logits.argmax(1) == labels).float().mean(), prog_bar=True, sync_dist=True)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)
