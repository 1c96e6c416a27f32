"""Live mode of ``voxface serve``: the growing recording, its bounds and clean-up, the equality of its
updates with ``voxface predict``, and the page in a real browser with a fake microphone."""

from __future__ import annotations

import json
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr

from voxface.app.live import ChunkFiles, LiveSessions
from voxface.app.web import FaceFromVoice, serve
from voxface.audio.io import to_pcm16
from voxface.errors import VoxfaceError
from voxface.predictors.voice_to_3d import VoiceTo3D

from .test_serve_web import CHROMEDRIVER, CHROMIUM, _free_port, _screenshot_path, needs_browser

BROWSER_RATE = 48000
CHUNK = BROWSER_RATE // 2


@pytest.fixture(scope="module")
def gaussian(gaussian_predictor_file) -> VoiceTo3D:
    return VoiceTo3D.load(gaussian_predictor_file)


def _speech_48k(corpus: Path, first: int, count: int = 3) -> np.ndarray:
    """(N,) int16 at 48 kHz: ``count`` consecutive voices of the corpus, as a browser would record them."""
    voices = sorted((corpus / "audio").glob("*/*.wav"))[first:first + count]
    wave = np.concatenate([sf.read(v, dtype="float32")[0] for v in voices])
    return to_pcm16(soxr.resample(wave, 16000, BROWSER_RATE, quality="HQ"))


def _chunks(samples: np.ndarray):
    return [samples[i:i + CHUNK] for i in range(0, len(samples), CHUNK)]


def _sessions(predictor, max_seconds=120.0, **kwargs) -> LiveSessions:
    return LiveSessions(predictor, max_seconds, render_size=96, **kwargs)


def _predict_cli(predictor_file: Path, wav: Path, out: Path) -> dict:
    from voxface.cli import main

    assert main(["predict", str(wav), "--checkpoint", str(predictor_file), "--out", str(out)]) == 0
    return json.loads((out / f"{wav.stem}.json").read_text())


def test_every_live_update_is_predict_on_the_recording_so_far_and_the_last_is_predict_on_its_wav(
        gaussian, gaussian_predictor_file, tiny_corpus_dir, tmp_path):
    sessions = _sessions(gaussian)
    samples = _speech_48k(tiny_corpus_dir, 0)
    updates = [sessions.add("visitor", BROWSER_RATE, chunk) for chunk in _chunks(samples)]
    faces = [u for u in updates if u.prediction is not None]
    assert updates[0].prediction is None and "listening" in updates[0].message  # 0.5 s: not enough speech yet
    assert len(faces) >= 5 and [u.number for u in updates] == list(range(1, len(updates) + 1))
    assert faces[-1].recorded_s == pytest.approx(len(samples) / BROWSER_RATE)
    trace = faces[-1].trace
    assert len(trace) == len(faces) and trace[0].change == 0 and all(p.spread > 0 for p in trace)
    assert np.all(np.diff([p.speech_s for p in trace]) >= 0) and max(p.change for p in trace) > 0

    middle = len(faces) // 2  # an update in the middle is predict on the prefix it had heard
    prefix = tmp_path / "prefix.wav"
    sf.write(prefix, samples[:int(round(faces[middle].recorded_s * BROWSER_RATE))], BROWSER_RATE, subtype="PCM_16")
    np.testing.assert_allclose(faces[middle].prediction.parameters["shape"],
                               _predict_cli(gaussian_predictor_file, prefix, tmp_path / "p")["shape"], atol=1e-6)

    recording = sessions.finish("visitor")
    assert len(sessions) == 0 and sessions.finish("visitor") is None
    wav = recording.save(tmp_path / "live.wav")
    assert np.array_equal(sf.read(wav, dtype="int16")[0], samples)
    cli = _predict_cli(gaussian_predictor_file, wav, tmp_path / "cli")
    last = faces[-1].prediction
    np.testing.assert_allclose(last.parameters["shape"], cli["shape"], atol=1e-6)
    assert last.speech_seconds == pytest.approx(cli["speech_seconds"], abs=1e-3)
    assert last.in_distribution == pytest.approx(cli["voice"]["in_distribution_score"], abs=1e-4)
    assert last.uncertainty.summary("u")["vertex_std_mean"] == pytest.approx(cli["uncertainty"]["vertex_std_mean"],
                                                                            rel=1e-5)
    assert faces[-1].render.shape == (96, 96, 3) and faces[-1].uncertainty.shape == (96, 96, 3)


