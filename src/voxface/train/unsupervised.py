"""CMP unsupervised: the speech-to-image GAN trained jointly with an image-to-3D student (paper Eq. 7).

One training iteration (SPEC.md §A):
  discriminator step  BCE(d(real), 1) + BCE(d(fake), 0) + CE(c(real), face identity)
  generator step      BCE(d(fake), 1) + CE(c(fake), voice identity)
                      + mesh_weight · MSE(expert mesh, student mesh)                     (Eq. 4)
                      + distill_weight · distiller([early, pooled] student, teacher)  (Eq. 5–6)
                      + triplet_weight · triplet(student meshes; margin 1, squared L2)
The generator, the student and the distiller's own parameters share the generator step's optimiser.
Without a student (``student=None``) this is the GAN alone, the first stage of the cascade baselines.

Mesh distances are in the morphable model's units; the triplet's squared distances are per-coordinate
means (the scale of the mesh MSE) so that the margin of 1 means 1 unit² whatever the vertex count.

Lightning counts each optimiser's step: ``global_step`` advances by 2 per iteration (the
experiment passes ``2 × iterations`` as ``max_steps``); :attr:`iteration` is ``global_step // 2``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..face3d import MorphableModel
from ..losses.distillation import Distiller
from ..losses.triplet import squared_triplet_loss
from ..models.gan import FaceCritic, FaceGenerator, noisy_voice_embedding
from ..models.image_to_3d import ImageTo3D
from ..vision.tensor_images import image_grid, to_uint8

log = logging.getLogger(__name__)

OPTIMISERS_PER_ITERATION = 2


class MeshDecoder(nn.Module):
    """Standardised (shape (B, K), expression (B, E)) -> (B, V, 3) vertices, as model.reconstruct in torch."""

    def __init__(self, model: MorphableModel):
        super().__init__()
        self.register_buffer("mean", torch.from_numpy(model.mean.reshape(-1).astype(np.float32)))
        self.register_buffer("shape_basis", torch.from_numpy((model.shape_basis * model.shape_std).astype(np.float32)))
        expression = (np.zeros((model.mean.size, 0), np.float32) if model.expression_basis is None
                      else model.expression_basis * model.expression_std)
        self.register_buffer("expression_basis", torch.from_numpy(expression.astype(np.float32)))

    def forward(self, shape: torch.Tensor, expression: torch.Tensor) -> torch.Tensor:
        flat = self.mean + shape @ self.shape_basis.T + expression @ self.expression_basis.T
        return flat.view(len(shape), -1, 3)


def mesh_triplet_loss(meshes: torch.Tensor, identity: torch.Tensor, margin: float = 1.0) -> torch.Tensor:
    """Triplet loss over (2B, V, 3) meshes laid out as B pairs (rows 2i, 2i+1 share an identity).

    Anchor 2i, positive 2i+1, negative the anchor of the next pair (skipped where it shares the
    identity); squared distances are per-coordinate means. Zero when no valid triplet exists.
    """
    anchors, positives = meshes[0::2], meshes[1::2]
    ids = identity[0::2]
    negatives, negative_ids = anchors.roll(1, 0), ids.roll(1, 0)
    valid = negative_ids != ids
    if not valid.any():
        return meshes.sum() * 0.0
    n_coords = meshes[0].numel()
    scale = n_coords ** -0.5  # squared distances of the scaled meshes are per-coordinate means
    return squared_triplet_loss(anchors[valid] * scale, positives[valid] * scale, negatives[valid] * scale, margin)


class UnsupervisedCMP(L.LightningModule):
    """The GAN (+ student) of CMP unsupervised; manual optimisation with two Adam optimisers.

    Batches (see :class:`voxface.experiments.unsupervised.VoiceFaceBatches`): ``voice`` (B, 2, D)
    two embeddings of one identity, ``voice_identity`` (B,), ``face`` (B, 2, 3, 64, 64) real faces
    in [-1, 1], ``face_identity`` (B, 2), ``shape`` (B, K) the voice identity's true shape (only
    used to report the validation ARE).

    Args:
        generator, critic: φg and the trunk with φdis / φc.
        model: the morphable model of the expert's and the student's coefficients.
        student, expert, distiller: the student (trained), the frozen expert network and the
            feature distiller; all None for the GAN alone.
        grid_voices: (G, D) fixed voice embeddings whose generated faces are logged as a grid.
        grid_dir: where the grids are written (``grids/iter{N}.png``).
        student_lr: learning rate of the student and the distiller (None: ``lr``, as CMP).
        channels_last: run the convolutions on channels-last tensors (same arithmetic; faster on CPU,
            see bench/bench_unsupervised.py).
        freeze_student_norm: the student's batch normalisation keeps its running statistics (a
            student copied from the expert then starts with exactly the expert's outputs).
    """

    def __init__(self, generator: FaceGenerator, critic: FaceCritic, model: MorphableModel,
                 student: ImageTo3D | None = None, expert: ImageTo3D | None = None,
                 distiller: Distiller | None = None, distill_weight: float = 10000.0,
                 mesh_weight: float = 0.5, triplet_weight: float = 1.5, triplet_margin: float = 1.0,
                 noise: float = 0.05, lr: float = 2e-4, betas=(0.5, 0.999), freeze_student_norm: bool = False,
                 channels_last: bool = True, student_lr: float | None = None,
                 grid_voices: torch.Tensor | None = None, grid_dir: str | None = None, grid_every: int = 200):
        super().__init__()
        self.save_hyperparameters(ignore=["generator", "critic", "model", "student", "expert", "distiller",
                                          "grid_voices"])
        self.automatic_optimization = False
        self.generator, self.critic = generator, critic
        self.student, self.distiller = student, distiller
        self.expert = expert.eval().requires_grad_(False) if expert is not None else None
        self.decoder = MeshDecoder(model) if student is not None else None
        self.measurements = model.measurements
        self.register_buffer("grid_voices", grid_voices if grid_voices is not None else torch.zeros(0))

    @property
    def iteration(self) -> int:
        return self.global_step // OPTIMISERS_PER_ITERATION

    def train(self, mode: bool = True):
        super().train(mode)
        if self.expert is not None:
            self.expert.eval()
        if self.student is not None and self.hparams.freeze_student_norm:
            for m in self.student.modules():  # keep the running statistics the student started with
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.eval()
        return self

    def on_fit_start(self) -> None:
        self.train()  # Lightning keeps the modes it finds; this applies the frozen parts' eval mode
        if not self.hparams.channels_last:
            return
        for net in (self.generator, self.critic, self.student, self.expert):
            if net is not None:
                net.to(memory_format=torch.channels_last)

    def generate(self, voice: torch.Tensor, noise: float | None = None) -> torch.Tensor:
        """(B, D) voice embeddings -> (B, 3, 64, 64) faces (noise as in training unless given)."""
        return self.generator(noisy_voice_embedding(voice, self.hparams.noise if noise is None else noise))

    def training_step(self, batch, batch_idx):
        opt_d, opt_g = self.optimizers()
        voice = batch["voice"].flatten(0, 1)
        voice_id = batch["voice_identity"].repeat_interleave(2)
        real, face_id = batch["face"].flatten(0, 1), batch["face_identity"].flatten()
        if self.hparams.channels_last:
            real = real.contiguous(memory_format=torch.channels_last)
        fake = self.generate(voice)

        real_score, real_logits = self.critic(real)
        fake_score, _ = self.critic(fake.detach())
        loss_d = (F.binary_cross_entropy_with_logits(real_score, torch.ones_like(real_score))
                  + F.binary_cross_entropy_with_logits(fake_score, torch.zeros_like(fake_score))
                  + F.cross_entropy(real_logits, face_id))
        opt_d.zero_grad()
        self.manual_backward(loss_d)
        opt_d.step()

        fake_score, fake_logits = self.critic(fake)
        terms = {"adversarial": F.binary_cross_entropy_with_logits(fake_score, torch.ones_like(fake_score)),
                 "identity": F.cross_entropy(fake_logits, voice_id)}
        if self.student is not None:
            terms.update(self._student_terms(fake, voice_id))
        weights = {"mesh": self.hparams.mesh_weight, "distill": self.hparams.distill_weight,
                   "triplet": self.hparams.triplet_weight}
        loss_g = sum(weights.get(k, 1.0) * v for k, v in terms.items())
        opt_g.zero_grad()
        self.manual_backward(loss_g)
        opt_g.step()
        self.log_dict({"train/loss_d": loss_d, "train/loss_g": loss_g, **{f"train/{k}": v for k, v in terms.items()}},
                      prog_bar=False, batch_size=len(voice))
        self.log("iteration", float(self.iteration), prog_bar=True, batch_size=len(voice))  # completed ones

    def _student_terms(self, fake: torch.Tensor, voice_id: torch.Tensor) -> dict[str, torch.Tensor]:
        out = self.student(fake)
        with torch.no_grad():
            target = self.expert(fake)
        mesh = self.decoder(out["shape"], out["expression"])
        target_mesh = self.decoder(target["shape"], target["expression"])
        return {"mesh": F.mse_loss(mesh, target_mesh),
                "distill": self.distiller([out["early"], out["pooled"]], [target["early"], target["pooled"]]),
                "triplet": mesh_triplet_loss(mesh, voice_id, self.hparams.triplet_margin)}

    def on_train_batch_end(self, outputs, batch, batch_idx):
        if self.grid_voices.numel() and self.hparams.grid_dir and self.iteration % self.hparams.grid_every == 0:
            self.log_image_grid()

    def log_image_grid(self) -> Path:
        """Faces generated (without noise) from the fixed voices: a PNG and a TensorBoard image."""
        from ..face3d.render import save_png

        was_training = self.generator.training
        self.generator.eval()
        with torch.no_grad():
            faces = self.generate(self.grid_voices, noise=0.0)
        self.generator.train(was_training)
        grid = image_grid(to_uint8(faces))
        path = save_png(Path(self.hparams.grid_dir) / f"iter{self.iteration:06d}.png", grid)
        for logger in self.loggers:
            if hasattr(logger.experiment, "add_image"):
                logger.experiment.add_image("generated_faces", grid, self.iteration, dataformats="HWC")
        return path

    def validation_step(self, batch, batch_idx):
        from ..evaluate.geometry import absolute_ratio_error

        voice = batch["voice"][:, 0]
        fake = self.generate(voice, noise=0.0)
        score, _ = self.critic(fake)  # held-out identities: the classifier does not know them
        metrics = {"val/fake_realness": torch.sigmoid(score).mean()}
        if self.student is not None:
            out, target = self.student(fake), self.expert(fake)
            mesh = self.decoder(out["shape"], out["expression"])
            metrics["val/mesh_mse"] = F.mse_loss(mesh, self.decoder(target["shape"], target["expression"]))
            zeros = torch.zeros(len(voice), self.decoder.expression_basis.shape[1], device=voice.device)
            neutral = self.decoder(out["shape"], zeros).cpu().numpy()
            reference = self.decoder(batch["shape"].float(), zeros).cpu().numpy()
            metrics["val/ARE"] = absolute_ratio_error(neutral[:, None], reference, self.measurements).mean
        self.log_dict(metrics, batch_size=len(voice), sync_dist=True)

    def configure_optimizers(self):
        betas = tuple(self.hparams.betas)
        generator_side = [{"params": list(self.generator.parameters())}]
        if self.student is not None:
            generator_side.append({"params": list(self.student.parameters()) + list(self.distiller.parameters()),
                                   "lr": self.hparams.student_lr or self.hparams.lr})
        return [torch.optim.Adam(self.critic.parameters(), lr=self.hparams.lr, betas=betas),
                torch.optim.Adam(generator_side, lr=self.hparams.lr, betas=betas)]

