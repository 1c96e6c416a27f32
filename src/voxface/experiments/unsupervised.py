"""``voxface train unsupervised``: CMP unsupervised — voice → face image → 3D without paired 3D data.

Stages on a corpus: the frozen voice encoder of a speaker run embeds random crops of every training
utterance once (an embedding bank, as ``train supervised`` does); the GAN learns from the corpus's
64×64 face photos of the training identities (F–Z, a ``val_fraction`` held out); with ``student``
the image-to-3D student learns jointly from the expert of an expert run (Eq. 7). Without
``student`` the run is the separately trained GAN of the cascade baselines.

``unsupervised.pt`` bundles the voice encoder, the generator, the student (if any) and the morphable
model; :class:`VoiceToImageTo3D` loads it.
"""

from __future__ import annotations

import io
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from ..runs import atomic
from ..runs.checkpoints import load_tagged, load_weights, reads_saved_file
from ..runs.config import TrainingSettings, count, positive, random_seed, setting, weight
from ..corpus.format import Corpus
from ..corpus.validate import check_corpus
from ..errors import VoxfaceError
from ..face3d import MorphableModel
from ..face3d.transforms import split_camera
from ..losses.distillation import DISTILLERS, create_distiller
from ..models.gan import FaceCritic, FaceGenerator, noisy_voice_embedding
from ..models.image_to_3d import ImageTo3D
from ..models.voice_encoders import CMPVoiceEncoder
from ..runs.trainer import make_trainer, open_run, record_metrics, resume_checkpoint
from ..train.unsupervised import OPTIMISERS_PER_ITERATION, UnsupervisedCMP
from .data import utterance_set
from .expert import load_expert_network
from .speaker import load_encoder
from .supervised import _embedding_bank

log = logging.getLogger(__name__)

BUNDLE_FILE = "unsupervised.pt"
FORMAT = "voxface-voice-image-3d"
GRID_VOICES = 16
FEW_PHOTOS = 20
"""Below this many photos per identity the GAN's identity classifier can recognise the photos themselves
(their backgrounds and lighting) instead of the face; training warns (docs/synthetic_corpus.md)."""
STUDENT_INITS = ("random", "expert")


@dataclass
class UnsupervisedConfig(TrainingSettings):
    """Settings (configs/unsupervised_fast.yaml, configs/unsupervised_paper.yaml).

    ``student``: train the student jointly (CMP unsupervised); false trains the GAN alone (cascades).
    ``distiller``: one of pkt (CMP), vanilla, attention, sp, cc, rkd, crd, vid;
    ``distill_weight``: null = the distiller's default (10,000 for PKT).
    ``generator_base``/``critic_base``: channel base of φg / the face trunk (64 in CMP).
    ``generator_norm``: "none" (CMP) or "batch" (BatchNorm in φg; the fast default, see models/gan.py).
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
def load_face_images(corpus: Corpus, identity_ids: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(M, 64, 64, 3) uint8 photos of ``identity_ids`` and (M,) int index into that list."""
    index = {i: k for k, i in enumerate(identity_ids)}
    faces = [f for f in corpus.faces if f.identity in index]
    if not faces:
        raise VoxfaceError(f"corpus {corpus.root} has no face images of the training identities; "
                           "the GAN needs faces.csv entries (regenerate with `voxface synth --images 5`)")
    images = np.stack([np.asarray(Image.open(corpus.path(f.image_64)).convert("RGB")) for f in faces])
    return images, np.array([index[f.identity] for f in faces])


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


