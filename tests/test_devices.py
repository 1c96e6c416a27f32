"""The device and precision settings, tested on the CPU: parsing, refusals, Lightning's arguments,
and a predictor moved behind :class:`OnDevice` computing exactly what it did."""

from __future__ import annotations

import pytest
import torch

from voxface.cli import main
from voxface.errors import VoxfaceError
from voxface.predictors.voice_to_3d import VoiceTo3D
from voxface.runs.devices import lightning_accelerator, lightning_precision, resolve_device
from voxface.runs.placement import OnDevice, place_predictor

NO_GPU = not torch.cuda.is_available()


def test_auto_is_the_cpu_without_a_gpu_and_32_bit_there():
    device = resolve_device("auto")
    assert device.type == ("cpu" if NO_GPU else "cuda")
    assert lightning_accelerator(torch.device("cpu")) == ("cpu", 1)
    assert lightning_precision("auto", torch.device("cpu")) == "32-true"
    assert lightning_precision("bf16", torch.device("cpu")) == "bf16-mixed"


def test_bf16_is_chosen_only_where_the_gpu_has_it_natively(monkeypatch):
    gpu = torch.device("cuda", 0)
    calls = []

    def support(including_emulation=True):
        calls.append(including_emulation)
        return including_emulation  # a V100: bf16 only by emulation

    monkeypatch.setattr(torch.cuda, "is_bf16_supported", support)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Tesla V100")
    assert lightning_precision("auto", gpu) == "16-mixed"
    with pytest.raises(VoxfaceError, match="V100 has no native bfloat16"):
        lightning_precision("bf16", gpu)
    assert calls and not any(calls)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)  # an A100
    assert lightning_precision("auto", gpu) == "bf16-mixed"


@pytest.mark.skipif(not NO_GPU, reason="checks the refusal on a machine without a GPU")
def test_asking_for_a_gpu_without_one_is_one_line(predictor_file, tmp_path, capsys):
    with pytest.raises(VoxfaceError, match="no CUDA GPU is visible"):
        resolve_device("cuda")
    assert main(["predict", "x.wav", "--checkpoint", str(predictor_file), "--out", str(tmp_path),
                 "--device", "cuda"]) == 2
    assert "no CUDA GPU is visible" in capsys.readouterr().err
    assert main(["train", "speaker", "--run", str(tmp_path / "run"), "--set", "device=cuda:1"]) == 2
    assert not (tmp_path / "run").exists()
    assert main(["train", "speaker", "--run", str(tmp_path / "new" / "run"), "--set", "device=cuda:1"]) == 2
    assert not (tmp_path / "new").exists()  # nor the folders made for it
    with pytest.raises(VoxfaceError, match="precision 16 needs a CUDA GPU"):
        lightning_precision("16", torch.device("cpu"))


def test_a_trainer_gets_the_device_and_precision_settings(tmp_path):
    from voxface.runs.trainer import SafeCheckpointIO, make_trainer

    trainer = make_trainer(tmp_path, max_steps=1, val_every=1, progress=False, device="cpu", precision="bf16")
    assert trainer.accelerator.__class__.__name__ == "CPUAccelerator"
    assert "bf16" in str(trainer.precision_plugin.precision)
    assert isinstance(trainer.strategy.checkpoint_io, SafeCheckpointIO)


def test_a_predictor_behind_on_device_computes_the_same(predictor_file, tiny_corpus_dir):
    from voxface.audio.voice import prepare_voice

    plain = VoiceTo3D.load(predictor_file)
    assert place_predictor(plain, "cpu").encoder is plain.encoder  # nothing changes on the CPU
    moved = VoiceTo3D.load(predictor_file)
    for name in ("encoder", "regressor"):
        setattr(moved, name, OnDevice(getattr(moved, name), torch.device("cpu")))
    wave = prepare_voice(next((tiny_corpus_dir / "audio").glob("*/*.wav")))
    assert (moved.predict(wave).parameters["shape"] == plain.predict(wave).parameters["shape"]).all()
    assert moved.encoder.embed_dim == plain.encoder.embed_dim
    assert moved.regressor.state_dict().keys() == plain.regressor.state_dict().keys()
