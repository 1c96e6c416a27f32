"""Scoring CMP unsupervised: the cascade baselines, the evaluation columns, the KD ablation, the pipeline.

- **Base-1** / **Base-2** (paper Fig. 6): the separately trained GAN (a ``student: false`` run)
  followed by the fitting expert (Base-1) or by the expert network (Base-2, the teacher of
  CMP-unsupervised, as SynergyNet is in the paper); no joint training.
- **CMP-unsupervised**: the jointly trained generator and student.
- **expert on CMP faces** (a diagnostic, with the cascades): the expert network on the joint generator's
  faces; against CMP-unsupervised it isolates the student, against Base-2 the joint training's effect
  on the generator.
All of them are scored by :func:`voxface.experiments.evaluate3d.evaluate_run` beside CMP-supervised
and the oracles, on the same test identities and utterances; the generated faces are saved next
to the predicted meshes (``evaluation/samples``, the Fig. 7/11 analogue).
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import time
from pathlib import Path

import numpy as np
import torch

from ..runs import atomic
from ..corpus.format import Corpus
from ..corpus.validate import check_corpus
from ..errors import VoxfaceError
from ..evaluate.geometry import absolute_ratio_error
from ..face3d.mesh_io import save_mesh
from ..face3d.render import save_png
from ..losses.distillation import DISTILLERS
from ..runs.trainer import CONFIG_FILE, read_run_config, run_corpus
from ..vision.fitting_expert import FittingExpert
from ..vision.tensor_images import image_grid, to_uint8
from .data import utterance_set
from .evaluate3d import UTTERANCES_PER_IDENTITY, evaluate_run
from .expert import ExpertConfig, NetworkExpert, load_expert_network, train_expert
from .unsupervised import UnsupervisedConfig, VoiceToImageTo3D, gan_checkpoint, train_unsupervised

log = logging.getLogger(__name__)

CMP_UNSUPERVISED, BASE_1, BASE_2 = "CMP-unsupervised", "Base-1", "Base-2"
EXPERT_ON_CMP_FACES = "expert on CMP faces"
EVALUATION_DIR = "evaluation"
PAPER_KD_ARE = {"vanilla": .0298, "attention": .0304, "sp": .0262, "cc": .0263, "rkd": .0254, "crd": .0255,
                "vid": .0259, "pkt": .0254}
"""Table S-5 of the CMP paper: mean ARE per distiller (real data, for comparison only)."""


def test_faces(predictor: VoiceToImageTo3D, corpus: Corpus, per_identity: int,
               progress: bool = True) -> torch.Tensor:
    """(N·U, 3, 64, 64) faces generated from each test identity's first U utterances (full length)."""
    test_ids = corpus.identity_ids("test")
    data = utterance_set(corpus, test_ids, "cmp_logmel", per_identity=per_identity, progress=progress)
    counts = np.bincount(data.identity_index, minlength=len(test_ids))
    if counts.min() < per_identity:
        raise ValueError(f"test identities with fewer than {per_identity} utterances")
    return predictor.faces(predictor.embed(data.features))


def unsupervised_predictions(run: Path, gan_run: Path | None, corpus: Corpus, per_identity: int,
                             progress: bool = True) -> tuple[dict[str, np.ndarray], dict[str, torch.Tensor]]:
    """Name -> (N, U, V, 3) meshes of CMP-unsupervised and (with ``gan_run``) Base-1, Base-2 and the
    expert on CMP-unsupervised's faces; name -> the generated faces they came from."""
    model = corpus.model
    n = len(corpus.identity_ids("test"))
    joint = VoiceToImageTo3D.load(run)
    if not joint.model.same_as(model):
        raise VoxfaceError(f"{run} predicts faces of morphable model {joint.model.name!r} "
                           f"({joint.model.n_vertices} vertices), not of corpus {corpus.root}'s {model.name!r}; "
                           "evaluate it on a corpus built on its model")
    faces = {CMP_UNSUPERVISED: test_faces(joint, corpus, per_identity, progress)}
    meshes = {CMP_UNSUPERVISED: joint.meshes(faces[CMP_UNSUPERVISED])}
    shapes = {}
    if gan_run is not None:
        gan_faces = test_faces(VoiceToImageTo3D.load(gan_run), corpus, per_identity, progress)
        images = to_uint8(gan_faces)
        expert_run = read_run_config(run)["expert_run"]
        experts = {BASE_1: FittingExpert(model), BASE_2: NetworkExpert(load_expert_network(expert_run, model))}
        for name, expert in experts.items():
            faces[name] = gan_faces
            shapes[name] = expert.predict(images)["shape"]
        faces[EXPERT_ON_CMP_FACES] = faces[CMP_UNSUPERVISED]
        shapes[EXPERT_ON_CMP_FACES] = experts[BASE_2].predict(to_uint8(faces[CMP_UNSUPERVISED]))["shape"]
    meshes.update({name: model.reconstruct(s) for name, s in shapes.items()})
    return {name: m.reshape(n, per_identity, -1, 3) for name, m in meshes.items()}, faces


