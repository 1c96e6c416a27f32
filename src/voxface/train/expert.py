"""The image-to-3D expert network trained on renders of the morphable model with known parameters."""

from __future__ import annotations

import lightning as L
import torch

from ..models.image_to_3d import ImageTo3D


class ExpertModule(L.LightningModule):
    """MSE between the whitened predicted and true (pose, shape, expression) of rendered faces.

    Batches: ``image`` (B, 3, S, S) in [-1, 1] and ``params`` (B, 12 + K + E) float32.

    Args:
        network: the :class:`ImageTo3D` to train (its target statistics already set).
        lr, betas: Adam settings.
    """

    def __init__(self, network: ImageTo3D, lr: float = 1e-3, betas=(0.9, 0.999)):
        super().__init__()
        self.save_hyperparameters(ignore=["network"])
        self.network = network

    def _loss(self, batch, stage: str):
        out = self.network(batch["image"])
        pred = torch.cat([out["pose"], out["shape"], out["expression"]], dim=1)
        loss = (self.network.whiten(pred) - self.network.whiten(batch["params"])).pow(2).mean()
        shape_error = (out["shape"] - batch["params"][:, 12:12 + self.network.n_shape]).pow(2).mean()
        self.log_dict({f"{stage}/loss": loss, f"{stage}/shape_mse": shape_error}, prog_bar=stage == "train",
                      batch_size=len(pred), sync_dist=stage == "val")
        return loss

    def training_step(self, batch, batch_idx):
        return self._loss(batch, "train")

    def validation_step(self, batch, batch_idx):
        self._loss(batch, "val")

    def configure_optimizers(self):
        return torch.optim.Adam(self.network.parameters(), lr=self.hparams.lr, betas=tuple(self.hparams.betas))
