"""Resuming trusts files, not markers: damaged checkpoints, deleted WAVs, truncated features and
shards, killed writers' temporaries are noticed and redone; a finished run keeps its record."""

from __future__ import annotations

import csv
import json
import logging
import shutil

import numpy as np
import pytest

from voxface.cli import main
from voxface.corpus.features import ensure_features, feature_path, load_features
from voxface.corpus.format import Corpus
from voxface.corpus.synthetic import SynthConfig, generate_corpus
from voxface.corpus.validate import find_problems
from voxface.errors import VoxfaceError
from voxface.methods.speaker import Config as SpeakerConfig
from voxface.methods.speaker import fit as train_speaker_encoder
from voxface.methods.supervised import Config as SupervisedConfig
from voxface.methods.supervised import fit as train_supervised
from voxface.runs.folder import open_run, resume_point

from .conftest import TINY


@pytest.fixture(scope="module")
def speaker_run(tiny_corpus_dir, tmp_path_factory):
    """A finished 12-step speaker run (checkpoints at steps 6 and 12)."""
    config = SpeakerConfig(corpus=str(tiny_corpus_dir), max_steps=12, batch_size=8, val_every=6, workers=1)
    run = tmp_path_factory.mktemp("runs") / "speaker"
    train_speaker_encoder(config, run, progress=False)
    return run, config


def _csv_steps(run) -> list[int]:
    with open(run / "logs" / "metrics.csv", newline="") as file:
        return [int(r["step"]) for r in csv.DictReader(file)]


def test_rerunning_a_finished_run_keeps_and_reports_its_metrics(speaker_run, tmp_path):
    run, config = speaker_run
    copy = tmp_path / "speaker"
    shutil.copytree(run, copy)
    before = json.loads((copy / "metrics.json").read_text())["training"]
    assert any(k.startswith("val/") for k in before)
    again = train_speaker_encoder(config, copy, progress=False).metrics
    assert json.loads((copy / "metrics.json").read_text())["training"] == before
    assert again == {k: v for k, v in before.items() if k.startswith("val/")}
    assert _csv_steps(copy) == _csv_steps(run)


def test_supervised_rerun_keeps_its_training_metrics(speaker_run, tiny_corpus_dir, tmp_path):
    speaker, _ = speaker_run
    config = SupervisedConfig(corpus=str(tiny_corpus_dir), speaker_run=str(speaker), max_steps=4, batch_size=8,
                              val_every=2, embedding_bank=2, workers=1)
    train_supervised(config, tmp_path / "sup", progress=False)
    first = json.loads((tmp_path / "sup" / "metrics.json").read_text())["training"]
    assert "val/loss" in first
    train_supervised(config, tmp_path / "sup", progress=False)
    assert json.loads((tmp_path / "sup" / "metrics.json").read_text())["training"] == first


def test_a_truncated_last_ckpt_falls_back_to_the_previous_checkpoint(speaker_run, tmp_path, caplog):
    run, config = speaker_run
    copy = tmp_path / "speaker"
    shutil.copytree(run, copy)
    last = copy / "checkpoints" / "last.ckpt"
    last.write_bytes(last.read_bytes()[:4000])  # the disk filled up while it was written
    (copy / "checkpoints" / "step12.ckpt").unlink()
    (copy / ".encoder.x1y2.tmp.pt").write_bytes(b"")  # a kill while encoder.pt was written
    with caplog.at_level(logging.WARNING):
        metrics = train_speaker_encoder(config, copy, progress=False).metrics
    assert "last.ckpt" in caplog.text and "step6.ckpt" in caplog.text
    assert (copy / "checkpoints" / "last.ckpt.damaged").is_file()
    assert resume_point(copy)[0] == copy / "checkpoints" / "last.ckpt"  # a new, readable one
    assert not list(copy.glob(".*.tmp*")) and "val/acc" in metrics
    steps = _csv_steps(copy)
    assert steps == sorted(steps) and len(steps) == len(set(steps))  # no redone step logged twice
    assert steps == _csv_steps(run)


