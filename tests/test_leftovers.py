"""Issue 22, item 9: what a kill -9 leaves is swept by the next run, and nothing looks complete
before it is: temporaries carry their writer's pid (those of dead writers are removed, a live
writer's are kept), ffmpeg decodes into a pipe, and ``evaluate`` writes ``report/`` whole before
``metrics.json``."""

from __future__ import annotations

import shutil
import subprocess
import sys

import numpy as np
import pytest
import yaml

from voxface.runs import atomic


@pytest.fixture(scope="module")
def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_only_the_temporaries_of_dead_writers_are_swept(tmp_path, dead_pid):
    alive = subprocess.Popen(["sleep", "30"])
    try:
        stale = tmp_path / f".mesh.{dead_pid}-ab12.tmp.obj"
        live = tmp_path / f".mesh.{alive.pid}-cd34.tmp.obj"
        folder = tmp_path / f".report.{dead_pid}-ef56.tmp"
        for path in (stale, live):
            path.write_bytes(b"")
        folder.mkdir()
        (folder / "half.png").write_bytes(b"x")
        assert atomic.remove_stale_temporaries(tmp_path) == 2
        assert live.exists() and not stale.exists() and not folder.exists()
    finally:
        alive.kill()
        alive.wait()


def test_an_atomic_temporary_names_its_writer(tmp_path):
    import os

    with atomic.atomic_path(tmp_path / "x.obj") as tmp:
        assert f".{os.getpid()}-" in tmp.name
    with atomic.atomic_folder(tmp_path / "report") as staging:
        assert f".{os.getpid()}-" in staging.name and staging.is_dir()
        (staging / "a.md").write_text("a")
    assert (tmp_path / "report" / "a.md").read_text() == "a" and not staging.exists()


def test_predict_sweeps_the_zero_byte_temporary_a_killed_predict_left(predictor_file, tiny_corpus_dir, tmp_path,
                                                                     dead_pid):
    from voxface.predictors.voice_to_3d import VoiceTo3D
    from voxface.workflows.predict import predict_files

    out = tmp_path / "out"
    out.mkdir()
    left = out / f".voice.{dead_pid}-zz99.tmp.obj"
    left.write_bytes(b"")
    voice = next((tiny_corpus_dir / "audio").glob("*/*.wav"))
    predict_files(VoiceTo3D.load(predictor_file), [str(voice)], out)
    assert not left.exists()


def test_ffmpeg_decodes_into_a_pipe_leaving_nothing_in_tmpdir(tmp_path, monkeypatch):
    import soundfile as sf

    import voxface.audio.io as audio_io

    if shutil.which("ffmpeg") is None:
        pytest.skip("needs ffmpeg")
    wav = tmp_path / "a.wav"
    sf.write(wav, np.zeros(16000, np.float32) + 0.1, 16000)
    m4a = tmp_path / "a.m4a"
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(wav), str(m4a)], check=True)
    temp = tmp_path / "tmpdir"
    temp.mkdir()
    monkeypatch.setattr(audio_io.tempfile, "tempdir", str(temp))
    seen = []
    real = audio_io._read_pipe

    def watched(*args):
        seen.append(sorted(p.name for p in temp.iterdir()))
        return real(*args)

    monkeypatch.setattr(audio_io, "_read_pipe", watched)
    assert len(audio_io.load_audio(m4a)) > 15000
    assert seen == [[]]


def test_a_report_interrupted_half_way_leaves_no_metrics_and_no_half_report(predictor_file, tiny_corpus_dir,
                                                                             tmp_path, monkeypatch, dead_pid):
    from voxface.reports import report
    from voxface.reports.voice_to_3d import evaluate_run

    run = tmp_path / "run"
    run.mkdir()
    shutil.copyfile(predictor_file, run / "predictor.pt")
    (run / "config.yaml").write_text(yaml.safe_dump({"kind": "supervised", "corpus": str(tiny_corpus_dir)}))
    (run / f".report.{dead_pid}-aa11.tmp").mkdir()  # what a killed evaluate left

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    real = report._renders
    monkeypatch.setattr(report, "_renders", killed)
    with pytest.raises(KeyboardInterrupt):
        evaluate_run(run, per_identity=2, progress=False)
    assert not (run / "metrics.json").exists() and not (run / "report").exists()
    monkeypatch.setattr(report, "_renders", real)
    evaluate_run(run, per_identity=2, progress=False)
    assert (run / "metrics.json").is_file() and (run / "report" / "report.html").is_file()
    assert [p.name for p in run.iterdir() if atomic.TEMPORARY_MARKER in p.name] == []
