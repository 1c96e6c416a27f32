"""Typed settings: values from YAML / --set are coerced to the field's type, ranges are checked,
typos get the nearest key, and all of it happens before a command writes anything."""

from __future__ import annotations

import dataclasses

import pytest
import yaml

from voxface.cli import main
from voxface.corpus.synthetic import SynthConfig
from voxface.errors import VoxfaceError
from voxface.methods.expert import Config as ExpertConfig
from voxface.methods.gan2d import Config as Gan2dConfig
from voxface.methods.speaker import Config as SpeakerConfig
from voxface.methods.speaker_cnn import Config as SpeakerCNNConfig
from voxface.methods.supervised import Config as SupervisedConfig
from voxface.methods.unsupervised import Config as UnsupervisedConfig
from voxface.runs.config import build, parse_overrides

CONFIGS = (SynthConfig, SpeakerConfig, SupervisedConfig, ExpertConfig, UnsupervisedConfig, SpeakerCNNConfig,
           Gan2dConfig)


def test_yaml_exponents_are_numbers_not_text():
    raw = parse_overrides(["lr=2e-4", "betas=[0.5, 0.9]", "max_steps=1e3"])
    assert raw["lr"] == "2e-4"  # what YAML 1.1 makes of it
    config = build(SupervisedConfig, raw)
    assert config.lr == float("2e-4") and isinstance(config.lr, float)
    assert config.betas == (0.5, 0.9) and config.max_steps == 1000 and isinstance(config.max_steps, int)


@pytest.mark.parametrize("item, match", [
    ("identities=2.5", "identities=2.5 is not a whole number"),
    ("identities=1", "identities=1 must be >= 2"),
    ("seed=-1", "seed=-1 must be >= 0"),
    ("link_strength=2", "link_strength=2.0 must be <= 1"),
    ("duration_s=[3, 2]", r"must be \(shortest, longest\)"),
    ("utterances=ten", "utterances='ten' is not a whole number"),
])
def test_synth_settings_are_checked(item, match):
    with pytest.raises(VoxfaceError, match=match):
        build(SynthConfig, parse_overrides([item]))


@pytest.mark.parametrize("item, match", [
    ("batch_size=64.5", "batch_size=64.5 is not a whole number"),
    ("max_steps=0", "max_steps=0 must be >= 1"),
    ("max_steps=-1", "max_steps=-1 must be >= 1"),
    ("val_every=0", "val_every=0 must be >= 1"),
    ("dropout=2", "dropout=2.0 must be < 1"),
    ("lr=-1", "lr=-1.0 must be > 0"),
    ("lr=fast", "lr='fast' is not a number"),
    ("backbone=wav2vec", "backbone='wav2vec' must be one of cmp, resemblyzer"),
    ("device=gpu", "device='gpu' must be one of auto, cpu, cuda, cuda:N"),
    ("precision=8", "precision='8' must be one of auto, 32, bf16, 16"),
])
def test_training_settings_are_checked(item, match):
    with pytest.raises(VoxfaceError, match=match):
        build(SupervisedConfig, parse_overrides([item]))


def test_a_typo_is_answered_with_the_nearest_key():
    with pytest.raises(VoxfaceError, match="setting 'max_step'; did you mean 'max_steps'"):
        build(SupervisedConfig, {"max_step": 3})


def test_direct_construction_is_checked_too():
    with pytest.raises(VoxfaceError, match="batch_size=0 must be >= 1"):
        SpeakerConfig(batch_size=0)
    assert SpeakerConfig(lr="1e-3").lr == 1e-3


@pytest.mark.parametrize("cls", CONFIGS)
def test_every_config_accepts_its_own_defaults_and_its_yaml_round_trip(cls):
    default = cls()
    dumped = yaml.safe_load(yaml.safe_dump({k: list(v) if isinstance(v, tuple) else v
                                            for k, v in dataclasses.asdict(default).items()}))
    assert build(cls, dumped) == default


def test_shipped_config_files_are_valid():
    from pathlib import Path

    from voxface.runs.config import load_yaml

    kinds = {"synth": SynthConfig, "speaker_": SpeakerConfig, "supervised": SupervisedConfig, "expert": ExpertConfig,
             "unsupervised": UnsupervisedConfig, "gan2d_generator": Gan2dConfig}
    files = sorted(Path(__file__).parents[1].joinpath("configs").glob("*.yaml"))
    checked = 0
    for path in files:
        for prefix, cls in kinds.items():
            if path.name.startswith(prefix):
                build(cls, load_yaml(path))
                checked += 1
    assert checked >= 6


def test_refused_synth_settings_leave_no_folder(tmp_path, capsys):
    out = tmp_path / "corpus"
    for item in ("identities=2.5", "seed=-1", "link_strength=2"):
        assert main(["synth", "--out", str(out), "--set", item, "--quiet"]) == 2
        assert "Traceback" not in capsys.readouterr().err
    assert not out.exists()


def test_refused_training_settings_leave_no_run_folder(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "supervised", "--run", str(run), "--set", "lr=-1"]) == 2
    assert "lr=-1.0 must be > 0" in capsys.readouterr().err
    assert not run.exists()