# ------------------------------------------------------------------------------- predictor
@dataclass
class VoiceToImageTo3D:
    """Voice features -> embedding -> generated face -> (student) 3DMM shape.

    Attributes:
        encoder: the frozen CMP voice encoder.
        generator: φg.
        student: the image-to-3D student, or None for a GAN-only run.
        model: the morphable model of the student's coefficients.
        mesh_convention: what :meth:`meshes` returns: ``"neutral"`` (voxface's: the student's shape
            alone) or ``"cmp-release"`` (the release's demo: scale from the student's camera times
            shape and expression).
        expert: an image-to-3D network whose camera places the mesh over the image (:meth:`poses`),
            or None (the CMP release carries SynergyNet for it).
    """

    encoder: CMPVoiceEncoder
    generator: FaceGenerator
    student: ImageTo3D | None
    model: MorphableModel
    mesh_convention: str = "neutral"
    expert: ImageTo3D | None = None

    MESH_CONVENTIONS = ("neutral", "cmp-release")

    def __post_init__(self):
        if self.mesh_convention not in self.MESH_CONVENTIONS:
            raise VoxfaceError(f"unknown mesh convention {self.mesh_convention!r}; one of {self.MESH_CONVENTIONS}")
        for net in (self.encoder, self.generator, self.student, self.expert):
            if net is not None:
                net.eval().requires_grad_(False)

    def embed(self, features: list[np.ndarray]) -> torch.Tensor:
        """Per utterance (T, 64) log-mel -> (B, D) embeddings."""
        with torch.no_grad():
            return torch.cat([self.encoder(torch.from_numpy(f.T[None].copy())) for f in features])

    def faces(self, embeddings: torch.Tensor) -> torch.Tensor:
        """(B, D) -> (B, 3, 64, 64) faces in [-1, 1] (no noise: the normalised embedding)."""
        with torch.no_grad():
            return self.generator(noisy_voice_embedding(embeddings, 0.0))

    def shapes(self, faces: torch.Tensor) -> np.ndarray:
        """(B, 3, 64, 64) -> (B, K) the student's standardised shape coefficients."""
        if self.student is None:
            raise VoxfaceError("this run has no student (a GAN-only run); pass a run of `train unsupervised` "
                               "with student: true")
        with torch.no_grad():
            return self.student(faces)["shape"].numpy()

    def meshes(self, faces: torch.Tensor) -> np.ndarray:
        """(B, 3, 64, 64) -> (B, V, 3) the student's faces in ``mesh_convention``."""
        if self.mesh_convention == "neutral":
            return self.model.reconstruct(self.shapes(faces))
        with torch.no_grad():
            out = self.student(faces)
        scale = split_camera(out["pose"])[0].numpy()
        return scale[:, None, None] * self.model.reconstruct(out["shape"].numpy(), out["expression"].numpy())

    def poses(self, faces: torch.Tensor) -> np.ndarray:
        """(B, 3, 64, 64) -> (B, 12) the expert's camera of each face (see ``split_camera``)."""
        if self.expert is None:
            raise VoxfaceError("this bundle has no expert to place meshes over the images")
        with torch.no_grad():
            return self.expert(faces)["pose"].numpy()

    def save(self, path: Path) -> None:
        bundle = {"format": FORMAT,
                  "encoder": {"embed_dim": self.encoder.embed_dim, "state_dict": self.encoder.state_dict()},
                  "generator": {"embed_dim": self.generator.embed_dim, "base": self.generator.base,
                                "norm": self.generator.norm, "clamp": self.generator.clamp,
                                "state_dict": self.generator.state_dict()},
                  "student": _saved_network(self.student), "expert": _saved_network(self.expert),
                  "model": self.model.to_npz_bytes(), "mesh_convention": self.mesh_convention}
        with atomic.atomic_path(path) as tmp:
            torch.save(bundle, tmp)

    @classmethod
    @reads_saved_file
    def load(cls, run_or_file: str | Path) -> "VoiceToImageTo3D":
        bundle, _ = load_tagged(run_or_file, BUNDLE_FILE, FORMAT, "unsupervised bundle",
                                "train with `voxface train unsupervised` first")
        encoder = CMPVoiceEncoder(embed_dim=bundle["encoder"]["embed_dim"])
        encoder.load_state_dict(bundle["encoder"]["state_dict"])
        g = bundle["generator"]
        generator = FaceGenerator(g["embed_dim"], g["base"], g.get("norm", "none"), g.get("clamp", True))
        generator.load_state_dict(g["state_dict"])
        return cls(encoder, generator, _loaded_network(bundle["student"]),
                   MorphableModel.from_npz(io.BytesIO(bundle["model"])),
                   bundle.get("mesh_convention", "neutral"), _loaded_network(bundle.get("expert")))


