"""CMP supervised: a frozen voice encoder + 3DMM regressor trained with L2 + triplet (paper Eq. 2-3)."""

from __future__ import annotations

import lightning as L
import torch
from torch import nn

from ..corpus.datasets import random_batch_length
from ..losses.triplet import squared_triplet_loss
from ..models.regressor import create_regressor


class SupervisedCMP(L.LightningModule):
    """Regress standardised 3DMM coefficients from a frozen voice embedding.

    The loss on a batch of (anchor, positive, negative) crops is the mean squared coefficient error
    of all three plus ``triplet_weight`` times the squared-distance triplet loss on the predicted
    coefficients (margin ``triplet_margin``).

    With ``uncertainty`` "gaussian" the regressor also predicts a covariance, trained by adding
    ``nll_weight`` times the Gaussian negative log-likelihood of every crop's target; "ensemble" trains
    ``members`` such regressors from different initialisations, each with all the losses.

    Args:
        encoder: a frozen voice encoder, (B, 64, T) -> (B, D); or None when batches carry
            precomputed embeddings (the Resemblyzer backbone).
        embed_dim: D.
        n_targets: K (+ E) coefficients to predict.
        target_mean, target_std: (n_targets,) whitening statistics of the training targets.
    """

    def __init__(self, encoder: nn.Module | None, embed_dim: int, n_targets: int,
                 target_mean: torch.Tensor, target_std: torch.Tensor, lr: float = 2e-4,
                 betas=(0.5, 0.999), triplet_margin: float = 1.0, triplet_weight: float = 1.0,
                 dropout: float = 0.2, uncertainty: str = "none", members: int = 5, rank: int = 0,
                 shared_factor: bool = False, nll_weight: float = 1.0):
        super().__init__()
        self.save_hyperparameters(ignore=["encoder", "target_mean", "target_std"])
        self.encoder = encoder
        if encoder is not None:
            encoder.requires_grad_(False)
        self.regressor = create_regressor(uncertainty, embed_dim, n_targets, dropout, members, rank, shared_factor)
        self.regressor.set_target_stats(target_mean, target_std)

    def train(self, mode: bool = True):
        super().train(mode)
        if self.encoder is not None:
            self.encoder.eval()  # frozen: BatchNorm keeps its pre-trained statistics
        return self

    def embed(self, inputs: torch.Tensor) -> torch.Tensor:
        """(B, 64, T) features -> (B, D); or (B, D) precomputed embeddings passed through."""
        if self.encoder is None:
            return inputs
        with torch.no_grad():
            return self.encoder(inputs)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """(B, 64, T) or (B, D) -> (B, n_targets) coefficients."""
        return self.regressor(self.embed(inputs))

    def _loss(self, batch, stage: str):
        x = batch["features"]                                # (B, 3, 64, T) or (B, 3, D)
        if stage == "train" and self.encoder is not None:
            x = random_batch_length(x)
        b = x.shape[0]
        embeddings = self.embed(x.flatten(0, 1))
        regression = triplet = nll = 0.0
        for head in getattr(self.regressor, "members", [self.regressor]):
            pred = head(embeddings).view(b, 3, -1)           # anchor, positive, negative
            regression = regression + (pred - batch["target"]).pow(2).sum(-1).mean()
            triplet = triplet + squared_triplet_loss(pred[:, 0], pred[:, 1], pred[:, 2], self.hparams.triplet_margin)
            if self.hparams.uncertainty != "none":
                nll = nll + head.negative_log_likelihood(embeddings, batch["target"].flatten(0, 1)).mean()
        loss = regression + self.hparams.triplet_weight * triplet + self.hparams.nll_weight * nll
        logged = {f"{stage}/loss": loss, f"{stage}/l2": regression, f"{stage}/triplet": triplet}
        if self.hparams.uncertainty != "none":
            logged[f"{stage}/nll"] = nll
        self.log_dict(logged, prog_bar=stage == "train", batch_size=b, sync_dist=stage == "val")
        return loss

    def training_step(self, batch, batch_idx):
        return self._loss(batch, "train")

    def validation_step(self, batch, batch_idx):
        self._loss(batch, "val")

    def configure_optimizers(self):
        return torch.optim.Adam(self.regressor.parameters(), lr=self.hparams.lr, betas=tuple(self.hparams.betas))
