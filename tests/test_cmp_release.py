"""The released CMP / Wen et al. / SynergyNet checkpoints, output for output (shared/data/cmp_checkpoints)."""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from voxface.audio.features import cmp_logmel
from voxface.audio.voice import prepare_voice
from voxface.errors import VoxfaceError
from voxface.face3d.bfm import read_triangles_mat
from voxface.face3d.transforms import apply_similarity, split_camera
from voxface.methods.expert import expert_network
from voxface.predictors.cmp_release import import_cmp_release, import_wen_release, shared_release_layout
from voxface.predictors.voice_image_3d import VoiceToImageTo3D
from voxface.predictors.voice_to_3d import VoiceTo3D
from voxface.predictors.voice_to_image import VoiceToImage

CLIPS = ("george_0", "nicolas_1", "theo_2")
TOLERANCE = 1e-4


def relative_error(ours, expected) -> float:
    """max |ours - expected| / max |expected|."""
    return float(np.abs(np.asarray(ours, np.float64) - expected).max() / np.abs(expected).max())


@pytest.fixture(scope="module")
def release(shared_data, tmp_path_factory) -> Path:
    """The fixture files laid out as the release unpacks (train.configs from bfm_topology)."""
    source = (shared_data / "cmp_checkpoints").resolve()
    if not (source / "expected").is_dir():
        pytest.skip(f"{source} not found (set VOXFACE_SHARED_DATA)")
    return shared_release_layout(shared_data, tmp_path_factory.mktemp("release") / "release")


@pytest.fixture(scope="module")
def imported(release, tmp_path_factory) -> dict[str, Path]:
    return import_cmp_release(release, tmp_path_factory.mktemp("runs") / "cmp")


def expected(shared_data, clip):
    return np.load(shared_data / "cmp_checkpoints" / "expected" / f"{clip}.npz")


def official_features(shared_data, clip) -> torch.Tensor:
    return torch.from_numpy(np.load(shared_data / "cmp_reference" / "official_features" / f"{clip}.npy").T[None].copy())


def test_supervised_release_equals_the_official_outputs(shared_data, imported):
    predictor = VoiceTo3D.load(imported["supervised"])
    for clip in CLIPS:
        e = expected(shared_data, clip)
        embedding = predictor.encoder(official_features(shared_data, clip))
        assert relative_error(embedding.detach(), e["embedding"]) < TOLERANCE
        outputs = predictor.regressor(embedding)
        whitened = (outputs - predictor.regressor.target_mean) / predictor.regressor.target_std
        assert relative_error(whitened.detach(), e["params51"]) < TOLERANCE
        assert relative_error(predictor.meshes(embedding)[0], e["mesh_supervised"]) < TOLERANCE


def test_supervised_release_from_the_wav_through_voxfaces_front_end(shared_data, imported):
    predictor = VoiceTo3D.load(imported["supervised"])
    for clip in CLIPS:
        mesh = predictor.predict(prepare_voice(shared_data / "cmp_reference" / "wav" / f"{clip}.wav")).mesh
        assert relative_error(mesh, expected(shared_data, clip)["mesh_supervised"]) < TOLERANCE


def test_unsupervised_release_equals_the_official_outputs(shared_data, imported):
    bundle = VoiceToImageTo3D.load(imported["unsupervised"])
    for clip in CLIPS:
        e = expected(shared_data, clip)
        faces = bundle.faces(bundle.encoder(official_features(shared_data, clip)))
        assert relative_error(faces[0], e["face_image"]) < TOLERANCE
        resized = F.interpolate(faces, size=(120, 120), mode="bilinear", align_corners=True)
        assert relative_error(resized[0], e["face_image_120"]) < TOLERANCE
        mesh = bundle.meshes(faces)[0]
        assert relative_error(mesh, e["mesh_unsupervised"]) < TOLERANCE
        pose = bundle.poses(faces)[0]
        assert relative_error(pose, e["pose12"]) < TOLERANCE
        _, rotation, offset = split_camera(pose.astype(np.float64))
        posed = apply_similarity(mesh.astype(np.float64), 1.0, rotation, offset)
        assert relative_error(posed, e["mesh_unsupervised_posed"]) < TOLERANCE