def _saved_network(network: ImageTo3D | None) -> dict | None:
    return None if network is None else {"config": network.config, "state_dict": network.state_dict()}


def _loaded_network(saved: dict | None) -> ImageTo3D | None:
    if saved is None:
        return None
    network = ImageTo3D(**saved["config"])
    network.load_state_dict(saved["state_dict"])
    return network


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


def train_unsupervised(config: UnsupervisedConfig, run_dir: str | Path, progress: bool = True) -> dict:
    """Train the GAN (and, with ``student``, the student jointly); save ``unsupervised.pt``."""
    if not config.speaker_run:
        raise VoxfaceError("speaker_run is required: the run folder of `voxface train speaker` (--speaker-run)")
    if config.student and not config.expert_run:
        raise VoxfaceError("expert_run is required with student: true (a run of `voxface train expert`); "
                           "or set student=false to train the GAN alone")
    run = open_run(run_dir, config, "unsupervised")
    L.seed_everything(config.seed, workers=True)
    corpus = check_corpus(config.corpus)
    model = corpus.model
    train_ids = corpus.identity_ids("train")
    rng = np.random.default_rng(config.seed)
    n_val = max(2, int(round(config.val_fraction * len(train_ids))))
    if len(train_ids) < n_val + 2:
        raise VoxfaceError(f"corpus {config.corpus} has {len(train_ids)} training identities; need {n_val + 2}")
    val_ids = sorted(rng.choice(train_ids, n_val, replace=False).tolist())
    fit_ids = [i for i in train_ids if i not in set(val_ids)]
    encoder = load_encoder(config.speaker_run)

    pair_batch = max(1, config.batch_size // 2)  # a batch of B/2 pairs is B voices
    faces, face_identity = load_face_images(corpus, fit_ids)  # the GAN's real faces: training identities
    if len(faces) < FEW_PHOTOS * len(fit_ids):
        log.warning("corpus %s has %.1f photos per training identity; with fewer than %d the generated faces "
                    "carried no face geometry in our runs (docs/unsupervised.md). Regenerate it with "
                    "`voxface synth --images 40` (the default)", corpus.root, len(faces) / len(fit_ids), FEW_PHOTOS)
    datasets = {}
    for name, ids in (("fit", fit_ids), ("val", val_ids)):
        bank = _embedding_bank(encoder, utterance_set(corpus, ids, "cmp_logmel", progress=progress),
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
        expert = load_expert_network(config.expert_run, corpus.model)
        student = ImageTo3D(**expert.config)
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
    trainer = make_trainer(run, OPTIMISERS_PER_ITERATION * config.max_steps,
                           OPTIMISERS_PER_ITERATION * config.val_every, progress, config.device, config.precision)
    # val_check_interval counts batches (one per iteration), checkpoints count optimiser steps
    trainer.val_check_interval = config.val_every
    trainer.fit(module, DataLoader(datasets["fit"], batch_size=pair_batch, num_workers=config.workers),
                DataLoader(datasets["val"], batch_size=pair_batch), ckpt_path=resume)
    module.log_image_grid()
    predictor = VoiceToImageTo3D(encoder, module.generator.cpu(), None if student is None else module.student.cpu(),
                                 model)
    predictor.save(run / BUNDLE_FILE)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    metrics["iterations"] = module.iteration
    metrics = record_metrics(run / "train_metrics.json", metrics, trainer)
    return {"iterations": metrics["iterations"],
            **{k: round(v, 4) for k, v in metrics.items() if k.startswith("val/")}}
