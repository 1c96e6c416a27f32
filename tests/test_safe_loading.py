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


def _evil(path: pathlib.Path, marker: pathlib.Path, fmt: str) -> pathlib.Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"format": fmt, "payload": Payload(marker), "state_dict": {}}, path)
    return path


def _loaders():
    from voxface.methods.expert import load_expert_network
    from voxface.methods.gan2d import load_generator
    from voxface.methods.speaker import load_encoder
    from voxface.methods.speaker_cnn import load_speaker_cnn
    from voxface.predictors.voice_image_3d import VoiceToImageTo3D
    from voxface.predictors.voice_to_3d import VoiceTo3D
    from voxface.predictors.voice_to_image import VoiceToImage

    return {
        "predictor.pt": ("voxface-voice-to-3d", VoiceTo3D.load),
        "encoder.pt": ("voxface-cmp-voice-encoder", load_encoder),
        "expert.pt": ("voxface-image-to-3d-expert", load_expert_network),
        "unsupervised.pt": ("voxface-voice-image-3d", VoiceToImageTo3D.load),
        "voice_to_image.pt": ("voxface-voice-to-image", VoiceToImage.load),
        "generator.pt": ("voxface-generator2d", load_generator),
        "speaker_cnn.pt": ("voxface-speaker-cnn", load_speaker_cnn),
    }


@pytest.mark.parametrize("name", list(_loaders()))
def test_every_bundle_loader_refuses_a_pickled_payload(tmp_path, name):
    fmt, load = _loaders()[name]
    marker = tmp_path / "marker"
    _evil(tmp_path / "run" / name, marker, fmt)
    with pytest.raises(VoxfaceError, match=f"{name} is refused: .*could run code"):
        load(tmp_path / "run")
    assert not marker.exists()


def test_predict_evaluate_and_serve_refuse_a_crafted_predictor_in_one_line(tmp_path, tiny_corpus_dir, capsys):
    marker = tmp_path / "marker"
    run = tmp_path / "run"
    _evil(run / "predictor.pt", marker, "voxface-voice-to-3d")
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


def test_numpy_scalars_in_an_older_bundle_still_load(tmp_path):
    """Older speaker-CNN runs saved their identity names as numpy strings: plain values, allowed."""
    from voxface.methods.speaker_cnn import MODEL_FILE, load_speaker_cnn
    from voxface.models.registry import save_network
    from voxface.models.speaker_cnn import SpeakerCNN

    classes = sorted(set(np.array(["id00002", "id00001"])))
    assert isinstance(classes[0], np.str_)
    net = SpeakerCNN(2, channels=8)
    torch.save({"format": "voxface-speaker-cnn", "classes": classes, "network": save_network(net)}, tmp_path / MODEL_FILE)
    loaded = load_speaker_cnn(tmp_path)
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), net.state_dict().values()))
