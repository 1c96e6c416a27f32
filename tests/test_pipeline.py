"""End to end on the tiny synthetic corpus: speaker pre-training, supervised training, evaluation,
prediction, resumption and the refusals a user can hit."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from voxface.audio.io import save_wav
from voxface.cli import main
from voxface.errors import VoxfaceError
from voxface.face3d import REGIONS
from voxface.face3d.loading import load_morphable_model
from voxface.methods.speaker import Config as SpeakerConfig
from voxface.methods.speaker import fit as train_speaker_encoder
from voxface.methods.supervised import Config as SupervisedConfig
from voxface.methods.supervised import fit as train_supervised
from voxface.predictors.voice_to_3d import VoiceTo3D
from voxface.reports.voice_to_3d import evaluate_run
from voxface.workflows.predict import predict_files

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def runs(tiny_corpus_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    speaker = SpeakerConfig(corpus=str(tiny_corpus_dir), max_steps=12, batch_size=8, val_every=6, workers=1)
    train_speaker_encoder(speaker, root / "speaker", progress=False)
    supervised = SupervisedConfig(corpus=str(tiny_corpus_dir), speaker_run=str(root / "speaker"), max_steps=40,
                                  batch_size=8, val_every=20, embedding_bank=3, workers=1)
    train_supervised(supervised, root / "supervised", progress=False)
    return root, speaker, supervised


def test_evaluation_writes_every_table(runs):
    root, _, _ = runs
    metrics = evaluate_run(root / "supervised", per_identity=2, progress=False)
    assert set(metrics["methods"]) == {"CMP-supervised", "mean-face oracle", "gender oracle", "voice ceiling"}
    for r in metrics["methods"].values():
        assert set(r["ARE"]) == {"ER", "FR", "MR", "CR", "mean", "per_identity"}
        assert set(r["RMSE"]) == {"holistic", *REGIONS}
        assert r["NME"]["cmp"] > r["NME"]["per_point"] > 0
    assert metrics["methods"]["mean-face oracle"]["gain_vs_mean_face"] == 0.0
    c = metrics["coherence"]
    assert c["within_speaker_distance"] > 0 and c["between_speaker_distance"] > 0
    on_disk = json.loads((root / "supervised" / "metrics.json").read_text())
    assert on_disk["methods"]["gender oracle"]["ARE"]["mean"] == metrics["methods"]["gender oracle"]["ARE"]["mean"]
    stats = metrics["statistics"]["methods"]
    ours = np.asarray(metrics["methods"]["CMP-supervised"]["ARE"]["per_identity"])
    assert len(ours) == metrics["n_test_identities"] and np.mean(ours) == pytest.approx(
        metrics["methods"]["CMP-supervised"]["ARE"]["mean"])
    assert stats["CMP-supervised"]["mean"]["low"] <= np.mean(ours) <= stats["CMP-supervised"]["mean"]["high"]
    versus = stats["CMP-supervised"]["vs"]
    assert set(versus) == {"mean-face oracle", "gender oracle"} and 0 < versus["gender oracle"]["p_value"] <= 1
    assert versus["gender oracle"]["significant"] == (versus["gender oracle"]["p_value"] < 0.05)
    assert "significant at 5%" in (root / "supervised" / "report" / "report.md").read_text()
    novelty = metrics["in_distribution"]
    assert novelty["n"] == 2 * metrics["n_test_identities"]  # one score per test voice
    assert 0.0 <= novelty["median"] <= 1.0 and "synthetic voices" in novelty["reference"]
    html = (root / "supervised" / "report" / "report.html").read_text()
    assert "synthetic" in html and html.count("data:image/png;base64,") == 3
    assert "| ER | FR | MR | CR |" in (root / "supervised" / "report" / "report.md").read_text()


def test_predict_writes_meshes_and_reports_bad_files(runs, tiny_corpus_dir, tmp_path):
    root, _, _ = runs
    predictor = VoiceTo3D.load(root / "supervised")
    good = tiny_corpus_dir / "audio" / "id00000" / "id00000_u00.wav"
    short = tmp_path / "short.wav"
    save_wav(short, np.zeros(1600, np.float32), 16000)
    outcomes = predict_files(predictor, [str(good), str(tmp_path / "missing.wav"), str(short)], tmp_path / "out", "ply")
    assert outcomes[0].error is None and len(outcomes[0].outputs) == 3
    assert all((tmp_path / "out" / f"id00000_u00.{ext}").is_file() for ext in ("ply", "png", "json"))
    assert "missing.wav" in outcomes[1].error
    assert "short.wav" in outcomes[2].error
    voice = json.loads((tmp_path / "out" / "id00000_u00.json").read_text())["voice"]
    assert voice["synthetic_training_voices"] is True and "synthetic voices" in voice["trained_on"]
    assert 0.0 <= voice["in_distribution_score"] <= 1.0
    assert "carries no information" in voice["warning"] or "unlike any of them" in voice["warning"]


def test_a_trained_predictor_carries_the_reference_of_its_training_voices(runs, tiny_corpus_dir):
    from voxface.corpus.format import Corpus

    root, _, _ = runs
    n_train = len(Corpus(tiny_corpus_dir).identity_ids("train"))
    predictor = VoiceTo3D.load(root / "supervised")
    reference = predictor.reference
    assert reference.descriptor == "cmp-first-block" and reference.mean.shape == (512,)
    assert len(reference.calibration) == 2 * n_train  # every training utterance, out of fold
    trained_on = f"the synthetic voices of {n_train} identities of corpus {tiny_corpus_dir}"
    assert predictor.provenance == {"trained_on": trained_on, "synthetic": True}
    assert reference.source == trained_on


def test_predict_cli_exit_status_and_one_line_errors(runs, tiny_corpus_dir, tmp_path, capsys):
    root, _, _ = runs
    good = str(tiny_corpus_dir / "audio" / "id00001" / "id00001_u00.wav")
    assert main(["predict", good, "--checkpoint", str(root / "supervised"), "--out", str(tmp_path)]) == 0
    assert main(["predict", good, str(tmp_path / "nope.flac"), "--checkpoint", str(root / "supervised"),
                 "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "nope.flac" in err


def test_checkpoint_for_another_model_is_refused(runs, shared_data):
    root, _, _ = runs
    predictor = VoiceTo3D.load(root / "supervised")
    with pytest.raises(VoxfaceError, match="trained for morphable model 'builtin'"):
        predictor.check_model(load_morphable_model(f"sfm:{shared_data / 'sfm'}"))
    with pytest.raises(VoxfaceError, match="not a voxface voice-to-3D predictor"):
        VoiceTo3D.load(root / "speaker" / "encoder.pt")


def test_rerun_resumes_and_other_settings_are_refused(runs, tmp_path):
    root, speaker, _ = runs
    copy = tmp_path / "speaker"
    shutil.copytree(root / "speaker", copy)
    # the same settings again: resumes from last.ckpt, which is already at max_steps
    train_speaker_encoder(speaker, copy, progress=False)
    with pytest.raises(VoxfaceError, match="other settings"):
        train_speaker_encoder(SpeakerConfig(**{**speaker.__dict__, "lr": 0.5}), copy, progress=False)


def test_predict_on_real_speech(runs, shared_data, tmp_path):
    """Real FSDD recordings: each speaker's first eight digits joined into one ~3 s clip."""
    import json as json_module

    from voxface.audio.io import load_audio

    root, _, _ = runs
    speakers = json_module.loads((shared_data / "fsdd" / "speakers.json").read_text())
    names = sorted(speakers)[:3]
    clips = []
    for name in names:
        waves = [load_audio(shared_data / "fsdd" / "recordings" / f"{d}_{name}_0.wav") for d in range(8)]
        clip = tmp_path / f"{name}.wav"
        save_wav(clip, np.concatenate(waves), 16000)
        clips.append(str(clip))
    predictor = VoiceTo3D.load(root / "supervised")
    outcomes = predict_files(predictor, clips, tmp_path / "out", "glb")
    assert [o.error for o in outcomes] == [None] * len(clips)
    meshes = [np.asarray(json_module.loads((tmp_path / "out" / f"{n}.json").read_text())["shape"]) for n in names]
    assert all(np.isfinite(m).all() and m.shape == (predictor.model.n_shape,) for m in meshes)


