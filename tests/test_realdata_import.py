"""`voxface import cmp|audio|faces`: the published CMP feature layout and single-modality trees."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from voxface.audio.features import cmp_logmel
from voxface.audio.voice import prepare_voice
from voxface.cli import main
from voxface.corpus.features import feature_path
from voxface.corpus.format import Corpus
from voxface.corpus.validate import find_problems


def _tiling_period(features: np.ndarray) -> int:
    """Frames of the utterance before CMP's tiling to 1,000 frames (its length if not tiled)."""
    n = len(features)
    return next((p for p in range(1, n) if np.array_equal(features[p:], features[:n - p])), n)


def _signature(features: np.ndarray) -> dict:
    """What can be checked of CMP features without their audio (docs/realdata.md)."""
    period = _tiling_period(features)
    base = features[:period].astype(np.float64)
    return {"bins": features.shape[1], "frames": len(features), "period": period,
            "mean": np.abs(base.mean(0)).max(), "std_error": np.abs(base.std(0) - 1).max(),
            "last_frame_lowest": float((base[-1] == base.min(0)).mean()), "last_frame_mean": base[-1].mean()}


def test_import_cmp_reads_the_published_features_and_validates(shared_data, tmp_path):
    source = shared_data / "cmp_features"
    out = tmp_path / "cmp"
    assert main(["import", "cmp", str(source), "--out", str(out), "--default-gender", "m", "--quiet"]) == 0
    assert find_problems(out) == []
    corpus = Corpus(out)
    assert len(corpus.utterances) == 15 and len(corpus.identities) == 5
    assert all(u.audio == "" for u in corpus.utterances)
    for u in corpus.utterances:
        video, utt = u.utterance[len(u.identity) + 1:].rsplit("_", 1)
        published = np.load(source / u.identity / video / f"{utt}.npy")
        assert np.array_equal(np.load(feature_path(corpus, u, "cmp_logmel")), published)
        assert u.duration_s == pytest.approx(len(published) / 100)


def test_import_cmp_refuses_speakers_it_cannot_name(shared_data, tmp_path, capsys):
    assert main(["import", "cmp", str(shared_data / "cmp_features"), "--out", str(tmp_path / "x"), "--quiet"]) == 2
    assert "--default-gender" in capsys.readouterr().err


def test_published_features_share_our_front_ends_invariants(shared_data):
    """Shape, per-bin normalisation before tiling, odd frame count, and the last-frame click."""
    ours = []
    for name in ("0_george_0", "1_jackson_0", "2_theo_1"):
        wave, sr = sf.read(shared_data / "fsdd" / "recordings" / f"{name}.wav", dtype="float32")
        ours.append(_signature(cmp_logmel(prepare_voice(_to16k(wave, sr), min_seconds=0.1))))
    published = [_signature(np.load(p)) for p in sorted((shared_data / "cmp_features").glob("*/*/*.npy"))]
    assert len(published) == 15
    for s in ours + published:
        assert s["bins"] == 64 and s["frames"] >= 1000
        assert s["mean"] < 1e-4 and s["std_error"] < 1e-4  # each bin normalised over the untiled frames
        assert s["period"] % 2 == 1  # VAD keeps whole 20 ms frames: N = 320 m samples, T = N // 160 + 1
        assert s["last_frame_mean"] < -2 and s["last_frame_lowest"] > 0.5


def _to16k(wave: np.ndarray, sr: int) -> np.ndarray:
    import soxr

    return soxr.resample(wave, sr, 16000, quality="HQ").astype(np.float32)


def test_import_audio_and_faces_trees(shared_data, tmp_path):
    audio = tmp_path / "speakers"
    for speaker in ("george", "jackson"):
        clips = [sf.read(shared_data / "fsdd" / "recordings" / f"{d}_{speaker}_0.wav", dtype="float32")[0]
                 for d in range(5)]
        (audio / speaker / "session").mkdir(parents=True)
        sf.write(audio / speaker / "session" / "a.wav", np.concatenate(clips), 8000)
    assert main(["import", "audio", str(audio), "--out", str(tmp_path / "a"), "--default-gender", "m",
                 "--workers", "1", "--quiet"]) == 0
    assert find_problems(tmp_path / "a") == []
    assert len(Corpus(tmp_path / "a").utterances) == 2
    faces = tmp_path / "people"
    for person in ("s1", "s2"):
        (faces / f"Eve_{person}").mkdir(parents=True)
        for k in (1, 2):
            (faces / f"Eve_{person}" / f"{k}.pgm").write_bytes((shared_data / "orl_faces" / person / f"{k}.pgm").read_bytes())
    assert main(["import", "faces", str(faces), "--out", str(tmp_path / "f"), "--default-gender", "f",
                 "--workers", "1", "--quiet"]) == 0
    assert find_problems(tmp_path / "f") == []
    corpus = Corpus(tmp_path / "f")
    assert {i.split for i in corpus.identities} == {"test"} and corpus.identity_params["has_reference"].all()
    assert len(corpus.faces) == 4


def test_import_cmp_reads_released_meshes_in_the_voxceleb3d_layout(tmp_path):
    """Tiny files in CMP's layout: features <speaker>/<video>/<utt>.npy, meshes <Name>/*.xyz|.obj|.npy."""
    from voxface.face3d.loading import load_morphable_model
    from voxface.face3d.mesh_io import save_mesh

    model = load_morphable_model("builtin")
    rng = np.random.default_rng(4)
    features, meshes = tmp_path / "fbank", tmp_path / "A2E_val"
    truth = {}
    for name in ("Ada_Lovelace", "Eve_Adams", "Zoe_Ball"):
        (features / name / "vid").mkdir(parents=True)
        np.save(features / name / "vid" / "00001.npy", rng.normal(size=(1000, 64)).astype(np.float32))
        truth[name] = rng.normal(size=model.n_shape)
        vertices = model.reconstruct(truth[name]) * np.array([2.0, -2.0, 2.0]) + 100.0  # image coordinates
        (meshes / name).mkdir(parents=True)
        if name == "Eve_Adams":
            save_mesh(meshes / name / "eve.obj", vertices, model.triangles)  # no .xyz: the .obj is used
        else:
            np.savetxt(meshes / name / "000001.xyz", vertices, fmt="%.5f")
        np.save(meshes / name / "000001.npy", np.zeros(228, np.float32))  # parameters: not read
    np.savetxt(meshes / "Zoe_Ball" / "000002.xyz", np.zeros((10, 3)))  # another topology: skipped
    out = tmp_path / "cmp"
    assert main(["import", "cmp", str(features), "--meshes", str(meshes), "--out", str(out), "--model", "builtin",
                 "--default-gender", "f", "--workers", "1", "--quiet"]) == 0
    assert find_problems(out) == []
    corpus = Corpus(out)
    params = corpus.identity_params
    assert params["has_reference"].all()
    for n, ident in enumerate(params["identity"]):
        assert np.abs(params["shape"][n] - truth[str(ident)]).max() < 0.15
        assert (out / str(params["reference_face"][n])).is_file()
    assert str(params["reference_face"][list(params["identity"]).index("Eve_Adams")]).endswith(".obj")
    skipped = (out / "skipped.csv").read_text()
    assert "other topology" in skipped and "000002.xyz" in skipped
    assert len((out / "meshes.csv").read_text().strip().splitlines()) == 1 + 3
