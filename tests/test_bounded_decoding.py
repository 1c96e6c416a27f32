"""Issue 22, item 1: the duration limit holds whatever the container says. A streamed WebM/Opus file
(what MediaRecorder writes) states no duration; a header can understate the data. Decoding is bounded
by the limit and refused with the usual line when it reaches it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from voxface.audio import duration
from voxface.audio.duration import audio_seconds
from voxface.errors import VoxfaceError
from voxface.workflows.predict import read_voice

pytestmark = pytest.mark.skipif(subprocess.run(["which", "ffmpeg"], capture_output=True).returncode != 0,
                                reason="needs ffmpeg")


@pytest.fixture(scope="module")
def streamed_webm(tmp_path_factory) -> Path:
    """12 s of Opus in WebM written to a pipe, as a browser's MediaRecorder does: no duration in it."""
    folder = tmp_path_factory.mktemp("webm")
    rng = np.random.default_rng(0)
    sf.write(folder / "three.wav", (0.2 * rng.standard_normal(3 * 48000)).astype(np.float32), 48000)
    path = folder / "streamed.webm"
    with open(path, "wb") as out:
        subprocess.run(["ffmpeg", "-v", "error", "-stream_loop", "3", "-i", str(folder / "three.wav"),
                        "-c:a", "libopus", "-f", "webm", "pipe:1"], stdout=out, check=True)
    return path


def test_a_streamed_webm_states_no_duration_and_is_still_refused_past_the_limit(streamed_webm):
    assert audio_seconds(streamed_webm) is None
    with pytest.raises(VoxfaceError, match=r"streamed.webm is longer than the limit of 6.0 s.*stopped"):
        read_voice(streamed_webm, max_minutes=0.1)


def test_decoding_stops_at_the_limit_instead_of_decoding_the_whole_file(streamed_webm, monkeypatch):
    import voxface.audio.io as audio_io

    seen = []
    real = audio_io._ffmpeg_command

    def watched(*args, **kwargs):
        command = real(*args, **kwargs)
        seen.append(command)
        return command

    monkeypatch.setattr(audio_io, "_ffmpeg_command", watched)
    with pytest.raises(VoxfaceError, match="longer than the limit"):
        read_voice(streamed_webm, max_minutes=0.05)
    assert "-t" in seen[0] and float(seen[0][seen[0].index("-t") + 1]) < 4  # ffmpeg decodes at most ~3 s


def test_a_header_that_understates_the_length_does_not_lift_the_limit(tmp_path, monkeypatch):
    path = tmp_path / "twelve.wav"
    sf.write(path, (0.2 * np.random.default_rng(1).standard_normal(12 * 16000)).astype(np.float32), 16000)
    monkeypatch.setattr(duration, "audio_seconds", lambda p: 1.0)  # the header claims 1 s
    with pytest.raises(VoxfaceError, match=r"twelve.wav is longer than the limit of 6.0 s"):
        read_voice(path, max_minutes=0.1)


def test_a_recording_within_the_limit_decodes_whole(streamed_webm):
    from voxface.audio.io import load_audio

    assert len(load_audio(streamed_webm)) == pytest.approx(12 * 16000, rel=0.01)
    assert len(load_audio(streamed_webm, limit=duration.DurationLimit(20.0))) == pytest.approx(12 * 16000, rel=0.01)


def test_every_caller_refuses_a_streamed_file_past_the_limit(streamed_webm, predictor_file, tmp_path, capsys):
    from voxface.app.web import FaceFromVoice
    from voxface.cli import main
    from voxface.predictors.voice_to_3d import VoiceTo3D

    assert main(["features", str(streamed_webm), "--out", str(tmp_path / "f"), "--max-minutes", "0.1"]) == 2
    assert "longer than the limit of 6.0 s" in capsys.readouterr().err
    assert main(["predict", str(streamed_webm), "--checkpoint", str(predictor_file), "--out", str(tmp_path / "p"),
                 "--max-minutes", "0.1"]) == 2
    assert "longer than the limit of 6.0 s" in capsys.readouterr().err
    service = FaceFromVoice(VoiceTo3D.load(predictor_file), tmp_path / "serve", max_minutes=0.1)
    with pytest.raises(VoxfaceError, match=r"^audio file streamed.webm is longer than the limit of 6.0 s.*stopped "
                                           r"at the limit\): upload a shorter recording"):
        service.predict(streamed_webm)
