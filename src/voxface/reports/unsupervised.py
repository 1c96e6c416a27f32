"""Scoring CMP unsupervised: the cascade baselines and the evaluation columns.

- **Base-1** / **Base-2** (paper Fig. 6): the separately trained GAN (a ``student: false`` run)
  followed by the fitting expert (Base-1) or by the expert network (Base-2, the teacher of
  CMP-unsupervised, as SynergyNet is in the paper); no joint training.
- **CMP-unsupervised**: the jointly trained generator and student.
- **expert on CMP faces** (a diagnostic, with the cascades): the expert network on the joint generator's
  faces; against CMP-unsupervised it isolates the student, against Base-2 the joint training's effect
  on the generator.
All of them are scored by :func:`voxface.reports.voice_to_3d.evaluate_run` beside CMP-supervised
and the oracles, on the same test identities and utterances; the generated faces are saved next
to the predicted meshes (``evaluation/samples``, the Fig. 7/11 analogue).
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import torch

from ..corpus.data import utterance_set
from ..corpus.format import Corpus
from ..corpus.validate import check_corpus
from ..errors import VoxfaceError
from ..face3d.mesh_io import save_mesh
from ..face3d.render import save_png
from ..methods.expert import NetworkExpert, expert_network
from ..predictors.voice_image_3d import VoiceToImageTo3D
from ..predictors.voice_to_3d import BUNDLE_FILE
from ..runs.folder import CONFIG_FILE, read_run_config, run_corpus
from ..runs.placement import place_network, place_predictor
from ..vision.fitting_expert import FittingExpert
from ..vision.tensor_images import image_grid, to_uint8
from .voice_to_3d import UTTERANCES_PER_IDENTITY, evaluate_run

log = logging.getLogger(__name__)

CMP_UNSUPERVISED, BASE_1, BASE_2 = "CMP-unsupervised", "Base-1", "Base-2"
EXPERT_ON_CMP_FACES = "expert on CMP faces"
EVALUATION_DIR = "evaluation"


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
                             progress: bool = True, device: str = "auto"
                             ) -> tuple[dict[str, np.ndarray], dict[str, torch.Tensor]]:
    """Name -> (N, U, V, 3) meshes of CMP-unsupervised and (with ``gan_run``) Base-1, Base-2 and the
    expert on CMP-unsupervised's faces; name -> the generated faces they came from. The networks
    compute on ``device`` (:mod:`voxface.runs.devices`)."""
    model = corpus.model
    n = len(corpus.identity_ids("test"))
    joint = place_predictor(VoiceToImageTo3D.load(run), device)
    if not joint.model.same_as(model):
        raise VoxfaceError(f"{run} predicts faces of morphable model {joint.model.name!r} "
                           f"({joint.model.n_vertices} vertices), not of corpus {corpus.root}'s {model.name!r}; "
                           "evaluate it on a corpus built on its model")
    faces = {CMP_UNSUPERVISED: test_faces(joint, corpus, per_identity, progress)}
    meshes = {CMP_UNSUPERVISED: joint.meshes(faces[CMP_UNSUPERVISED])}
    shapes = {}
    if gan_run is not None:
        gan_faces = test_faces(place_predictor(VoiceToImageTo3D.load(gan_run), device), corpus, per_identity, progress)
        images = to_uint8(gan_faces)
        expert_run = read_run_config(run)["expert_run"]
        experts = {BASE_1: FittingExpert(model), BASE_2: NetworkExpert(place_network(expert_network(expert_run, model), device))}
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
                          progress: bool = True, device: str = "auto") -> dict:
    """Score CMP-unsupervised (and the cascades with ``gan_run``) beside CMP-supervised and the oracles.

    The supervised run's predictor and ``config.yaml`` are copied into ``RUN/evaluation`` so that
    ``metrics.json`` and ``report/`` are written there and the supervised run stays untouched.
    """
    run = Path(run_dir)
    corpus = check_corpus(run_corpus(run, corpus_dir))
    sources = [Path(supervised_run) / name for name in (BUNDLE_FILE, CONFIG_FILE)]
    for source in sources:
        if not source.is_file():
            raise VoxfaceError(f"{supervised_run} is not a supervised run (no {source.name}); pass --supervised-run "
                               "the folder of `voxface train supervised` (e.g. runs/demo/supervised)")
    meshes, faces = unsupervised_predictions(run, Path(gan_run) if gan_run else None, corpus, per_identity, progress,
                                             device)
    folder = run / EVALUATION_DIR
    folder.mkdir(parents=True, exist_ok=True)
    for source in sources:
        shutil.copyfile(source, folder / source.name)
    save_samples(folder / "samples", corpus, meshes, faces, per_identity)
    return evaluate_run(folder, str(corpus.root), per_identity, progress, extra_methods=meshes,
                        baselines=(BASE_1, BASE_2), device=device)
