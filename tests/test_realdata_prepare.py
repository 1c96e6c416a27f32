"""`voxface prepare voxceleb` on a small real tree (FSDD voices, ORL photos): end to end, skipped files,
kill-and-resume, shards and merge, and the training and evaluation commands on the result."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from voxface.cli import main
from voxface.corpus.format import Corpus
from voxface.corpus.prepare import PREPARE_DIR
from voxface.corpus.validate import find_problems
from voxface.errors import VoxfaceError

from .realdata_tree import PEOPLE, build_tree


@pytest.fixture(scope="module")
def tree(shared_data, tmp_path_factory) -> dict[str, Path]:
    return build_tree(shared_data, tmp_path_factory.mktemp("realtree"))


def _args(tree, out, *extra) -> list[str]:
    return ["prepare", "voxceleb", "--audio", str(tree["audio"]), "--faces", str(tree["faces"]),
            "--meta", str(tree["meta"]), "--out", str(out), "--workers", "1", "--quiet", *extra]


@pytest.fixture(scope="module")
def corpus_dir(tree, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("prepared") / "corpus"
    assert main(_args(tree, out)) == 0
    return out


def test_prepared_corpus_validates_and_records_every_skipped_file(corpus_dir):
    assert find_problems(corpus_dir) == []
    corpus = Corpus(corpus_dir)
    assert [i.identity for i in corpus.identities] == [p[0] for p in PEOPLE]  # id99999 has no data: not joined
    assert {i.split for i in corpus.identities if i.name[0] in "AB"} == {"test"}
    summary = json.loads((corpus_dir / "summary.json").read_text())
    reasons = summary["skipped_by_reason"]
    assert reasons["audio: unreadable"] == 1 and reasons["face: unreadable"] == 1
    assert reasons["audio: too short"] >= 1 and reasons["face: no face"] >= 1
    skipped = (corpus_dir / "skipped.csv").read_text()
    for planted in ("broken.wav", "short.wav", "blank.jpg", "broken.jpg"):
        assert planted in skipped
    n_inputs = sum(1 for p in Path(corpus_dir).glob(f"{PREPARE_DIR}/records/*/*/*.json"))
    assert n_inputs == len(corpus.utterances) + len(corpus.faces) + summary["skipped"]
    fp = corpus.face_params
    assert fp["landmarks_64"].shape == (len(corpus.faces), 68, 2)
    assert np.all((fp["landmarks_120"] > 0) & (fp["landmarks_120"] < 120))
    assert np.allclose(fp["landmarks_120"], fp["landmarks_64"] * 120 / 64, atol=0.01)
    assert summary["face_fit_residual_iod_mean"] < 0.06
    # features cached where training reads them, from the corpus's own 16 kHz audio
    from voxface.corpus.features import feature_path

    u = corpus.utterances[0]
    feats = np.load(feature_path(corpus, u, "cmp_logmel"))
    assert feats.shape[1] == 64 and len(feats) >= 1000


def test_reference_is_one_of_the_identity_fits(corpus_dir):
    corpus = Corpus(corpus_dir)
    params, fp = corpus.identity_params, corpus.face_params
    assert params["has_reference"].all()
    row = {str(f): n for n, f in enumerate(fp["face"])}
    for n, face in enumerate(params["reference_face"]):
        assert np.array_equal(params["shape"][n], fp["shape"][row[str(face)]])


def _corpus_contents(root: Path) -> dict[str, object]:
    """Every output file (npz by arrays: zip entries carry write times), excluding the bookkeeping folder."""
    contents = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if path.is_dir() or rel.parts[0] == PREPARE_DIR:
            continue
        if path.suffix == ".npz":
            with np.load(path) as z:
                contents[str(rel)] = {k: z[k].tolist() for k in z.files}
        else:
            contents[str(rel)] = path.read_bytes()
    return contents


@pytest.mark.slow
def test_killed_half_way_then_resumed_equals_uninterrupted(tree, corpus_dir, tmp_path):
    out = tmp_path / "killed"
    command = [sys.executable, "-m", "voxface.cli", *_args(tree, out)]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")})
    records = out / PREPARE_DIR / "records"
    deadline = time.time() + 60
    while time.time() < deadline and sum(1 for _ in records.glob("*/*/*.json")) < 20:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = sum(1 for _ in records.glob("*/*/*.json"))
    total = sum(1 for _ in corpus_dir.glob(f"{PREPARE_DIR}/records/*/*/*.json"))
    assert 0 < done < total and not (out / "manifest.json").exists()
    assert main(_args(tree, out)) == 0
    assert _corpus_contents(out) == _corpus_contents(corpus_dir)


@pytest.mark.slow
def test_shards_merged_equal_the_single_run(tree, corpus_dir, tmp_path):
    for k in (1, 2):
        assert main(_args(tree, tmp_path / f"shard{k}", "--shard", f"{k}/2")) == 0
        assert not (tmp_path / f"shard{k}" / "manifest.json").exists()
    with pytest.raises(VoxfaceError, match="not finished"):
        from voxface.corpus.prepare import merge

        merge([tmp_path / "shard1"], tmp_path / "partial")
    assert main(["prepare", "merge", str(tmp_path / "shard1"), str(tmp_path / "shard2"),
                 "--out", str(tmp_path / "merged")]) == 0
    assert _corpus_contents(tmp_path / "merged") == _corpus_contents(corpus_dir)


def test_rerun_with_other_settings_is_refused(tree, corpus_dir, capsys):
    assert main(_args(tree, corpus_dir, "--min-seconds", "2")) == 2
    assert "other inputs or settings" in capsys.readouterr().err


@pytest.mark.slow
def test_training_and_evaluation_run_on_the_prepared_corpus(corpus_dir, tmp_path):
    from voxface.methods.speaker import Config as SpeakerConfig
    from voxface.methods.speaker import fit as train_speaker_encoder
    from voxface.methods.supervised import Config as SupervisedConfig
    from voxface.methods.supervised import fit as train_supervised
    from voxface.reports.voice_to_3d import evaluate_run

    speaker = SpeakerConfig(corpus=str(corpus_dir), max_steps=6, batch_size=4, val_every=3, workers=1)
    train_speaker_encoder(speaker, tmp_path / "speaker", progress=False)
    supervised = SupervisedConfig(corpus=str(corpus_dir), speaker_run=str(tmp_path / "speaker"), max_steps=10,
                                  batch_size=4, val_every=5, embedding_bank=2, workers=1)
    train_supervised(supervised, tmp_path / "supervised", progress=False)
    metrics = evaluate_run(tmp_path / "supervised", per_identity=2, progress=False)
    assert np.isfinite(metrics["methods"]["CMP-supervised"]["ARE"]["mean"])
    assert (tmp_path / "supervised" / "report" / "report.html").is_file()
