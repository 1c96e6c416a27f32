"""Issue 22, items 6 and 7: a finished run keeps its predictor (and the voice reference fitted into
it), and a run or corpus folder is locked by the process that writes it: a second command on the
same folder says who holds it instead of writing beside it."""

from __future__ import annotations

import os

import pytest

from voxface.cli import main
from voxface.errors import VoxfaceError
from voxface.runs.lock import folder_lock


def test_a_second_lock_on_a_folder_names_the_holder(tmp_path):
    with folder_lock(tmp_path / "run", "run folder"):
        with pytest.raises(VoxfaceError, match=rf"run folder {tmp_path / 'run'} is in use by process {os.getpid()} "):
            with folder_lock(tmp_path / "run", "run folder"):
                pass
    with folder_lock(tmp_path / "run", "run folder"):  # released: free again
        pass


def test_a_second_train_on_a_run_in_use_is_refused_and_writes_nothing(tiny_corpus_dir, tmp_path, capsys):
    run = tmp_path / "speaker"
    with folder_lock(run, "run folder"):
        assert main(["train", "speaker", "--run", str(run), "--corpus", str(tiny_corpus_dir), "--set",
                     "max_steps=2", "--quiet"]) == 2
        assert f"is in use by process {os.getpid()}" in capsys.readouterr().err
        assert sorted(p.name for p in run.iterdir()) == [".voxface.lock"]


def test_a_second_synth_on_a_corpus_in_use_is_refused(tmp_path, capsys):
    out = tmp_path / "corpus"
    with folder_lock(out, "corpus folder"):
        assert main(["synth", "--out", str(out), "--identities", "2", "--utterances", "1", "--images", "1"]) == 2
    assert f"corpus folder {out} is in use by process {os.getpid()}" in capsys.readouterr().err


def test_rerunning_a_finished_supervised_run_keeps_its_predictor_and_voice_reference(tiny_corpus_dir, tmp_path):
    from voxface.methods.speaker import Config as SpeakerConfig
    from voxface.methods.speaker import fit as train_speaker
    from voxface.methods.supervised import Config, fit
    from voxface.predictors.voice_to_3d import VoiceTo3D
    from voxface.workflows.voice_reference import fit_voice_reference

    speaker = tmp_path / "speaker"
    train_speaker(SpeakerConfig(corpus=str(tiny_corpus_dir), max_steps=2, batch_size=8, val_every=2, workers=1),
                  speaker, progress=False)
    config = Config(corpus=str(tiny_corpus_dir), speaker_run=str(speaker), max_steps=2, batch_size=8, val_every=2,
                    embedding_bank=2, workers=1)
    run = tmp_path / "sup"
    fit(config, run, progress=False)
    voices = sorted((tiny_corpus_dir / "audio").glob("*/*.wav"))[:12]
    reference, _ = fit_voice_reference(run, audio=[str(v) for v in voices], progress=False)
    before = (run / "predictor.pt").read_bytes()
    again = fit(config, run, progress=False)
    assert (run / "predictor.pt").read_bytes() == before
    assert VoiceTo3D.load(run).reference.source == reference.source == again.predictor.reference.source