def test_the_model_has_the_release_triangles_facing_the_camera(release, imported):
    model = VoiceTo3D.load(imported["supervised"]).model
    release_triangles = read_triangles_mat(release / "train.configs" / "tri.mat")
    assert model.name == "bfm" and model.n_vertices == 53215 and len(model.triangles) == len(release_triangles)
    np.testing.assert_array_equal(model.triangles, release_triangles[:, ::-1])  # same faces, counter-clockwise


def test_the_live_preview_of_a_release_face_looks_like_its_full_render(imported):
    from .test_simplify import assert_looks_alike, preview_and_full_renders

    model = VoiceTo3D.load(imported["supervised"]).model
    face = model.reconstruct(np.random.default_rng(0).normal(size=model.n_shape).astype(np.float32))
    full, preview, clustering = preview_and_full_renders(face, model.triangles)  # the page's live size and cells
    assert len(clustering.triangles) < 0.45 * len(model.triangles)
    assert_looks_alike(full, preview)


def test_synergynet_is_an_expert_for_bfm_corpora_only(shared_data, imported):
    from voxface.face3d.loading import load_morphable_model

    model = VoiceTo3D.load(imported["supervised"]).model
    network = expert_network(imported["expert"], model)
    assert network.input_size == 120 and network.align_corners
    with pytest.raises(VoxfaceError, match="not of this corpus's 'builtin'"):
        expert_network(imported["expert"], load_morphable_model("builtin"))


def test_wen_release_is_a_voice_to_image_model(shared_data, release, tmp_path):
    wen = tmp_path / "wen"
    wen.mkdir()
    (wen / "voice_embedding.pth").symlink_to(release / "pretrained_models" / "voice_embedding.pth")
    (wen / "generator.pth").symlink_to(release / "pretrained_models" / "generator_48000.pth")
    model = VoiceToImage.load(import_wen_release(wen, tmp_path / "run"))
    assert model.provenance["synthetic"] is False and "VoxCeleb1" in model.provenance["trained_on"]
    e = expected(shared_data, "george_0")
    face = model.generator(model.encoder(official_features(shared_data, "george_0")))[0]
    assert relative_error(face, e["face_image"]) < TOLERANCE
    image = model.image(shared_data / "cmp_reference" / "wav" / "george_0.wav")
    clamped = np.clip(e["face_image"], -1, 1)
    shown = (clamped - clamped.min()) / (clamped.max() - clamped.min())
    assert image.shape == (64, 64, 3) and np.abs(image / 255.0 - shown.transpose(1, 2, 0)).max() < 0.01


