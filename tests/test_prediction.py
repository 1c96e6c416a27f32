"""One Prediction: what ``VoiceTo3D.predict`` returns is what ``voxface predict`` and the page write."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import trimesh

from voxface.evaluate.in_distribution import WARN_BELOW
from voxface.predictors.provenance import image_warning, training_provenance, voice_warning
from voxface.predictors.voice_to_3d import VoiceTo3D
from voxface.workflows.predict import predict_files, read_voice


def _voice(corpus: Path) -> Path:
    return sorted((corpus / "audio").glob("*/*.wav"))[0]


@pytest.mark.parametrize("fixture", ["predictor_file", "gaussian_predictor_file"])
def test_the_files_of_predict_are_the_prediction_written_out(fixture, request, tiny_corpus_dir, tmp_path):
    predictor = VoiceTo3D.load(request.getfixturevalue(fixture))
    voice = _voice(tiny_corpus_dir)
    prediction = predictor.predict(read_voice(voice))
    outcome = predict_files(predictor, [str(voice)], tmp_path, "obj")[0]
    mesh_file, png, parameters, *uncertainty = (Path(p) for p in outcome.outputs)
    assert json.loads(parameters.read_text()) == json.loads(json.dumps(prediction.record(str(voice))))
    np.testing.assert_allclose(trimesh.load(mesh_file, process=False).vertices, prediction.mesh, atol=1e-5)
    assert prediction.mesh.shape == (predictor.model.n_vertices, 3) and png.suffix == ".png"
    assert (prediction.uncertainty is not None) == predictor.probabilistic == bool(uncertainty)
    if prediction.uncertainty is not None:
        assert prediction.uncertainty.vertex_std.shape == (predictor.model.n_vertices,)
        assert (prediction.uncertainty.vertex_std > 0).all()
    assert 0.0 <= prediction.in_distribution <= 1.0 and prediction.reference == "tiny corpus"
    assert prediction.face["probabilistic"] == predictor.probabilistic
    assert "synthetic voices" in prediction.warning  # the tiny predictor says it heard synthetic voices


def test_the_page_checks_the_duration_once_and_reads_none_of_its_files_back(predictor_file, tiny_corpus_dir,
                                                                           tmp_path, monkeypatch):
    import voxface.audio.duration as duration
    from voxface.app.web import FaceFromVoice

    service = FaceFromVoice(VoiceTo3D.load(predictor_file), tmp_path / "out")
    voice = _voice(tiny_corpus_dir)
    probes = []
    monkeypatch.setattr(duration, "audio_seconds", lambda path: probes.append(path) or 1.0)
    written = tmp_path / "out"
    for method in ("read_text", "read_bytes", "open"):
        monkeypatch.setattr(Path, method, _refusing(getattr(Path, method), method == "open", written))
    result = service.predict(voice)
    monkeypatch.undo()
    assert len(probes) == 1
    assert np.array_equal(result.prediction.mesh, service.predictor.predict(read_voice(voice)).mesh)
    assert json.loads(result.parameters.read_text())["source"] == voice.name


def _refusing(method, takes_mode: bool, folder: Path):
    """``method`` of Path (``takes_mode``: its first argument is the mode, as ``open``'s), raising when
    it reads a file under ``folder`` (what the page wrote)."""

    def guarded(self, *args, **kwargs):
        mode = (args[0] if args else kwargs.get("mode", "r")) if takes_mode else "r"
        if folder in self.parents and "r" in mode and "+" not in mode:
            raise AssertionError(f"the page read back {self}")
        return method(self, *args, **kwargs)

    return guarded


def test_provenance_warnings(tiny_corpus_dir):
    from voxface.corpus.format import Corpus

    synthetic = training_provenance(Corpus(tiny_corpus_dir), 12)
    assert synthetic["synthetic"] and synthetic["trained_on"].startswith("the synthetic voices of 12 identities")
    real = {"trained_on": "real voices", "synthetic": False}
    assert voice_warning(real, None) is None and voice_warning(real, WARN_BELOW) is None
    assert "unlike any of them" in voice_warning(real, WARN_BELOW / 2)
    assert "unlike any of them" in voice_warning(synthetic, 0.0)  # an unusual voice is said first
    assert "carries no information" in voice_warning(synthetic, 0.5)
    assert image_warning(real) is None and image_warning({}) is None
    assert "trained on the synthetic voices" in image_warning(synthetic)