def save_samples(folder: Path, corpus: Corpus, meshes: dict[str, np.ndarray], faces: dict[str, torch.Tensor],
                 per_identity: int) -> None:
    """Per test identity and method: the generated face (PNG) beside the predicted mesh (OBJ) of its
    first utterance, and one contact sheet per method (``<method>_faces.png``)."""
    test_ids = corpus.identity_ids("test")
    for name, mesh in meshes.items():
        slug = name.lower().replace(" ", "_")
        images = to_uint8(faces[name])[::per_identity]
        save_png(folder / f"{slug}_faces.png", image_grid(images, columns=10))
        for identity, image, vertices in zip(test_ids, images, mesh[:, 0]):
            save_png(folder / identity / f"{slug}_face.png", image)
            save_mesh(folder / identity / f"{slug}_mesh.obj", vertices, corpus.model.triangles)


def evaluate_unsupervised(run_dir: str | Path, supervised_run: str | Path, gan_run: str | Path | None = None,
                          corpus_dir: str | None = None, per_identity: int = UTTERANCES_PER_IDENTITY,
                          progress: bool = True) -> dict:
    """Score CMP-unsupervised (and the cascades with ``gan_run``) beside CMP-supervised and the oracles.

    The supervised run's ``predictor.pt`` and ``config.yaml`` are copied into ``RUN/evaluation`` so that
    ``metrics.json`` and ``report/`` are written there and the supervised run stays untouched.
    """
    run = Path(run_dir)
    corpus = check_corpus(run_corpus(run, corpus_dir))
    sources = [Path(supervised_run) / name for name in ("predictor.pt", CONFIG_FILE)]
    for source in sources:
        if not source.is_file():
            raise VoxfaceError(f"{supervised_run} is not a supervised run (no {source.name}); pass --supervised-run "
                               "the folder of `voxface train supervised` (e.g. runs/demo/supervised)")
    meshes, faces = unsupervised_predictions(run, Path(gan_run) if gan_run else None, corpus, per_identity, progress)
    folder = run / EVALUATION_DIR
    folder.mkdir(parents=True, exist_ok=True)
    for source in sources:
        shutil.copyfile(source, folder / source.name)
    save_samples(folder / "samples", corpus, meshes, faces, per_identity)
    return evaluate_run(folder, str(corpus.root), per_identity, progress, extra_methods=meshes,
                        baselines=(BASE_1, BASE_2))


# ------------------------------------------------------------------------------- run settings
def gan_only(config: UnsupervisedConfig) -> UnsupervisedConfig:
    """The cascades' GAN-only run: ``warm_start + max_steps`` iterations from scratch."""
    return dataclasses.replace(config, student=False, init_from=None, max_steps=config.warm_start + config.max_steps)


def joint(config: UnsupervisedConfig, gan_run: Path | None, **changes) -> UnsupervisedConfig:
    """A joint run; with ``warm_start`` it starts from ``gan_run`` after ``warm_start`` iterations."""
    if config.warm_start and gan_run is None:
        raise VoxfaceError(f"warm_start ({config.warm_start}) needs the GAN-only run to start from")
    if config.warm_start and config.warm_start % config.val_every:
        raise VoxfaceError(f"warm_start ({config.warm_start}) must be a multiple of val_every ({config.val_every}): "
                           "the GAN-only run keeps a checkpoint every val_every iterations")
    init_from = str(gan_checkpoint(gan_run, config.warm_start)) if config.warm_start else None
    return dataclasses.replace(config, student=True, init_from=init_from, **changes)