def test_resemblyzer_backbone_trains_and_evaluates(tiny_corpus_dir, tmp_path):
    config = SupervisedConfig(corpus=str(tiny_corpus_dir), backbone="resemblyzer", max_steps=20, batch_size=8,
                              val_every=10, workers=1)
    predictor = train_supervised(config, tmp_path / "res", progress=False).predictor
    assert predictor.backbone == "resemblyzer" and predictor.encoder is None
    metrics = evaluate_run(tmp_path / "res", per_identity=2, progress=False)
    assert metrics["method"] == "CMP-supervised (Resemblyzer)"
    assert np.isfinite(metrics["methods"]["CMP-supervised (Resemblyzer)"]["ARE"]["mean"])


def test_training_from_feature_shards_equals_per_file_training(tiny_corpus_dir, tmp_path):
    """The same speaker pre-training reads its features from shard files or from one file per
    utterance, and ends with the same weights."""
    import torch

    from voxface.corpus.format import Corpus
    from voxface.corpus.sharded import pack_corpus
    from voxface.methods.speaker import ENCODER
    from voxface.predictors.bundle import read_network

    pack_corpus(Corpus(tiny_corpus_dir), tmp_path / "shards", "cmp_logmel", progress=False)
    base = dict(corpus=str(tiny_corpus_dir), max_steps=4, batch_size=8, val_every=2, workers=1)
    train_speaker_encoder(SpeakerConfig(**base), tmp_path / "per_file", progress=False)
    train_speaker_encoder(SpeakerConfig(**base, feature_shards=str(tmp_path / "shards")), tmp_path / "sharded",
                          progress=False)
    a = read_network(tmp_path / "per_file", ENCODER).state_dict()
    b = read_network(tmp_path / "sharded", ENCODER).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(VoxfaceError, match="resemblyzer"):
        train_supervised(SupervisedConfig(**base, backbone="resemblyzer", feature_shards=str(tmp_path / "shards")),
                         tmp_path / "wrong", progress=False)


