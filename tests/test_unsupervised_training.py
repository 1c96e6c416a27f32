"""CMP unsupervised end to end on the tiny corpus: expert renders, joint training with resume, the image
grid, the cascades and evaluation columns, the KD-ablation table, and the fitting expert."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from voxface.corpus.face_images import Appearance, render_face_image
from voxface.corpus.format import Corpus
from voxface.errors import VoxfaceError
from voxface.methods.expert import (
    EXPERT,
    NetworkExpert,
    expert_network,
    render_training_faces,
    reported_are,
    score_experts,
)
from voxface.methods.speaker import ENCODER
from voxface.methods.unsupervised import Config as UnsupervisedConfig
from voxface.methods.unsupervised import UnsupervisedCMP, mesh_triplet_loss
from voxface.methods.unsupervised import fit as train_unsupervised
from voxface.models.image_to_3d import ImageTo3D
from voxface.models.voice_encoders import CMPVoiceEncoder
from voxface.predictors.bundle import write_bundle
from voxface.predictors.voice_image_3d import VoiceToImageTo3D
from voxface.runs.folder import write_metrics
from voxface.vision.fitting_expert import (
    FittingExpert,
    affine_camera,
    fit_landmarks,
    normalised_coordinates,
    project_with_pose,
)
from voxface.vision.tensor_images import to_uint8

TINY_NET = dict(width=0.25, last_channel=32, input_size=64)


@pytest.fixture(scope="module")
def parts(tiny_corpus_dir, tmp_path_factory):
    """A (random) speaker encoder file and a (random) expert file for the tiny corpus."""
    root = tmp_path_factory.mktemp("unsup")
    torch.manual_seed(0)
    write_bundle(root / "speaker" / "encoder.pt", ENCODER, {"network": CMPVoiceEncoder()}, n_speakers=10)
    model = Corpus(tiny_corpus_dir).model
    write_bundle(root / "expert" / "expert.pt", EXPERT,
                 {"network": ImageTo3D(model.n_shape, model.n_expression, **TINY_NET)}, model=None)
    return root


def _config(tiny_corpus_dir, parts, **changes):
    base = dict(corpus=str(tiny_corpus_dir), speaker_run=str(parts / "speaker"), expert_run=str(parts / "expert"),
                generator_base=2, critic_base=4, embedding_bank=2, max_steps=4, batch_size=8, val_every=2,
                grid_every=2)
    return UnsupervisedConfig(**{**base, **changes})


@pytest.fixture(scope="module")
def runs(tiny_corpus_dir, parts, tmp_path_factory):
    """A joint run killed at iteration 3 and resumed to 4 (with the calls made after resuming),
    and a GAN-only run."""
    root = tmp_path_factory.mktemp("runs")
    config = _config(tiny_corpus_dir, parts)
    original = UnsupervisedCMP.training_step
    resumed_iterations = []

    def killed_at_iteration_3(self, batch, batch_idx):
        if self.iteration == 2:
            raise RuntimeError("simulated kill")
        return original(self, batch, batch_idx)

    def counting(self, batch, batch_idx):
        resumed_iterations.append(self.iteration)
        return original(self, batch, batch_idx)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(UnsupervisedCMP, "training_step", killed_at_iteration_3)
        with pytest.raises(RuntimeError, match="simulated kill"):
            train_unsupervised(config, root / "cmp", progress=False)
        killed_step = torch.load(root / "cmp" / "checkpoints" / "last.ckpt", weights_only=False)["global_step"]
        patch.setattr(UnsupervisedCMP, "training_step", counting)
        result = train_unsupervised(config, root / "cmp", progress=False).metrics
    train_unsupervised(_config(tiny_corpus_dir, parts, student=False, max_steps=2), root / "gan", progress=False)
    return root, config, killed_step, resumed_iterations, result


@pytest.mark.slow
def test_joint_training_logs_grids_and_resumes_after_a_kill(runs, tiny_corpus_dir, parts):
    root, config, killed_step, resumed_iterations, result = runs
    assert killed_step == 4  # the checkpoint of iteration 2 (two optimiser steps per iteration)
    assert resumed_iterations == [2, 3]  # resumed where it was killed, not from the start
    assert result["iterations"] == 4
    assert {p.name for p in (root / "cmp" / "grids").glob("*.png")} >= {"iter000002.png", "iter000004.png"}
    assert "photos per training identity" in (root / "cmp" / "train.log").read_text()  # the tiny corpus has 1
    predictor = VoiceToImageTo3D.load(root / "cmp")
    faces = predictor.faces(torch.randn(3, 64))
    assert faces.shape == (3, 3, 64, 64) and predictor.shapes(faces).shape == (3, predictor.model.n_shape)
    with pytest.raises(VoxfaceError, match="other settings"):
        train_unsupervised(_config(tiny_corpus_dir, parts, distiller="rkd"), root / "cmp", progress=False)


@pytest.mark.slow
def test_a_student_needs_an_expert_and_the_gan_alone_has_no_student(runs, tiny_corpus_dir, parts, tmp_path):
    with pytest.raises(VoxfaceError, match="expert_run"):
        train_unsupervised(_config(tiny_corpus_dir, parts, expert_run=None), tmp_path / "x", progress=False)
    with pytest.raises(VoxfaceError, match="generator_norm=.instance. must be one of"):
        train_unsupervised(_config(tiny_corpus_dir, parts, generator_norm="instance"), tmp_path / "y", progress=False)
    assert not (tmp_path / "y").exists()  # refused before the run folder is made
    gan = VoiceToImageTo3D.load(runs[0] / "gan")
    assert gan.student is None
    with pytest.raises(VoxfaceError, match="no student"):
        gan.shapes(gan.faces(torch.randn(1, 64)))


@pytest.mark.slow
def test_cascades_and_kd_ablation_write_all_columns(runs, tiny_corpus_dir, parts, tmp_path):
    from voxface.models.regressor import ParameterRegressor
    from voxface.predictors.voice_to_3d import VoiceTo3D
    from voxface.reports.unsupervised import (
        BASE_1,
        BASE_2,
        CMP_UNSUPERVISED,
        EXPERT_ON_CMP_FACES,
        evaluate_unsupervised,
        save_samples,
        unsupervised_predictions,
    )
    from voxface.workflows.unsupervised_pipeline import kd_ablation

    root, config = runs[0], runs[1]
    corpus = Corpus(tiny_corpus_dir)
    meshes, faces = unsupervised_predictions(root / "cmp", root / "gan", corpus, per_identity=2, progress=False)
    n_test = len(corpus.identity_ids("test"))
    assert set(meshes) == {CMP_UNSUPERVISED, BASE_1, BASE_2, EXPERT_ON_CMP_FACES}
    assert faces[EXPERT_ON_CMP_FACES] is faces[CMP_UNSUPERVISED]
    expert_shapes = NetworkExpert(expert_network(parts / "expert")).predict(to_uint8(faces[CMP_UNSUPERVISED]))
    np.testing.assert_allclose(meshes[EXPERT_ON_CMP_FACES],
                               corpus.model.reconstruct(expert_shapes["shape"]).reshape(meshes[BASE_2].shape),
                               atol=1e-4)
    assert all(m.shape == (n_test, 2, corpus.model.n_vertices, 3) for m in meshes.values())
    save_samples(tmp_path / "samples", corpus, meshes, faces, 2)
    first = corpus.identity_ids("test")[0]
    assert (tmp_path / "samples" / first / "cmp-unsupervised_face.png").is_file()
    assert (tmp_path / "samples" / first / "base-1_mesh.obj").is_file()
    supervised = tmp_path / "supervised"
    encoder = CMPVoiceEncoder().eval()
    VoiceTo3D("cmp", encoder, ParameterRegressor(64, corpus.model.n_shape), corpus.model).save(
        supervised / "predictor.pt")
    (supervised / "config.yaml").write_text(f"corpus: {tiny_corpus_dir}\n")
    if not torch.cuda.is_available():  # --device reaches every network; a missing GPU is refused before any write
        with pytest.raises(VoxfaceError, match="no CUDA GPU is visible"):
            evaluate_unsupervised(root / "cmp", supervised, root / "gan", per_identity=2, progress=False, device="cuda")
        assert not (root / "cmp" / "evaluation").exists()
    metrics = evaluate_unsupervised(root / "cmp", supervised, root / "gan", per_identity=2, progress=False,
                                    device="cpu")
    assert {"CMP-supervised", CMP_UNSUPERVISED, BASE_1, BASE_2} <= set(metrics["methods"])
    assert (root / "cmp" / "evaluation" / "metrics.json").is_file()
    assert not (supervised / "metrics.json").exists()
    table = kd_ablation(dataclasses.replace(config, max_steps=1, val_every=1), tmp_path / "kd", distillers=["crd"],
                        per_identity=2, progress=False)
    assert set(table["rows"]) == {"crd"} and 0 <= table["rows"]["crd"]["ARE"]["mean"] < 1
    assert "| crd |" in (tmp_path / "kd" / "kd_ablation.md").read_text()


@pytest.mark.slow
def test_a_run_can_start_from_a_gan_run_checkpoint_and_a_misfit_is_refused(runs, tiny_corpus_dir, parts, tmp_path):
    from voxface.methods.unsupervised import gan_checkpoint, load_gan_weights
    from voxface.models.cmp_gan import FaceCritic, FaceGenerator
    from voxface.workflows.unsupervised_pipeline import gan_only, joint

    root, config = runs[0], runs[1]
    source = gan_checkpoint(root / "gan", 2)
    assert source == root / "gan" / "checkpoints" / "step4.ckpt" and source.is_file()
    state = torch.load(source, map_location="cpu", weights_only=False)["state_dict"]
    n_fit = state["critic.classifier.weight"].shape[0]
    generator = FaceGenerator(64, config.generator_base, config.generator_norm)
    critic = FaceCritic(n_fit, config.critic_base, 64)
    load_gan_weights(source, generator, critic)
    for name, value in generator.state_dict().items():
        assert torch.equal(value, state[f"generator.{name}"])
    assert torch.equal(critic.trunk.net[0].weight, state["critic.trunk.net.0.weight"])
    with pytest.raises(VoxfaceError, match="does not fit this run's settings"):
        load_gan_weights(source, FaceGenerator(64, config.generator_base + 1, config.generator_norm), critic)
    with pytest.raises(VoxfaceError, match="no checkpoint"):
        load_gan_weights(root / "nowhere", generator, critic)
    # warm start: the GAN alone trains warm_start + max_steps; the joint run starts at warm_start
    warm = dataclasses.replace(config, warm_start=2, val_every=2, max_steps=3)
    assert gan_only(warm).max_steps == 5 and not gan_only(warm).student and gan_only(warm).init_from is None
    assert joint(warm, root / "gan").init_from == str(source)
    with pytest.raises(VoxfaceError, match="multiple of val_every"):
        joint(dataclasses.replace(warm, val_every=3), root / "gan")
    result = train_unsupervised(dataclasses.replace(joint(warm, root / "gan"), max_steps=1), tmp_path / "warm",
                                progress=False).metrics
    assert result["iterations"] == 1


def test_a_student_copied_from_the_expert_keeps_its_batch_norm_statistics(tiny_corpus_dir):
    from voxface.losses.distillation import create_distiller
    from voxface.models.cmp_gan import FaceCritic, FaceGenerator

    model = Corpus(tiny_corpus_dir).model
    expert = ImageTo3D(model.n_shape, model.n_expression, **TINY_NET)
    student = ImageTo3D(**expert.arch_kwargs)
    student.load_state_dict(expert.state_dict())
    dims = expert.distilled_feature_sizes()
    module = UnsupervisedCMP(FaceGenerator(64, 2), FaceCritic(3, 4), model, student, expert,
                             create_distiller("pkt", dims, dims)[0], freeze_student_norm=True, student_lr=1e-3)
    assert [g["lr"] for g in module.configure_optimizers()[1].param_groups] == [2e-4, 1e-3]  # generator, student
    module.on_fit_start()
    norms = [m for m in module.student.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert norms and not any(m.training for m in norms) and module.student.dropout.training
    assert module.generator.training and not module.expert.training
    images = torch.rand(4, 3, 64, 64) * 2 - 1
    module.student.dropout.eval()
    torch.testing.assert_close(module.student(images)["shape"], expert(images)["shape"])


def test_mesh_triplet_skips_pairs_whose_negative_shares_the_identity():
    meshes = torch.zeros(4, 5, 3)
    meshes[2:] += 1.0  # second pair far from the first
    # pairs (0,1) identity 0 and (2,3) identity 1: positives coincide, negatives are 1 away per coordinate
    assert float(mesh_triplet_loss(meshes, torch.tensor([0, 0, 1, 1]), margin=1.0)) == pytest.approx(0.0, abs=1e-6)
    assert float(mesh_triplet_loss(meshes, torch.tensor([0, 0, 0, 0]), margin=1.0)) == 0.0
    assert float(mesh_triplet_loss(meshes, torch.tensor([0, 0, 1, 1]), margin=1.5)) == pytest.approx(0.5, abs=1e-6)


def test_rendered_training_faces_carry_their_exact_camera(tiny_corpus_dir):
    model = Corpus(tiny_corpus_dir).model
    data = render_training_faces(model, 3, 64, seed=1)
    assert data["images"].shape == (3, 64, 64, 3) and data["params"].shape == (3, 12 + model.n_shape + model.n_expression)
    camera = data["params"][0, :12].reshape(3, 4)
    sr = camera[:, :3]
    scale = np.linalg.norm(sr[0])
    assert np.allclose(sr @ sr.T, scale ** 2 * np.eye(3), atol=1e-6)  # a scaled rotation


def test_landmark_fit_recovers_a_known_pose_and_landmarks(tiny_corpus_dir):
    model = Corpus(tiny_corpus_dir).model
    rng = np.random.default_rng(0)
    z = rng.normal(size=model.n_shape).astype(np.float32)
    appearance = Appearance(yaw=12.0, pitch=-5.0, roll=4.0)
    _, pixels = render_face_image(model, z, appearance, 120)
    target = normalised_coordinates(pixels.astype(np.float64), 120)
    exact = affine_camera(model.reconstruct(z)[model.landmarks68].astype(np.float64), target)
    rotation = exact.reshape(3, 4)[:, :3] / np.linalg.norm(exact[:3])
    assert np.allclose(rotation, appearance.rotation(), atol=1e-4)  # the render's head rotation
    fit = fit_landmarks(model, target, noise=1e-3, iterations=20)
    points = model.reconstruct(fit.shape, fit.expression)[model.landmarks68]
    assert np.abs(project_with_pose(points.astype(np.float64), fit.pose) - target).max() < 2e-3  # < 0.25 px
    mean_fit = np.abs(project_with_pose(model.mean[model.landmarks68].astype(np.float64), exact) - target).max()
    assert mean_fit > 5 * 2e-3  # the mean face does not explain the landmarks: the fit did work


@pytest.mark.slow
def test_fitting_expert_beats_the_mean_face_on_renders(tiny_corpus_dir, tmp_path):
    model = Corpus(tiny_corpus_dir).model
    renders = render_training_faces(model, 24, 120, seed=2)
    scored = score_experts(model, renders, {"fitting": FittingExpert(model)}, progress=False)
    metrics = scored["experts"]
    assert metrics["fitting"]["ARE"]["mean"] < metrics["mean face"]["ARE"]["mean"]
    with pytest.raises(VoxfaceError, match="not a finished expert run"):  # what --expert-run of a pipeline reads
        reported_are(tmp_path)
    write_metrics(tmp_path, {"training": scored})
    assert reported_are(tmp_path) == {k: round(v["ARE"]["mean"], 5) for k, v in metrics.items()}