def test_an_incomplete_folder_is_refused_naming_what_is_missing(release, tmp_path):
    partial = tmp_path / "partial"
    (partial / "pretrained_models").mkdir(parents=True)
    (partial / "pretrained_models" / "voice_embedding.pth").symlink_to(
        release / "pretrained_models" / "voice_embedding.pth")
    with pytest.raises(VoxfaceError, match=r"not an unpacked CMP release: missing .*2D-to-3D-pretrained.tar.*tri.mat"):
        import_cmp_release(partial, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_file_that_would_run_code_is_refused_and_nothing_runs(release, tmp_path):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (Path.touch, (marker,))

    hostile = tmp_path / "hostile"
    shutil.copytree(release, hostile, symlinks=True)
    (hostile / "supervised_64").unlink()
    (hostile / "supervised_64").mkdir()
    with open(hostile / "supervised_64" / "generator_48000.pth", "wb") as f:
        pickle.dump({"classifier_scale.1.weight": Payload()}, f, protocol=2)
    with pytest.raises(VoxfaceError, match="loading them could run code; voxface refuses it"):
        import_cmp_release(hostile, tmp_path / "out")
    assert not marker.exists() and not (tmp_path / "out").exists()


def test_a_file_of_another_network_is_refused(release, tmp_path):
    wrong = tmp_path / "wrong"
    shutil.copytree(release, wrong, symlinks=True)
    (wrong / "supervised_64").unlink()
    (wrong / "supervised_64").mkdir()
    torch.save({"classifier_scale.1.weight": torch.zeros(1, 64)}, wrong / "supervised_64" / "generator_48000.pth")
    with pytest.raises(VoxfaceError, match="does not hold the CMP supervised regressor"):
        import_cmp_release(wrong, tmp_path / "out")


def test_cmp_logmel_of_the_wav_feeds_the_release_like_the_official_features(shared_data, imported):
    """The importer's claim end to end: features from voxface's front end give the release's embedding."""
    predictor = VoiceTo3D.load(imported["supervised"])
    for clip in CLIPS:
        ours = cmp_logmel(prepare_voice(shared_data / "cmp_reference" / "wav" / f"{clip}.wav"))
        embedding = predictor.encoder(torch.from_numpy(ours.T[None].copy()))
        assert relative_error(embedding.detach(), expected(shared_data, clip)["embedding"]) < TOLERANCE


def test_features_command_writes_the_official_features_and_goes_on_after_a_bad_file(shared_data, tmp_path, capsys):
    from voxface.cli import main

    clips = [shared_data / "cmp_reference" / "wav" / f"{c}.wav" for c in ("george_0", "theo_2")]
    bad = tmp_path / "notes.wav"
    bad.write_text("not audio")
    assert main(["features", str(clips[0]), str(bad), str(clips[1]), "--out", str(tmp_path / "f")]) == 2
    captured = capsys.readouterr()
    assert "notes.wav: error:" in captured.err and "the other 2 were written" in captured.err
    for clip in clips:
        ours = np.load(tmp_path / "f" / f"{clip.stem}.npy")
        official = np.load(shared_data / "cmp_reference" / "official_features" / f"{clip.stem}.npy")
        assert ours.dtype == np.float32 and ours.shape == official.shape and np.abs(ours - official).max() <= 1e-4
    assert sorted(p.name for p in (tmp_path / "f").iterdir()) == ["george_0.npy", "theo_2.npy"]


def test_import_predict_and_voice_reference_from_the_command_line(shared_data, release, tmp_path, capsys):
    import json

    from voxface.cli import main

    assert main(["import", "cmp-release", str(release), "--out", str(tmp_path / "cmp")]) == 0
    assert "supervised: " in capsys.readouterr().out
    assert main(["import", "cmp-release", str(release), "--out", str(tmp_path / "cmp")]) == 2  # occupied
    assert "already holds" in capsys.readouterr().err
    clip = shared_data / "cmp_reference" / "wav" / "nicolas_1.wav"
    run = tmp_path / "cmp" / "supervised"
    assert main(["predict", str(clip), "--checkpoint", str(run), "--out", str(tmp_path / "p")]) == 0
    from voxface.face3d.mesh_io import load_mesh

    vertices = load_mesh(tmp_path / "p" / "nicolas_1.obj")[0]
    assert relative_error(vertices, expected(shared_data, "nicolas_1")["mesh_supervised"]) < TOLERANCE
    voice = json.loads((tmp_path / "p" / "nicolas_1.json").read_text())["voice"]
    assert voice["in_distribution_score"] is None and voice["warning"] is None  # the release ships no voices
    assert "VoxCeleb" in voice["trained_on"]
    voices = sorted((shared_data / "fsdd" / "recordings").glob("*_jackson_*.wav"))[:20]
    voices += sorted((shared_data / "fsdd" / "recordings").glob("*_lucas_*.wav"))[:20]
    assert main(["voice-reference", str(run), "--audio", *map(str, voices), "--quiet"]) == 2  # one clip too short
    assert "1 of 40 file(s) were skipped" in capsys.readouterr().err  # said, even with --quiet
    assert VoiceTo3D.load(run).reference.source.endswith("in 1 folder(s) given by the user")  # FSDD: one folder
    assert main(["voice-reference", str(run)]) == 2
    assert "--corpus CORPUS or --audio" in capsys.readouterr().err


@pytest.fixture(scope="module")
def bfm_corpus(release, tmp_path_factory) -> Path:
    """A tiny synthetic corpus on the release's own BFM model (``--model cmp-release:DIR``)."""
    from voxface.corpus.synthetic import SynthConfig, generate_corpus

    out = tmp_path_factory.mktemp("bfm") / "corpus"
    generate_corpus(out, SynthConfig(identities=12, utterances=3, images=2, seed=1, workers=1,
                                     duration_s=(1.2, 1.6), model=f"cmp-release:{release}"), progress=False)
    return out


@pytest.mark.slow
def test_the_released_models_are_scored_on_a_corpus_of_their_model(imported, bfm_corpus, tmp_path):
    """evaluate (CMP-supervised) and evaluate-unsupervised (CMP-unsupervised beside it) of the release."""
    from voxface.reports.unsupervised import evaluate_unsupervised
    from voxface.reports.voice_to_3d import evaluate_run

    supervised = evaluate_run(imported["supervised"], str(bfm_corpus), per_identity=2, progress=False)
    assert supervised["morphable_model"]["name"] == "bfm" and supervised["in_distribution"] is None
    metrics = evaluate_unsupervised(imported["unsupervised"], imported["supervised"], corpus_dir=str(bfm_corpus),
                                    per_identity=2, progress=False)
    for method in ("CMP-supervised", "CMP-unsupervised"):
        assert np.isfinite(metrics["methods"][method]["ARE"]["mean"])
    assert (imported["unsupervised"] / "evaluation" / "samples" / "cmp-unsupervised_faces.png").is_file()
    with pytest.raises(VoxfaceError, match="pass --corpus CORPUS"):
        evaluate_run(imported["supervised"], per_identity=2, progress=False)


@pytest.mark.slow
def test_synergynet_is_the_expert_of_cmp_unsupervised_training_on_a_bfm_corpus(imported, bfm_corpus, tmp_path):
    from voxface.methods.speaker import ENCODER
    from voxface.methods.unsupervised import Config as UnsupervisedConfig
    from voxface.methods.unsupervised import fit as train_unsupervised
    from voxface.models.voice_encoders import CMPVoiceEncoder
    from voxface.predictors.bundle import write_bundle

    torch.manual_seed(0)
    write_bundle(tmp_path / "speaker" / "encoder.pt", ENCODER, {"network": CMPVoiceEncoder()}, n_speakers=8)
    config = UnsupervisedConfig(corpus=str(bfm_corpus), speaker_run=str(tmp_path / "speaker"),
                                expert_run=str(imported["expert"]), student_init="expert", generator_base=2,
                                critic_base=4, embedding_bank=2, max_steps=2, batch_size=4, val_every=2,
                                grid_every=2, channels_last=False)
    train_unsupervised(config, tmp_path / "joint", progress=False)
    trained = VoiceToImageTo3D.load(tmp_path / "joint")
    assert trained.student.input_size == 120 and trained.student.align_corners
    assert trained.model.same_as(VoiceTo3D.load(imported["supervised"]).model)


@pytest.mark.slow
def test_wen_release_is_scored_by_evaluate_2d(release, tiny_corpus_dir, tmp_path, capsys):
    import json

    from voxface.cli import main

    corpus = tmp_path / "corpus"  # evaluate-2d caches features in the corpus: keep the shared one as made
    shutil.copytree(tiny_corpus_dir, corpus)

    wen = tmp_path / "wen_files"
    wen.mkdir()
    (wen / "voice_embedding.pth").symlink_to(release / "pretrained_models" / "voice_embedding.pth")
    (wen / "generator.pth").symlink_to(release / "pretrained_models" / "generator_48000.pth")
    assert main(["import", "wen-release", str(wen), "--out", str(tmp_path / "wen")]) == 0
    assert main(["evaluate-2d", str(tmp_path / "wen"), "--per-identity", "2", "--quiet"]) == 2
    assert "pass --corpus" in capsys.readouterr().err
    if not torch.cuda.is_available():
        assert main(["evaluate-2d", str(tmp_path / "wen"), "--corpus", str(corpus), "--device", "cuda", "--quiet"]) == 2
        assert "no CUDA GPU is visible" in capsys.readouterr().err and not (tmp_path / "wen" / "metrics.json").exists()
    assert main(["evaluate-2d", str(tmp_path / "wen"), "--corpus", str(corpus), "--per-identity", "2",
                 "--tau", "0.55", "--device", "cpu", "--quiet"]) == 0
    metrics = json.loads((tmp_path / "wen" / "metrics.json").read_text())
    assert metrics["generator"] == "wen-release" and metrics["image_quality"] is None
    assert 0 <= metrics["identity_accuracy"] <= 1 and 0 <= metrics["matching_1v2"] <= 1
    assert "no target: trained elsewhere" in (tmp_path / "wen" / "report" / "report.md").read_text()