# ------------------------------------------------------------------------------- KD ablation
def student_are(run: Path, corpus: Corpus, per_identity: int, progress: bool = True) -> dict:
    """ARE (per ratio and mean) of a joint run's student on the test identities."""
    meshes, _ = unsupervised_predictions(run, None, corpus, per_identity, progress)
    references = corpus.model.reconstruct(corpus.reference_shapes(corpus.identity_ids("test")))
    return absolute_ratio_error(meshes[CMP_UNSUPERVISED], references, corpus.model.measurements).as_dict()


def kd_ablation(config: UnsupervisedConfig, out_dir: str | Path, distillers: list[str] | None = None,
                per_identity: int = UTTERANCES_PER_IDENTITY, gan_run: str | Path | None = None,
                progress: bool = True) -> dict:
    """Train CMP-unsupervised once per distiller (``out/<name>``, resumable) and tabulate the students'
    ARE (the Table S-5 analogue): ``kd_ablation.json`` and ``kd_ablation.md``.

    With ``warm_start`` the runs start from ``gan_run`` (e.g. a pipeline's ``gan/``); without one the
    GAN-only run is trained into ``out/gan`` first.
    """
    out = Path(out_dir)
    corpus = check_corpus(config.corpus)
    if config.warm_start and gan_run is None:
        gan_run = out / "gan"
        train_unsupervised(gan_only(config), gan_run, progress)
    rows = {}
    for name in distillers or list(DISTILLERS):
        start = time.perf_counter()
        train_unsupervised(joint(config, Path(gan_run) if gan_run else None, distiller=name, distill_weight=None),
                           out / name, progress)
        rows[name] = {"ARE": student_are(out / name, corpus, per_identity, progress),
                      "seconds": round(time.perf_counter() - start, 1), "paper_mean_ARE": PAPER_KD_ARE[name]}
        log.info("KD ablation %s: mean ARE %.4f", name, rows[name]["ARE"]["mean"])
    table = {"corpus": str(corpus.root), "iterations": config.max_steps, "warm_start": config.warm_start,
             "rows": rows}
    atomic.write_json(out / "kd_ablation.json", table)
    lines = ["| distiller | ER | FR | MR | CR | mean ARE | paper (Table S-5) |", "|---|---|---|---|---|---|---|"]
    lines += [f"| {name} | " + " | ".join(f"{r['ARE'][k]:.4f}" for k in ("ER", "FR", "MR", "CR", "mean"))
              + f" | {r['paper_mean_ARE']:.4f} |" for name, r in rows.items()]
    atomic.write_text(out / "kd_ablation.md", "\n".join(lines) + "\n")
    return table


# ------------------------------------------------------------------------------- pipeline
def run_pipeline(out_dir: str | Path, speaker_run: str, supervised_run: str, corpus: str = "data/synthetic",
                 expert: ExpertConfig | None = None, unsupervised: UnsupervisedConfig | None = None,
                 progress: bool = True) -> dict:
    """The whole unsupervised pipeline in ``out``: ``expert/``, ``gan/`` (GAN alone), ``cmp/`` (joint,
    from ``gan/`` after ``warm_start`` iterations), then the evaluation in ``cmp/evaluation``. Each stage
    resumes; stage times go to ``pipeline.json``."""
    out = Path(out_dir)
    expert = dataclasses.replace(expert or ExpertConfig(), corpus=corpus)
    unsupervised = dataclasses.replace(unsupervised or UnsupervisedConfig(), corpus=corpus, speaker_run=speaker_run,
                                       expert_run=str(out / "expert"))
    seconds = {}
    stages = [("expert", lambda: train_expert(expert, out / "expert", progress)),
              ("gan", lambda: train_unsupervised(gan_only(unsupervised), out / "gan", progress)),
              ("cmp", lambda: train_unsupervised(joint(unsupervised, out / "gan"), out / "cmp", progress)),
              ("evaluate", lambda: evaluate_unsupervised(out / "cmp", supervised_run, out / "gan", corpus,
                                                         progress=progress))]
    results = {}
    for name, stage in stages:
        start = time.perf_counter()
        results[name] = stage()
        seconds[name] = round(time.perf_counter() - start, 1)
        log.info("pipeline stage %s: %.0f s", name, seconds[name])
    metrics = results["evaluate"]
    summary = {"seconds": seconds, "total_seconds": round(sum(seconds.values()), 1),
               "mean_ARE": {k: v["ARE"]["mean"] for k, v in metrics["methods"].items()},
               "expert_ARE": results["expert"]}
    atomic.write_json(out / "pipeline.json", summary)
    return summary
