"""``voxface serve`` cannot be knocked over by one upload and does not fill the disk: long recordings
are refused from their header before decoding, request folders are bounded and everything the server
wrote is gone when it stops."""

from __future__ import annotations

import json
import os
import socket
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from voxface.app import storage
from voxface.app.storage import RequestFolders, sweep_abandoned
from voxface.app.web import FaceFromVoice, serve
from voxface.audio.duration import audio_seconds
from voxface.errors import VoxfaceError
from voxface.predictors.voice_to_3d import VoiceTo3D


@pytest.fixture(scope="module")
def predictor(predictor_file):
    return VoiceTo3D.load(predictor_file)


@pytest.fixture(scope="module")
def long_ogg(tmp_path_factory):
    """Three minutes of (quiet noise) in OGG Vorbis at 8 kHz: small on disk, long when decoded."""
    path = tmp_path_factory.mktemp("long") / "three_minutes.ogg"
    rng = np.random.default_rng(0)
    sf.write(path, (0.01 * rng.standard_normal(180 * 8000)).astype(np.float32), 8000, format="OGG",
             subtype="VORBIS")
    return path


def test_the_container_tells_the_duration_without_decoding(long_ogg, tiny_corpus_dir):
    assert audio_seconds(long_ogg) == pytest.approx(180, abs=0.1)
    wav = next((tiny_corpus_dir / "audio").glob("*/*.wav"))
    assert audio_seconds(wav) == pytest.approx(sf.info(wav).duration)


def test_a_long_upload_is_refused_before_it_is_decoded(predictor, long_ogg, tmp_path, monkeypatch):
    import voxface.audio.io as audio_io

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded a recording that should have been refused")

    monkeypatch.setattr(audio_io, "_decode", no_decoding)
    monkeypatch.setattr(audio_io.sf, "read", no_decoding)
    service = FaceFromVoice(predictor, tmp_path / "out", max_minutes=2)
    with pytest.raises(VoxfaceError, match=r"three_minutes.ogg is 3.0 minutes long; the limit is 2.0 minutes"):
        service.predict(long_ogg)
    assert os.path.getsize(long_ogg) < service.max_upload_mb * 2**20  # the size limit alone lets it in


def test_predict_refuses_past_its_limit_and_the_flag_raises_it(predictor, long_ogg, tmp_path):
    from voxface.workflows.predict import predict_files

    outcome = predict_files(predictor, [str(long_ogg)], tmp_path / "out", max_minutes=2)[0]
    assert "limit is 2.0 minutes" in outcome.error and "--max-minutes 3 " in outcome.error
    outcome = predict_files(predictor, [str(long_ogg)], tmp_path / "out", max_minutes=4)[0]
    assert "minutes long" not in (outcome.error or "")  # decoded (noise: no speech found, or a face)


def test_features_and_voice_reference_refuse_a_recording_past_the_limit_before_decoding_it(
        predictor, long_ogg, tiny_corpus_dir, tmp_path, capsys):
    from voxface.cli import main

    voice = next((tiny_corpus_dir / "audio").glob("*/*.wav"))
    assert main(["features", str(long_ogg), str(voice), "--out", str(tmp_path / "feats"), "--max-minutes", "2"]) == 2
    err = capsys.readouterr().err
    assert f"{long_ogg}: error:" in err and "limit is 2.0 minutes" in err and "--max-minutes 3 " in err
    assert [p.name for p in (tmp_path / "feats").iterdir()] == [f"{voice.stem}.npy"]  # the other file still ran
    from voxface.workflows.voice_reference import _recorded_voices

    features, *_ = _recorded_voices(predictor, [str(long_ogg), str(voice)], False, max_minutes=2)
    assert len(features) == 1  # the long recording was skipped, not decoded


def test_request_folders_are_bounded(predictor, tiny_corpus_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(storage, "GRACE_S", -1.0)
    service = FaceFromVoice(predictor, RequestFolders(tmp_path / "out", keep=2))
    voice = next((tiny_corpus_dir / "audio").glob("*/*.wav"))
    for _ in range(5):
        result = service.predict(voice)
        os.utime(result.glb.parent, (time.time() - 10, time.time() - 10))
    assert len(list((tmp_path / "out").iterdir())) == 3  # the two kept and the newest
    assert result.glb.is_file()


def test_the_parameters_record_the_uploads_name_not_the_servers_path(predictor, tiny_corpus_dir, tmp_path):
    voice = next((tiny_corpus_dir / "audio").glob("*/*.wav"))
    result = FaceFromVoice(predictor, tmp_path / "out").predict(voice)
    source = json.loads(result.parameters.read_text())["source"]
    assert source == voice.name and str(voice.parent) not in result.parameters.read_text()


def test_killed_servers_folders_are_swept_and_live_ones_kept(tmp_path):
    dead = tmp_path / f"{storage.ROOT_PREFIX}999999999-abc"
    alive = tmp_path / f"{storage.ROOT_PREFIX}{os.getpid()}-def"
    other = tmp_path / f"{storage.ROOT_PREFIX}notapid"
    for folder in (dead, alive, other):
        (folder / "request").mkdir(parents=True)
    assert sweep_abandoned(tmp_path) == 1
    assert not dead.exists() and alive.exists() and other.exists()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_page_states_the_limits_and_closing_removes_what_it_wrote(predictor_file, tiny_corpus_dir):
    mine = f"{storage.ROOT_PREFIX}{os.getpid()}-*"
    before = set(Path(tempfile.gettempdir()).glob(mine))
    page = serve(predictor_file, port=_free_port(), block=False, max_minutes=3, keep_minutes=30)
    try:
        config = json.dumps(page.config)
        assert "3 minutes" in config and "30 minutes" in config
        assert page.delete_cache[1] == 30 * 60  # Gradio ages out its copies after keep_minutes
        roots = set(Path(tempfile.gettempdir()).glob(mine)) - before
        assert len(roots) == 1
    finally:
        page.close()
    assert not any(r.exists() for r in roots)


def test_cached_answers_expire_after_keep_minutes(tmp_path):
    from voxface.app.storage import expire_cached

    files = set()
    for n in range(3):
        path = tmp_path / "gradio" / f"hash{n}" / "face.glb"
        path.parent.mkdir(parents=True)
        path.write_bytes(b"x")
        files.add(str(path))
    assert expire_cached([files], max_age_s=60) == 0 and len(files) == 3  # young: kept
    assert expire_cached([files], max_age_s=60, now=time.time() + 61) == 3
    assert files == set() and list((tmp_path / "gradio").iterdir()) == []
