"""The image-to-3D expert (``voxface train expert``): a network trained on renders of the morphable model.

The published experts (3DDFA-V2, SynergyNet) learnt from images with fitted 3DMM parameters; here
the parameters are known exactly: random shapes (the corpus's prior), expressions, poses, lighting,
skin tones and backgrounds are rendered with :func:`voxface.corpus.face_images.render_face_image`,
the pose is the scaled-orthographic camera of the render. After training, the network and the
fitting expert (:mod:`voxface.vision.fitting_expert`) are scored by ARE on held-out renders
(the run's ``metrics.json``). Saves ``expert.pt`` (an ``image-to-3d-expert`` file,
:mod:`voxface.predictors.bundle`).

Both experts share one interface: ``predict(images)`` with (B, H, W, 3) uint8 RGB images returns
``pose`` (B, 12), ``shape`` (B, K), ``expression`` (B, E) arrays.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch.utils.data import Dataset
from tqdm import tqdm

from ..corpus.face_images import render_face_image, sample_appearance
from ..corpus.validate import check_corpus
from ..errors import VoxfaceError
from ..evaluate.geometry import absolute_ratio_error
from ..face3d import MorphableModel
from ..models.image_to_3d import ImageTo3D
from ..predictors.bundle import FILES, read_bundle, write_bundle
from ..runs import atomic
from ..runs.config import TrainingSettings, check_batches, count, positive, random_seed, setting
from ..runs.distributed import data_loader, is_writer
from ..runs.folder import run_folder, training_metrics
from ..runs.trainer import OneLossModule, fit_module, record_metrics
from ..vision.fitting_expert import FittingExpert, affine_camera, normalised_coordinates
from ..vision.tensor_images import to_unit_range
from . import Fitted

log = logging.getLogger(__name__)

KIND = "expert"
EXPERT = "image-to-3d-expert"
EXPERT_FILE = FILES[EXPERT]
CHUNK = 250


@dataclass
class Config(TrainingSettings):
    """Settings of ``voxface train expert`` (configs/expert_fast.yaml).

    ``render_size``: side of the rendered training images (64 = the GAN's images; 120 in CMP).
    ``width``/``last_channel``/``input_size``: the MobileNetV2's size (CMP: 1.0 / 1280 / 120);
    ``dropout``: before its heads (0.2 as CMP's).
    """

    corpus: str = "data/synthetic"
    train_images: int = count(4000)
    test_images: int = count(200)
    render_size: int = count(64, minimum=16)
    width: float = positive(0.25)
    last_channel: int = count(128)
    input_size: int = count(64, minimum=16)
    dropout: float = setting(0.2, ge=0, lt=1)
    max_steps: int = count(400)
    batch_size: int = count(64)
    lr: float = positive(1e-3)
    val_every: int = count(200)
    seed: int = random_seed()
    workers: int = count(0, minimum=0)


class NetworkExpert:
    """An :class:`ImageTo3D` in eval mode behind the experts' interface."""

    def __init__(self, network: ImageTo3D):
        self.network = network.eval().requires_grad_(False)

    def predict_tensor(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """(B, 3, H, W) in [-1, 1] -> the network's outputs (parameters and features), no gradients."""
        with torch.no_grad():
            return self.network(images)

    def predict(self, images: np.ndarray) -> dict[str, np.ndarray]:
        out = self.predict_tensor(to_unit_range(images))
        return {k: out[k].numpy() for k in ("pose", "shape", "expression")}


def expert_network(run_or_file: str | Path, corpus_model: MorphableModel | None = None) -> ImageTo3D:
    """The network of an expert run (its folder or ``expert.pt``).

    ``corpus_model``: the model of the corpus it will be used on; an expert that records its own
    model (an imported SynergyNet, BFM) is refused for a corpus of another model.
    """
    networks, values = read_bundle(run_or_file, EXPERT)
    if corpus_model is not None and values.get("model") is not None:
        own = MorphableModel.from_npz(io.BytesIO(values["model"]))
        if not own.same_as(corpus_model):
            raise VoxfaceError(f"expert {run_or_file} predicts coefficients of morphable model {own.name!r} "
                               f"({own.n_vertices} vertices), not of this corpus's {corpus_model.name!r} "
                               f"({corpus_model.n_vertices}); use it with a corpus built on that model")
    return networks["network"]


# ------------------------------------------------------------------------------- renders
def render_training_faces(model: MorphableModel, n: int, size: int, seed: int) -> dict[str, np.ndarray]:
    """``n`` random faces: ``images`` (n, S, S, 3) uint8, ``params`` (n, 12 + K + E) float32 (pose in
    normalised coordinates, see :mod:`voxface.vision.fitting_expert`; shape; expression).

    Shapes follow the corpus prior N(±gender_offset/2, I); the appearance (skin, light, pose within
    ±15° yaw, background, expression) is :func:`sample_appearance`'s.
    """
    rng = np.random.default_rng(seed)
    images, params = [], []
    for _ in range(n):
        shape = rng.normal(size=model.n_shape)
        if model.gender_offset is not None:
            shape += rng.choice([-0.5, 0.5]) * model.gender_offset
        appearance = sample_appearance(rng, model.n_expression)
        expression = np.asarray(appearance.expression, np.float64)[: model.n_expression]
        image, pixels = render_face_image(model, shape.astype(np.float32), appearance, size)
        points = model.reconstruct(shape, expression if expression.size else None)[model.landmarks68]
        pose = affine_camera(points.astype(np.float64), normalised_coordinates(pixels.astype(np.float64), size))
        images.append(image)
        params.append(np.concatenate([pose, shape, expression]))
    return {"images": np.stack(images), "params": np.stack(params).astype(np.float32)}


def cached_renders(folder: Path, model: MorphableModel, n: int, size: int, seed: int,
                   progress: bool = True) -> dict[str, np.ndarray]:
    """:func:`render_training_faces` in chunks of ``CHUNK`` saved under ``folder`` (resumes; only the
    writer process saves, the others render what they do not find)."""
    chunks = []
    for c in tqdm(range(0, n, CHUNK), desc=f"rendering {folder.name}", disable=not progress, unit="chunk"):
        path = folder / f"chunk{c // CHUNK:04d}.npz"
        if path.is_file():
            with np.load(path) as z:
                chunks.append({k: z[k] for k in z.files})
            continue
        chunks.append(render_training_faces(model, min(CHUNK, n - c), size, seed * 100_003 + c))
        if is_writer():
            atomic.write_npz(path, **chunks[-1])
    return {k: np.concatenate([ch[k] for ch in chunks]) for k in chunks[0]}


class RenderedFaces(Dataset):
    """Items ``image`` (3, S, S) in [-1, 1] and ``params`` (12 + K + E,)."""

    def __init__(self, renders: dict[str, np.ndarray]):
        self.images, self.params = renders["images"], renders["params"]

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        return {"image": to_unit_range(self.images[i:i + 1])[0], "params": torch.from_numpy(self.params[i])}


# ------------------------------------------------------------------------------- train + score
class ExpertModule(OneLossModule):
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

    def configure_optimizers(self):
        return torch.optim.Adam(self.network.parameters(), lr=self.hparams.lr, betas=tuple(self.hparams.betas))


def fit(config: Config, run_dir: str | Path, progress: bool = True) -> Fitted:
    """Render, train, save ``expert.pt``, and score both experts on held-out renders."""
    check_batches(config.batch_size, config.train_images, "images (train_images)")
    with run_folder(run_dir, config, KIND) as run:
        L.seed_everything(config.seed, workers=True)
        model = check_corpus(config.corpus).model
        train = cached_renders(run / "renders" / "train", model, config.train_images, config.render_size,
                               config.seed, progress)
        test = cached_renders(run / "renders" / "test", model, config.test_images, config.render_size,
                              config.seed + 1, progress)
        network = ImageTo3D(model.n_shape, model.n_expression, config.width, config.last_channel,
                            dropout=config.dropout, input_size=config.input_size)
        params = torch.from_numpy(train["params"])
        network.set_target_stats(params.mean(0), params.std(0))
        module = ExpertModule(network, lr=config.lr)
        trainer = fit_module(module, run, config,
                             data_loader(RenderedFaces(train), config.batch_size, shuffle="torch", drop_last=True,
                                         num_workers=config.workers),
                             data_loader(RenderedFaces(test), config.batch_size, num_workers=config.workers),
                             max_steps=config.max_steps, val_every=config.val_every, progress=progress)
        network = module.network.cpu().eval()
        if trainer.is_global_zero:
            write_bundle(run / EXPERT_FILE, EXPERT, {"network": network}, model=None)
        metrics = score_experts(model, test, {"network expert": NetworkExpert(network),
                                              "fitting expert": FittingExpert(model)}, progress)
        metrics["settings"] = {"train_images": config.train_images, "render_size": config.render_size,
                               "width": config.width, "last_channel": config.last_channel,
                               "input_size": config.input_size, "steps": config.max_steps}
        metrics = record_metrics(run, metrics, trainer)
        log.info("expert ARE on %d held-out renders: %s", config.test_images,
                 {k: v["ARE"]["mean"] for k, v in metrics["experts"].items()})
        return Fitted(run, network, {k: round(v["ARE"]["mean"], 5) for k, v in metrics["experts"].items()})


def reported_are(run_dir: str | Path) -> dict:
    """Mean ARE of each expert a finished run scored (its ``metrics.json``)."""
    experts = training_metrics(run_dir, "expert", "train it with `voxface train expert` or leave --expert-run out")
    experts = experts["experts"]
    return {k: round(v["ARE"]["mean"], 5) for k, v in experts.items()}


def score_experts(model: MorphableModel, renders: dict[str, np.ndarray], experts: dict, progress: bool = True) -> dict:
    """ARE (and shape-coefficient RMSE) of each expert's neutral shape against the renders' true shapes;
    the mean face (all-zero coefficients) is scored beside them."""
    k = model.n_shape
    true_shape = renders["params"][:, 12:12 + k]
    references = model.reconstruct(true_shape)
    predictions = {"mean face": np.zeros_like(true_shape)}
    for name, expert in tqdm(experts.items(), desc="scoring experts", disable=not progress):
        predictions[name] = np.concatenate([expert.predict(renders["images"][i:i + 64])["shape"]
                                            for i in range(0, len(true_shape), 64)])
    results = {}
    for name, shape in predictions.items():
        are = absolute_ratio_error(model.reconstruct(shape)[:, None], references, model.measurements)
        results[name] = {"ARE": are.as_dict(),
                         "shape_rmse": float(np.sqrt(np.mean((shape - true_shape) ** 2))),
                         "shape_correlation": float(np.corrcoef(shape.ravel(), true_shape.ravel())[0, 1])
                         if shape.std() > 0 else 0.0}
    return {"n_test_renders": len(true_shape), "experts": results}