def test_the_final_answer_of_a_live_recording_is_predict_on_its_wav(gaussian, gaussian_predictor_file,
                                                                   tiny_corpus_dir, tmp_path):
    service = FaceFromVoice(gaussian, tmp_path / "served")
    for chunk in _chunks(_speech_48k(tiny_corpus_dir, 3)):
        service.live.add("visitor", BROWSER_RATE, chunk)
    result = service.predict_live(service.live.finish("visitor"))
    assert result.recording.name == "live_recording.wav" and str(result.recording) in result.downloads()
    cli = _predict_cli(gaussian_predictor_file, result.recording, tmp_path / "cli")
    page = json.loads(result.parameters.read_text())
    np.testing.assert_allclose(page["shape"], cli["shape"], atol=1e-6)
    np.testing.assert_allclose(page["uncertainty"]["coefficient_std"], cli["uncertainty"]["coefficient_std"], rtol=1e-6)
    assert page["face"] == cli["face"] and page["voice"] == cli["voice"]


def test_a_live_recording_holds_at_most_the_limit_and_says_so(gaussian, tiny_corpus_dir):
    sessions = _sessions(gaussian, max_seconds=1.6)
    updates = [sessions.add("visitor", BROWSER_RATE, c) for c in _chunks(_speech_48k(tiny_corpus_dir, 0))]
    recording = sessions.finish("visitor")
    assert recording.frames == int(1.6 * BROWSER_RATE) and recording.samples().nbytes == 2 * recording.frames
    assert "live limit of 1.6 s is reached" in updates[-1].message and updates[-1].prediction is None
    assert updates[3].prediction is not None  # the 1.6 s kept were heard


def test_noise_gets_no_live_face_as_predict_refuses_it(gaussian):
    sessions = _sessions(gaussian)
    noise = to_pcm16((0.3 * np.random.default_rng(0).standard_normal(3 * BROWSER_RATE)).clip(-1, 1))
    updates = [sessions.add("visitor", BROWSER_RATE, c) for c in _chunks(noise)]
    assert all(u.prediction is None for u in updates)
    assert "no speech found in the recording so far: it sounds like noise" in updates[-1].message


def test_visitors_are_isolated_refused_beyond_the_limit_and_forgotten_when_they_leave(
        gaussian, tiny_corpus_dir):
    sessions = _sessions(gaussian, max_sessions=2, idle_s=5.0)
    voices = {key: _chunks(_speech_48k(tiny_corpus_dir, first)) for key, first in (("a", 0), ("b", 6))}
    alone = {}
    for key, chunks in voices.items():
        for chunk in chunks:
            update = sessions.add(f"alone-{key}", BROWSER_RATE, chunk)
        alone[key] = update.prediction.parameters["shape"]
        sessions.drop(f"alone-{key}")

    def speak(key):
        return [sessions.add(key, BROWSER_RATE, chunk) for chunk in voices[key]]

    with ThreadPoolExecutor(2) as pool:  # two visitors at once: their chunks interleave
        together = dict(zip(voices, pool.map(speak, voices)))
    for key, updates in together.items():
        np.testing.assert_allclose(updates[-1].prediction.parameters["shape"], alone[key], atol=1e-6)
    assert not np.allclose(alone["a"], alone["b"])
    with pytest.raises(VoxfaceError, match="2 visitors are recording live already"):
        sessions.add("c", BROWSER_RATE, voices["a"][0])
    sessions.drop("a")  # the tab closed
    assert len(sessions) == 1 and sessions.expire(time.monotonic() + 6.0) == 1 and len(sessions) == 0
    with pytest.raises(VoxfaceError, match="changed from 48000 Hz to 16000 Hz"):
        sessions.add("d", BROWSER_RATE, voices["a"][0])
        sessions.add("d", 16000, voices["a"][1])


def test_chunk_files_are_deleted_once_read_and_a_shared_one_still_reads(tmp_path):
    chunks = ChunkFiles()
    samples = (1000 * np.sin(np.arange(CHUNK) / 7)).astype(np.int16)
    path = tmp_path / "0123abcd" / "audio.wav"
    path.parent.mkdir()
    sf.write(path, samples, BROWSER_RATE, subtype="PCM_16")
    sr, read = chunks.read(path)
    assert sr == BROWSER_RATE and np.array_equal(read, samples) and not path.parent.exists()
    assert np.array_equal(chunks.read(path)[1], samples)  # another visitor's identical chunk (same file)
    with pytest.raises(VoxfaceError, match="could not be read"):
        chunks.read(tmp_path / "never" / "audio.wav")