def test_the_demo_leaves_each_stage_its_own_log(tiny_corpus_dir, tmp_path):
    """``voxface demo`` chains pre-training, training and evaluation in one process: each stage's
    train.log holds its stage's lines only, and the root logger is left as it was found."""
    import logging

    from voxface.workflows.demo import run_demo

    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    root.setLevel(logging.INFO)
    try:
        out = tmp_path / "demo"
        speaker = SpeakerConfig(corpus=str(tiny_corpus_dir), max_steps=4, batch_size=8, val_every=2, workers=1)
        supervised = SupervisedConfig(corpus=str(tiny_corpus_dir), speaker_run=str(out / "speaker"), max_steps=4,
                                      batch_size=8, val_every=2, workers=1)
        metrics = run_demo(out, tiny_corpus_dir, progress=False, speaker=speaker, supervised=supervised,
                           per_identity=2)
    finally:
        root.setLevel(level)
    assert root.handlers == handlers
    assert set(json.loads((out / "demo.json").read_text())["seconds"]) == {"corpus", "speaker", "supervised",
                                                                           "evaluate", "total"}
    assert "CMP-supervised" in metrics["methods"]
    speaker_log = (out / "speaker" / "train.log").read_text()
    supervised_log = (out / "supervised" / "train.log").read_text()
    assert "speaker encoder:" in speaker_log and "supervised regressor" not in speaker_log
    assert "supervised regressor" in supervised_log and "speaker encoder:" not in supervised_log
    assert "evaluat" not in speaker_log + supervised_log
