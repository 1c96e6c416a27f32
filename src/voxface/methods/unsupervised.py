"""CMP unsupervised (``voxface train unsupervised``): voice → face image → 3D without paired 3D data.

Stages on a corpus: the frozen voice encoder of a speaker run embeds random crops of every training
utterance once (an embedding bank, as ``train supervised`` does); the GAN learns from the corpus's
64×64 face photos of the training identities (F–Z, a ``val_fraction`` held out); with ``student``
the image-to-3D student learns jointly from the expert of an expert run (Eq. 7). Without
``student`` the run is the separately trained GAN of the cascade baselines.

``unsupervised.pt`` bundles the voice encoder, the generator, the student (if any) and the morphable
model (:class:`~voxface.predictors.voice_image_3d.VoiceToImageTo3D`).

The LightningModule, :class:`UnsupervisedCMP`. One training iteration (Cross-Modal Perceptionist,
Sec. 3.3, "Unsupervised Learning with KD"; docs/unsupervised.md):
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
method passes ``2 × iterations`` as ``max_steps``); :attr:`iteration` is ``global_step // 2``.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import Dataset

from ..corpus.data import embedding_bank, identity_photos, split_identities, utterance_set
from ..corpus.validate import check_corpus
from ..errors import VoxfaceError
from ..face3d import MorphableModel
from ..losses.distillation import DISTILLERS, Distiller, create_distiller
from ..losses.triplet import squared_triplet_loss
from ..models.cmp_gan import FaceCritic, FaceGenerator, noisy_voice_embedding
from ..models.image_to_3d import ImageTo3D
from ..predictors.bundle import read_network
from ..predictors.voice_image_3d import BUNDLE_FILE, VoiceToImageTo3D
from ..runs.checkpoints import load_weights
from ..runs.config import TrainingSettings, count, positive, random_seed, setting, weight
from ..runs.distributed import data_loader, is_writer
from ..runs.folder import resume_checkpoint, run_folder
from ..runs.trainer import fit_module, record_metrics
from ..vision.tensor_images import image_grid, to_uint8
from . import Fitted
from .expert import expert_network
from .speaker import ENCODER

log = logging.getLogger(__name__)

KIND = "unsupervised"
GRID_VOICES = 16
FEW_PHOTOS = 20
"""Below this many photos per identity the GAN's identity classifier can recognise the photos themselves
(their backgrounds and lighting) instead of the face; training warns (docs/synthetic_corpus.md)."""
STUDENT_INITS = ("random", "expert")


@dataclass
class Config(TrainingSettings):
    """Settings (configs/unsupervised_fast.yaml, configs/unsupervised_paper.yaml).

    ``student``: train the student jointly (CMP unsupervised); false trains the GAN alone (cascades).
    ``distiller``: one of pkt (CMP), vanilla, attention, sp, cc, rkd, crd, vid;
    ``distill_weight``: null = the distiller's default (10,000 for PKT).
    ``generator_base``/``critic_base``: channel base of φg / the face trunk (64 in CMP).
    ``generator_norm``: "none" (CMP) or "batch" (BatchNorm in φg; the fast default, see models/cmp_gan.py).
    ``student_init``: "random" (CMP: only the expert's target statistics are copied) or "expert"
    (the student starts as a copy of the expert network, batch-normalisation statistics included,
    and is fine-tuned on the generated faces with those statistics kept).
    ``init_from``: a GAN-only run folder (its ``last.ckpt``) or one of its checkpoint files: a new run
    starts its generator and face critic from those weights (optimisers start afresh).
    ``warm_start``: for ``unsupervised-pipeline`` and ``kd-ablation``: the joint runs start from the
    GAN-only run after this many iterations, and the GAN-only run trains ``warm_start + max_steps``,
    so every generator sees the same number of iterations; 0 trains each from scratch (CMP).
    ``channels_last``: channels-last convolutions (1.47x faster at the fast sizes on 2 CPU cores,
    0.92x at the paper's; bench/bench_unsupervised.py).
    ``student_lr``: learning rate of the student (and the distiller's parameters); null = ``lr`` (CMP).
    ``max_steps``: training iterations (one discriminator + one generator step each).
    """

    corpus: str = "data/synthetic"
    speaker_run: str | None = None
    expert_run: str | None = None
    student: bool = True
    distiller: str = setting("pkt", choices=tuple(DISTILLERS))
    distill_weight: float | None = weight(None)
    mesh_weight: float = weight(0.5)
    triplet_weight: float = weight(1.5)
    triplet_margin: float = weight(1.0)
    noise: float = weight(0.05)
    generator_base: int = count(16)
    critic_base: int = count(16)
    generator_norm: str = setting("batch", choices=FaceGenerator.NORMS)
    student_init: str = setting("random", choices=STUDENT_INITS)
    init_from: str | None = None
    warm_start: int = count(0, minimum=0)
    embedding_bank: int = count(8)
    max_steps: int = count(600)
    batch_size: int = count(64, minimum=2)
    lr: float = positive(2e-4)
    student_lr: float | None = positive(None)
    channels_last: bool = True
    betas: tuple[float, float] = setting((0.5, 0.999), ge=0, lt=1)
    val_fraction: float = setting(0.1, gt=0, lt=1)
    val_every: int = count(200)
    grid_every: int = count(100)
    seed: int = random_seed()
    workers: int = count(0, minimum=0)


# ------------------------------------------------------------------------------- data
class VoiceFaceBatches(Dataset):
    """Random items of two voice embeddings of one identity and two (independent) real faces.

    Items: ``voice`` (2, D), ``voice_identity`` (), ``face`` (2, 3, 64, 64) in [-1, 1] (each flipped
    horizontally with p = 0.5), ``face_identity`` (2,), ``shape`` (K,) of the voice identity.
    Item ``i`` is a function of (seed, i) only; a training run is one epoch of distinct items.
    """

    def __init__(self, embeddings: np.ndarray, voice_identity: np.ndarray, faces: np.ndarray,
                 face_identity: np.ndarray, shapes: np.ndarray, items: int, seed: int = 0):
        self.embeddings, self.voice_identity = embeddings.astype(np.float32), voice_identity
        self.faces, self.face_identity, self.shapes = faces, face_identity, shapes.astype(np.float32)
        self.by_identity = [np.flatnonzero(voice_identity == i) for i in range(int(voice_identity.max()) + 1)]
        self.speakers = [i for i, rows in enumerate(self.by_identity) if len(rows) >= 2]
        if not self.speakers:
            raise VoxfaceError("no identity has two voice embeddings; the triplet needs utterance pairs")
        self.items, self.seed = items, seed

    def __len__(self) -> int:
        return self.items

    def __getitem__(self, i: int):
        from ..vision.tensor_images import to_unit_range

        rng = np.random.default_rng([self.seed, i])
        speaker = self.speakers[rng.integers(len(self.speakers))]
        pair = rng.choice(self.by_identity[speaker], 2, replace=False)
        face_rows = rng.integers(len(self.faces), size=2)
        faces = self.faces[face_rows]
        flips = rng.uniform(size=2) < 0.5
        faces = np.stack([f[:, ::-1] if flip else f for f, flip in zip(faces, flips)])
        return {"voice": torch.from_numpy(self.embeddings[pair]), "voice_identity": torch.tensor(speaker),
                "face": to_unit_range(faces), "face_identity": torch.from_numpy(self.face_identity[face_rows]),
                "shape": torch.from_numpy(self.shapes[speaker])}


# ------------------------------------------------------------------------------- the LightningModule
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

    Batches (see :class:`VoiceFaceBatches`): ``voice`` (B, 2, D)
    two embeddings of one identity, ``voice_identity`` (B,), ``face`` (B, 2, 3, 64, 64) real faces
    in [-1, 1], ``face_identity`` (B, 2), ``shape`` (B, K) the voice identity's true shape (only
    used to report the validation ARE).

    Args:
        generator, critic: φg and the trunk with φdis / φc.
        model: the morphable model of the expert's and the student's coefficients.
        student, expert, distiller: the student (trained), the frozen expert network and the
            feature distiller; all None for the GAN alone.
        grid_voices: (G, D) fixed voice embeddings whose generated faces are logged as a grid.
        grid_dir: where the grids are written (``grids/iter{N}.png``; by the writer process).
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

    def setup(self, stage: str) -> None:
        # before DDP wraps the module: its gradient buckets take the parameters' layout when it is
        # built, and parameters turned channels-last after that get scrambled gradients
        if not self.hparams.channels_last:
            return
        for net in (self.generator, self.critic, self.student, self.expert):
            if net is not None:
                net.to(memory_format=torch.channels_last)

    def on_fit_start(self) -> None:
        self.train()  # Lightning keeps the modes it finds; this applies the frozen parts' eval mode

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
        if self.grid_voices.numel() and self.hparams.grid_dir and self.iteration % self.hparams.grid_every == 0 \
                and is_writer():
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


# ------------------------------------------------------------------------------- training
def gan_checkpoint(run_or_file: str | Path, iteration: int | None = None) -> Path:
    """The checkpoint of a training run after ``iteration`` iterations (None: its ``last.ckpt``);
    a ``.ckpt`` file is returned as it is."""
    path = Path(run_or_file)
    if path.suffix == ".ckpt":
        return path
    name = "last.ckpt" if iteration is None else f"step{OPTIMISERS_PER_ITERATION * iteration}.ckpt"
    return path / "checkpoints" / name


def load_gan_weights(source: str | Path, generator: FaceGenerator, critic: FaceCritic) -> None:
    """Copy a GAN run's generator and face-critic weights (from :func:`gan_checkpoint`) into the networks."""
    path = gan_checkpoint(source)
    if not path.is_file():
        raise VoxfaceError(f"init_from {source}: no checkpoint {path}; pass a run folder of `voxface train "
                           "unsupervised` (student: false) or one of its checkpoints/step*.ckpt files")
    saved = load_weights(path, "Lightning checkpoint", f"init_from {source}: pass a GAN-only run of `voxface train "
                         "unsupervised`")
    if not isinstance(saved, dict) or not isinstance(saved.get("state_dict"), dict):
        raise VoxfaceError(f"init_from {path} is not a Lightning checkpoint (no state_dict)")
    state = saved["state_dict"]
    for prefix, net in (("generator.", generator), ("critic.", critic)):
        weights = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
        try:
            net.load_state_dict(weights)
        except RuntimeError as error:
            raise VoxfaceError(f"init_from {path}: its {prefix[:-1]} does not fit this run's settings "
                               f"(generator_base, critic_base, generator_norm, corpus): {error}") from None
    log.info("generator and critic start from %s", path)


def fit(config: Config, run_dir: str | Path, progress: bool = True) -> Fitted:
    """Train the GAN (and, with ``student``, the student jointly); save ``unsupervised.pt``."""
    if not config.speaker_run:
        raise VoxfaceError("speaker_run is required: the run folder of `voxface train speaker` (--speaker-run)")
    if config.student and not config.expert_run:
        raise VoxfaceError("expert_run is required with student: true (a run of `voxface train expert`); "
                           "or set student=false to train the GAN alone")
    with run_folder(run_dir, config, KIND) as run:
        return _fit(config, run, progress)


def _fit(config: Config, run: Path, progress: bool) -> Fitted:
    """The body of :func:`fit` inside its run folder."""
    L.seed_everything(config.seed, workers=True)
    corpus = check_corpus(config.corpus)
    model = corpus.model
    train_ids = corpus.identity_ids("train")
    fit_ids, val_ids = split_identities(train_ids, config.val_fraction, config.seed, config.corpus)
    encoder = read_network(config.speaker_run, ENCODER)

    pair_batch = max(1, config.batch_size // 2)  # a batch of B/2 pairs is B voices
    faces, face_identity = identity_photos(corpus, fit_ids)  # the GAN's real faces: training identities
    if len(faces) < FEW_PHOTOS * len(fit_ids):
        log.warning("corpus %s has %.1f photos per training identity; with fewer than %d the generated faces "
                    "carried no face geometry in our runs (docs/unsupervised.md). A synthetic corpus is completed "
                    "with `voxface synth --out %s --images 40` (its voices and first photos stay as they are)",
                    corpus.root, len(faces) / len(fit_ids), FEW_PHOTOS, corpus.root)
    datasets = {}
    for name, ids in (("fit", fit_ids), ("val", val_ids)):
        bank = embedding_bank(encoder, utterance_set(corpus, ids, "cmp_logmel", progress=progress),
                              config.embedding_bank, config.seed)
        items = pair_batch * config.max_steps if name == "fit" else 2 * pair_batch
        datasets[name] = VoiceFaceBatches(np.stack(bank.features), bank.identity_index, faces, face_identity,
                                          corpus.reference_shapes(ids), items, seed=config.seed)

    generator = FaceGenerator(encoder.embed_dim, config.generator_base, config.generator_norm)
    critic = FaceCritic(len(fit_ids), config.critic_base, feature_dim=encoder.embed_dim)
    resume = resume_checkpoint(run)
    if config.init_from and resume is None:
        load_gan_weights(config.init_from, generator, critic)
    student = expert = distiller = None
    weight = 0.0
    if config.student:
        expert = expert_network(config.expert_run, corpus.model)
        student = ImageTo3D(**expert.arch_kwargs)
        if config.student_init == "expert":
            student.load_state_dict(expert.state_dict())
        else:
            student.load_state_dict({k: v for k, v in expert.state_dict().items()
                                     if k in ("target_mean", "target_std")}, strict=False)
        dims = expert.distilled_feature_sizes()
        distiller, weight = create_distiller(config.distiller, dims, dims)
        weight = weight if config.distill_weight is None else config.distill_weight
    grid_voices = torch.from_numpy(np.stack(datasets["val"].embeddings[
        [rows[0] for rows in datasets["val"].by_identity][:GRID_VOICES]]))
    module = UnsupervisedCMP(generator, critic, model, student, expert, distiller, distill_weight=weight,
                             mesh_weight=config.mesh_weight, triplet_weight=config.triplet_weight,
                             triplet_margin=config.triplet_margin, noise=config.noise, lr=config.lr,
                             betas=config.betas, student_lr=config.student_lr, channels_last=config.channels_last,
                             freeze_student_norm=config.student_init == "expert",
                             grid_voices=grid_voices, grid_dir=str(run / "grids"),
                             grid_every=config.grid_every)
    # the checkpoints hold the state after each iteration's optimiser steps, which is what resuming needs
    warnings.filterwarnings("ignore", message="Using ModelCheckpoint with manual optimization")
    warnings.filterwarnings("ignore", message=r"Found \d+ module\(s\) in eval mode")  # the frozen expert
    # validation counts batches (one per iteration), steps and checkpoints count optimiser steps
    trainer = fit_module(module, run, config,
                         data_loader(datasets["fit"], pair_batch, num_workers=config.workers),
                         data_loader(datasets["val"], pair_batch),
                         max_steps=OPTIMISERS_PER_ITERATION * config.max_steps, val_every=config.val_every,
                         checkpoint_every=OPTIMISERS_PER_ITERATION * config.val_every, progress=progress)
    if trainer.is_global_zero:
        module.log_image_grid()
    predictor = VoiceToImageTo3D(encoder, module.generator.cpu(), None if student is None else module.student.cpu(),
                                 model)
    if trainer.is_global_zero:
        predictor.save(run / BUNDLE_FILE)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    metrics["iterations"] = module.iteration
    metrics = record_metrics(run, metrics, trainer)
    return Fitted(run, predictor, {"iterations": metrics["iterations"],
                                   **{k: round(v, 4) for k, v in metrics.items() if k.startswith("val/")}})