def _fake_microphone_wav(corpus: Path, out: Path) -> Path:
    """About 7 s of speech (corpus voices) at 48 kHz with a second of silence after it: the fake
    microphone loops this file."""
    samples = _speech_48k(corpus, 0, count=5)
    path = out / "microphone.wav"
    sf.write(path, np.concatenate([samples, np.zeros(BROWSER_RATE, np.int16)]), BROWSER_RATE, subtype="PCM_16")
    return path


def _screenshot(browser, path: Path, tries: int = 3) -> None:
    """Save a screenshot, retrying when the busy renderer does not answer in time."""
    from selenium.common.exceptions import TimeoutException

    for attempt in range(tries):
        try:
            browser.save_screenshot(str(path))
            return
        except TimeoutException:
            if attempt == tries - 1:
                raise


@pytest.mark.slow
@needs_browser
def test_browser_shows_the_face_forming_while_a_fake_microphone_speaks_and_the_final_is_predict(
        gaussian_predictor_file, tiny_corpus_dir, tmp_path):
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install selenium)")
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    microphone = _fake_microphone_wav(tiny_corpus_dir, tmp_path)
    port = _free_port()
    page = serve(gaussian_predictor_file, port=port, block=False)
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--use-angle=swiftshader",
                 "--enable-unsafe-swiftshader", "--window-size=1280,1800", "--use-fake-ui-for-media-stream",
                 "--use-fake-device-for-media-stream", f"--use-file-for-fake-audio-capture={microphone}"):
        options.add_argument(flag)
    browser = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    shots, seen = [], {}
    try:
        browser.get(f"http://127.0.0.1:{port}/")
        wait = WebDriverWait(browser, 90)
        wait.until(lambda b: b.find_element(By.CSS_SELECTOR, "#voxface-live-mic .record-button")).click()
        status = lambda b: b.find_element(By.ID, "voxface-live-status").text  # noqa: E731
        while len(shots) < 3:  # three live updates with a face, each captured
            wait.until(lambda b: "s of speech" in status(b) and status(b) not in seen
                       and b.find_elements(By.CSS_SELECTOR, "#voxface-live-render"))
            text = status(browser)
            seen[text] = browser.find_element(By.ID, "voxface-live-render").get_attribute("src")
            shot = _screenshot_path(tmp_path, f"serve_live_{len(shots) + 1}.png")
            _screenshot(browser, shot)
            shots.append(shot)
        updates = {"live": dict(seen), "description": browser.find_element(By.ID, "voxface-face-description").text,
                   "notice": browser.find_element(By.ID, "voxface-voice-notice").text}
        browser.find_element(By.CSS_SELECTOR, "#voxface-live-mic .stop-button").click()
        links = wait.until(lambda b: [a.get_attribute("href") for a in
                                      b.find_elements(By.CSS_SELECTOR, "#voxface-downloads a[href]")
                                      if a.get_attribute("href").endswith("live_recording.wav")] and
                           b.find_elements(By.CSS_SELECTOR, "#voxface-downloads a[href]"))
        final_status = browser.find_element(By.ID, "voxface-live-status").text
        _screenshot(browser, _screenshot_path(tmp_path, "serve_live_final.png"))
        (tmp_path / "downloaded").mkdir()
        files = {}
        for href in (a.get_attribute("href") for a in links):
            files[href.rsplit("/", 1)[-1]] = path = tmp_path / "downloaded" / href.rsplit("/", 1)[-1]
            path.write_bytes(urllib.request.urlopen(href, timeout=30).read())
    finally:
        browser.quit()
        page.close()
    live_renders = list(updates["live"].values())
    assert len(updates["live"]) >= 3 and all(src.startswith("data:image/png;base64,") for src in live_renders)
    assert "How typical this voice is for the model:" in updates["notice"] and "interval" in updates["description"]
    assert "Final" in final_status
    page_json = json.loads(next(p for n, p in files.items() if n.endswith(".json")).read_text())
    cli = _predict_cli(gaussian_predictor_file, files["live_recording.wav"], tmp_path / "cli")
    np.testing.assert_allclose(page_json["shape"], cli["shape"], atol=1e-6)
    assert sf.info(files["live_recording.wav"]).duration >= 1.5 and all(s.stat().st_size > 10_000 for s in shots)
