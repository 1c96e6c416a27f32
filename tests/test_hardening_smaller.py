"""Issue 22, item 10: the smaller cases. The server's cache has a size cap; evaluate-2d does not
replace the scores of another corpus; a training refused after its folder was made leaves nothing;
a batch larger than the data is refused; voice-reference reports skipped files even with --quiet;
white noise is not speech; messages suggest settings a shell passes as one word."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import soundfile as sf
import yaml

from voxface.cli import main
from voxface.errors import VoxfaceError


def test_the_servers_cache_is_capped_in_bytes_not_only_in_age(tmp_path):
    from voxface.app.storage import expire_cached

    files = set()
    for k in range(4):
        path = tmp_path / f"answer{k}" / "face.glb"
        path.parent.mkdir()
        path.write_bytes(b"x" * 1000)
        files.add(str(path))
    assert expire_cached([files], max_age_s=3600, max_bytes=2500) == 2  # young, but over the cap
    assert sorted(files) == [str(tmp_path / f"answer{k}" / "face.glb") for k in (2, 3)]  # the newest stay
    assert not (tmp_path / "answer0").exists()


def test_evaluate_2d_does_not_replace_the_scores_of_another_corpus(tiny_corpus_dir, tmp_path):
    from voxface.reports.voice_to_image import evaluate_2d

    run = tmp_path / "gan"
    run.mkdir()
    (run / "config.yaml").write_text(yaml.safe_dump({"kind": "gan2d", "corpus": str(tmp_path / "other"),
                                                     "speaker_run": str(tmp_path / "spk")}))
    (run / "metrics.json").write_text(json.dumps({"corpus": str(tmp_path / "other"), "scores": 1}))
    with pytest.raises(VoxfaceError, match=r"metrics.json holds the scores on corpus .*other; scoring on .*corpus"):
        evaluate_2d([run], corpus_dir=str(tiny_corpus_dir), progress=False)
    assert json.loads((run / "metrics.json").read_text())["scores"] == 1


def test_a_training_refused_after_its_folder_was_made_leaves_nothing(tiny_corpus_dir, tmp_path, capsys):
    run = tmp_path / "sup"
    assert main(["train", "supervised", "--run", str(run), "--corpus", str(tiny_corpus_dir),
                 "--speaker-run", str(tmp_path / "no-speaker"), "--set", "max_steps=1", "--quiet"]) == 2
    assert "no-speaker" in capsys.readouterr().err
    assert not run.exists()


def test_a_batch_larger_than_the_training_data_is_refused_before_training(tiny_corpus_dir, tmp_path):
    from voxface.methods.expert import Config, fit

    config = Config(corpus=str(tiny_corpus_dir), train_images=8, test_images=4, batch_size=16, max_steps=2)
    with pytest.raises(VoxfaceError, match=r"batch_size 16 is larger than the 8 training"):
        fit(config, tmp_path / "expert", progress=False)
    assert not (tmp_path / "expert").exists()


def test_voice_reference_names_skipped_files_even_when_quiet(predictor_file, tiny_corpus_dir, tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    shutil.copyfile(predictor_file, run / "predictor.pt")
    voices = sorted((tiny_corpus_dir / "audio").glob("*/*.wav"))[:12]
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF not audio")
    assert main(["voice-reference", str(run), "--audio", *map(str, voices), str(broken), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert f"{broken}: error:" in err and "1 of 13 file(s) were skipped" in err


def test_white_noise_is_not_speech(tmp_path):
    from voxface.workflows.predict import read_voice

    path = tmp_path / "noise.wav"
    sf.write(path, (0.3 * np.random.default_rng(0).standard_normal(5 * 16000)).clip(-1, 1), 16000)
    with pytest.raises(VoxfaceError, match=rf"no speech found in audio file {path}: .*noise"):
        read_voice(path)


def test_speech_like_voices_of_the_corpus_pass_the_noise_check(tiny_corpus_dir):
    from voxface.workflows.predict import read_voice

    for voice in sorted((tiny_corpus_dir / "audio").glob("*/*.wav"))[:4]:
        assert len(read_voice(voice)) > 0


def test_a_tuple_setting_is_suggested_as_one_shell_word():
    from voxface.corpus.synthetic import SynthConfig
    from voxface.runs.config import build

    with pytest.raises(VoxfaceError) as refused:
        build(SynthConfig, {"duration_s": [1.0, 2.0, 3.0]})
    suggestion = str(refused.value).split("--set ")[-1]
    assert " " not in suggestion.strip().split(")")[0]