def test_metrics_rows_after_the_resume_point_are_dropped(speaker_run, tmp_path):
    run, config = speaker_run
    copy = tmp_path / "speaker"
    shutil.copytree(run, copy)
    (copy / "checkpoints" / "last.ckpt").unlink()
    (copy / "checkpoints" / "step12.ckpt").unlink()
    step = resume_point(copy)[1]
    assert max(_csv_steps(copy)) > step
    open_run(copy, config, "speaker")
    assert max(_csv_steps(copy)) <= step


def test_a_run_that_never_trained_takes_corrected_settings(tmp_path, tiny_corpus_dir):
    config = SpeakerConfig(corpus=str(tmp_path / "typo"), max_steps=2)
    with pytest.raises(VoxfaceError, match="typo"):
        train_speaker_encoder(config, tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()  # a refused new run leaves no folder (issue 22)
    open_run(tmp_path / "run", config, "speaker")  # a folder that never trained (made by an older voxface)
    fixed = SpeakerConfig(corpus=str(tiny_corpus_dir), max_steps=2)
    open_run(tmp_path / "run", fixed, "speaker")
    assert str(tiny_corpus_dir) in (tmp_path / "run" / "config.yaml").read_text()


def test_synth_remakes_an_identity_whose_wav_was_deleted(tiny_corpus_dir, tmp_path, capsys):
    out = tmp_path / "corpus"
    shutil.copytree(tiny_corpus_dir, out, ignore=shutil.ignore_patterns("features"))
    wav = out / "audio" / "id00003" / "id00003_u01.wav"
    original = wav.read_bytes()
    wav.unlink()
    png = next((out / "faces" / "id00005").glob("*_120.png"))
    png.write_bytes(png.read_bytes()[:100])
    generate_corpus(out, SynthConfig(**TINY), progress=False)
    assert wav.read_bytes() == original
    assert find_problems(out) == []
    assert png.stat().st_size > 100


def test_a_damaged_cached_feature_is_reported_and_computed_again(tiny_corpus_dir, tmp_path):
    out = tmp_path / "corpus"
    shutil.copytree(tiny_corpus_dir, out)
    corpus = Corpus(out)
    utterance = corpus.utterances[0]
    good = load_features(ensure_features(corpus, [utterance], progress=False))[0]
    path = feature_path(corpus, utterance, "cmp_logmel")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    assert main(["validate", str(out)]) == 2
    assert any("damaged" in p and path.name in p for p in find_problems(out))
    again = load_features(ensure_features(corpus, [utterance], progress=False))[0]
    np.testing.assert_array_equal(again, good)
    assert find_problems(out) == []


def test_a_damaged_shard_is_packed_again(tiny_corpus_dir, tmp_path):
    from voxface.corpus.sharded import ShardedFeatures, pack_shards, shard_name

    corpus = Corpus(tiny_corpus_dir)
    utterances = corpus.utterances
    features = load_features(ensure_features(corpus, utterances, progress=False))
    limit = 2 * features[0].nbytes / 2**20

    def crashing(start):
        for i, f in enumerate(features[start:], start):
            if i == 7:
                raise KeyboardInterrupt
            yield f

    with pytest.raises(KeyboardInterrupt):
        pack_shards(crashing, utterances, tmp_path, "cmp_logmel", shard_mb=limit, progress=False)
    damaged = tmp_path / shard_name(1)
    damaged.write_bytes(damaged.read_bytes()[:200])
    starts = []
    pack_shards(lambda start: (starts.append(start), iter(features[start:]))[1], utterances, tmp_path,
                "cmp_logmel", shard_mb=limit, progress=False)
    shards = ShardedFeatures(tmp_path)
    assert starts[0] < 6 and all(np.array_equal(shards[i], f) for i, f in enumerate(features))
