"""Loading a file voxface did not just write never runs code from it: a payload whose unpickling
would write a marker file is refused with one line naming the file, and the marker never appears."""

from __future__ import annotations

import pathlib
import pickle

import numpy as np
import pytest
import torch

from voxface.cli import main
from voxface.errors import VoxfaceError
from voxface.runs.checkpoints import load_array_pickle


class Payload:
    """Unpickling this calls ``Path.touch(marker)``: code run by merely loading the file."""

    def __init__(self, marker: pathlib.Path):
        self.marker = marker

    def __reduce__(self):
        return pathlib.Path.touch, (self.marker,)


def _evil(path: pathlib.Path, marker: pathlib.Path, kind: str) -> pathlib.Path:
    """A file that claims to be a voxface file of ``kind`` and carries a payload."""
    from voxface.predictors.bundle import FORMAT, VERSION

    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"format": FORMAT, "version": VERSION, "kind": kind, "payload": Payload(marker), "networks": {}}, path)
    return path


def _loaders():
    """Every saved file voxface reads, by its name in a run folder: (its kind, a loader)."""
    from voxface.predictors.bundle import FILES, read_bundle
    from voxface.predictors.voice_image_3d import VoiceToImageTo3D
    from voxface.predictors.voice_to_3d import VoiceTo3D
    from voxface.predictors.voice_to_image import VoiceToImage

    loaders = {name: (kind, lambda run, kind=kind: read_bundle(run, kind)) for kind, name in FILES.items()}
    loaders.update({"predictor.pt": ("voice-to-3d", VoiceTo3D.load),
                    "unsupervised.pt": ("voice-image-3d", VoiceToImageTo3D.load),
                    "voice_to_image.pt": ("voice-to-image", VoiceToImage.load)})
    return loaders


@pytest.mark.parametrize("name", list(_loaders()))
def test_every_bundle_loader_refuses_a_pickled_payload(tmp_path, name):
    kind, load = _loaders()[name]
    marker = tmp_path / "marker"
    _evil(tmp_path / "run" / name, marker, kind)
    with pytest.raises(VoxfaceError, match=f"{name} is refused: .*could run code"):
        load(tmp_path / "run")
    assert not marker.exists()


def test_predict_evaluate_and_serve_refuse_a_crafted_predictor_in_one_line(tmp_path, tiny_corpus_dir, capsys):
    marker = tmp_path / "marker"
    run = tmp_path / "run"
    _evil(run / "predictor.pt", marker, "voice-to-3d")
    (run / "config.yaml").write_text(f"corpus: {tiny_corpus_dir}\n")
    voice = tmp_path / "v.wav"
    voice.write_bytes(b"RIFF")
    assert main(["predict", str(voice), "--checkpoint", str(run), "--out", str(tmp_path / "out")]) == 2
    assert main(["evaluate", str(run), "--utterances", "2", "--quiet"]) == 2
    assert main(["serve", "--run", str(run), "--port", "7999"]) == 2
    err = capsys.readouterr().err
    assert not marker.exists() and not (run / "metrics.json").exists()
    assert "Traceback" not in err and err.count("predictor.pt is refused") == 3


def test_a_crafted_last_ckpt_is_passed_over_not_run(tmp_path):
    from voxface.runs.folder import resume_point

    marker = tmp_path / "marker"
    run = tmp_path / "run"
    good = {"loops": {"fit_loop": {"epoch_loop.state_dict": {"_batches_that_stepped": 4}}}, "global_step": 4}
    (run / "checkpoints").mkdir(parents=True)
    torch.save(good, run / "checkpoints" / "step4.ckpt")
    _evil(run / "checkpoints" / "last.ckpt", marker, "lightning")
    assert resume_point(run) == (run / "checkpoints" / "step4.ckpt", 4)
    assert not marker.exists()


def test_safe_checkpoint_io_reads_weights_only(tmp_path):
    from voxface.runs.trainer import SafeCheckpointIO

    marker = tmp_path / "marker"
    path = _evil(tmp_path / "x.ckpt", marker, "lightning")
    with pytest.raises(VoxfaceError, match="x.ckpt is refused"):
        SafeCheckpointIO().load_checkpoint(path)
    assert not marker.exists()


def test_published_pickles_load_only_arrays(tmp_path, shared_data):
    stats = load_array_pickle(shared_data / "bfm_topology" / "param_mean_std_62d_120x120.pkl", "statistics")
    assert stats["mean"].shape == stats["std"].shape == (62,)
    marker = tmp_path / "marker"
    evil = tmp_path / "param_whitening.pkl"
    evil.write_bytes(pickle.dumps({"param_mean": np.zeros(62), "x": Payload(marker)}))
    with pytest.raises(VoxfaceError, match="param_whitening.pkl is refused: .*pathlib"):
        load_array_pickle(evil, "statistics")
    assert not marker.exists()


def test_numpy_scalars_in_a_bundle_load(tmp_path):
    """Identity names saved as numpy strings (as older speaker-CNN runs did) are plain values, allowed."""
    from voxface.methods.speaker_cnn import MODEL_FILE, SPEAKER_CNN
    from voxface.models.speaker_cnn import SpeakerCNN
    from voxface.predictors.bundle import read_bundle, write_bundle

    classes = sorted(set(np.array(["id00002", "id00001"])))
    assert isinstance(classes[0], np.str_)
    net = SpeakerCNN(2, channels=8)
    write_bundle(tmp_path / MODEL_FILE, SPEAKER_CNN, {"network": net}, classes=classes)
    networks, values = read_bundle(tmp_path, SPEAKER_CNN)
    assert values["classes"] == ["id00001", "id00002"]
    assert all(torch.equal(a, b) for a, b in zip(networks["network"].state_dict().values(), net.state_dict().values()))
