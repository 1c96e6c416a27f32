"""``voxface serve``: the request handler (files, refusals, concurrency) and the page in a real browser."""

from __future__ import annotations

import json
import shutil
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch
import trimesh

from voxface.app.web import FACE_IMAGE_SIZE, RENDER_SIZE, FaceFromVoice, build_page, find_run, serve
from voxface.errors import VoxfaceError
from voxface.models.biometric_gan2d import VoiceVAE
from voxface.models.speaker_cnn import SpeakerCNN
from voxface.predictors.voice_to_3d import VoiceTo3D
from voxface.predictors.voice_to_image import VoiceToImage

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


@pytest.fixture(scope="module")
def image_model_file(tmp_path_factory) -> Path:
    """An untrained (seeded) speaker CNN + VAE bundle: speech -> 2D face image, labelled as trained on
    synthetic voices."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("image_model") / "voice_to_image.pt"
    settings = {"generator": "vae", "width": 8, "latent_dim": 4}
    provenance = {"trained_on": "the synthetic voices of the tiny test corpus", "synthetic": True}
    VoiceToImage(SpeakerCNN(5, channels=8), VoiceVAE(latent_dim=4, width=8), settings, provenance).save(path)
    return path


@pytest.fixture(scope="module")
def service(predictor_file, tmp_path_factory) -> FaceFromVoice:
    return FaceFromVoice(VoiceTo3D.load(predictor_file), tmp_path_factory.mktemp("served"))


def _voices(corpus: Path) -> list[Path]:
    return sorted((corpus / "audio").glob("*/*.wav"))


def test_prediction_offers_obj_glb_render_and_parameters(service, tiny_corpus_dir):
    from voxface.face3d.render import render_mesh

    render_mesh(service.predictor.model.mean, service.predictor.model.triangles, size=512)  # main thread's GL
    result = service.predict(_voices(tiny_corpus_dir)[0])
    model = service.predictor.model
    obj = trimesh.load(result.obj, process=False)
    glb = trimesh.load(result.glb, force="mesh", process=False)
    assert obj.vertices.shape == glb.vertices.shape == (model.n_vertices, 3)
    shape = np.asarray(json.loads(result.parameters.read_text())["shape"], np.float32)
    np.testing.assert_allclose(obj.vertices, model.reconstruct(shape), atol=1e-3 * np.abs(model.mean).max())
    assert result.png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert 0.0 <= result.prediction.in_distribution <= 1.0
    assert "synthetic voices" in result.prediction.warning and "How typical this voice is" in result.notice()


def test_with_a_2d_model_the_answer_has_the_generated_face_image(service, image_model_file, tiny_corpus_dir,
                                                                 predictor_file, tmp_path):
    from PIL import Image

    image_model = VoiceToImage.load(image_model_file)
    with_image = FaceFromVoice(service.predictor, tmp_path / "out", image_model=image_model)
    voices = _voices(tiny_corpus_dir)
    result = with_image.predict(voices[0])
    shown = np.asarray(Image.open(result.face_image).convert("RGB"))
    assert shown.shape == (FACE_IMAGE_SIZE, FACE_IMAGE_SIZE, 3) and str(result.face_image) in result.downloads()
    small = np.asarray(Image.fromarray(shown).resize((64, 64), Image.BICUBIC), dtype=float)
    assert np.abs(small - image_model.image(voices[0])).mean() < 8  # the enlarged image of this voice
    assert not np.array_equal(image_model.image(voices[0]), image_model.image(voices[-1]))
    assert service.predict(voices[0]).face_image is None  # no 2D model, no image
    assert ("Warning: the 2D face image comes from a model trained on the synthetic voices of the tiny test "
            "corpus: on a real voice it carries no information" in result.notice())
    unlabelled = VoiceToImage(image_model.encoder, image_model.generator, image_model.settings)
    unlabelled.save(tmp_path / "unlabelled.pt")  # a bundle that does not say what it heard: no such warning
    silent = FaceFromVoice(service.predictor, tmp_path / "out2", image_model=VoiceToImage.load(tmp_path / "unlabelled.pt"))
    assert "2D face image comes from" not in silent.predict(voices[0]).notice()
    with pytest.raises(VoxfaceError, match="not a voxface voice-to-image model"):
        VoiceToImage.load(predictor_file)


def test_non_audio_too_large_and_missing_inputs_are_refused_with_a_message(service, predictor_file, tmp_path,
                                                                           tiny_corpus_dir):
    text = tmp_path / "notes.wav"
    text.write_text("this is not audio\n" * 50)
    with pytest.raises(VoxfaceError, match="notes.wav.*only speech recordings"):
        service.predict(text)
    small_limit = FaceFromVoice(service.predictor, tmp_path / "out", max_upload_mb=0.01)
    with pytest.raises(VoxfaceError, match=r"limit is 0.01 MB"):
        small_limit.predict(_voices(tiny_corpus_dir)[0])
    with pytest.raises(VoxfaceError, match="no audio given"):
        service.predict(None)


def test_concurrent_requests_each_get_their_own_correct_answer(service, tiny_corpus_dir):
    voices = _voices(tiny_corpus_dir)[:3] * 2
    alone = {v: json.loads(service.predict(v).parameters.read_text())["shape"] for v in voices[:3]}
    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(service.predict, voices))
    assert len({r.glb.parent for r in results}) == len(voices)
    for voice, result in zip(voices, results):
        np.testing.assert_allclose(json.loads(result.parameters.read_text())["shape"], alone[voice], atol=1e-5)
    assert not np.allclose(alone[voices[0]], alone[voices[1]])


def test_without_any_run_the_page_names_the_command_to_make_one(tmp_path, monkeypatch, predictor_file):
    monkeypatch.chdir(tmp_path)
    path, note = find_run(None)
    assert path is None and "`make demo`" in note
    assert "make demo" in json.dumps(build_page(None, note).config)
    with pytest.raises(VoxfaceError, match="no voice-to-3D predictor at nowhere"):
        find_run("nowhere")
    assert find_run(predictor_file.parent)[0] == predictor_file.parent


def test_serve_command_refuses_a_run_without_predictor_before_announcing_an_address(tmp_path, capsys):
    from voxface.cli import main

    assert main(["serve", "--run", str(tmp_path / "nothing")]) == 2
    out = capsys.readouterr()
    assert "Traceback" not in out.err and "nothing" in out.err and "http://" not in out.out


def _shows_something(png: bytes) -> bool:
    """True when a screenshot is not one flat colour (the viewer has drawn a mesh)."""
    import io

    from PIL import Image

    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("L"), dtype=np.float32)
    return float(pixels.std()) > 5.0


def _drawn_and_settled(png: bytes, seen: list[bytes]) -> bool:
    """True when ``png`` shows something and equals the previous capture (kept in ``seen``)."""
    settled = png == seen[0] and _shows_something(png)
    seen[0] = png
    return settled


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


needs_browser = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="no headless browser: apt-get install chromium chromium-driver (Debian) to run this test")


def _screenshot_path(tmp_path: Path, name: str) -> Path:
    """Where a browser test saves its screenshot: $VOXFACE_SCREENSHOTS (for the docs) or the test's folder."""
    import os

    folder = Path(os.environ.get("VOXFACE_SCREENSHOTS", tmp_path))
    folder.mkdir(parents=True, exist_ok=True)
    return folder / name


def _predict_in_browser(port: int, voice: Path, screenshot: Path, images: tuple[str, ...]) -> dict:
    """Open the page, upload ``voice``, press Predict, wait for the viewer to draw; save a screenshot.

    Returns the page's text, the download links and each named image element's natural width.
    """
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install selenium)")
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",  # software WebGL for the viewer
                 "--disable-background-networking", "--disable-extensions", "--no-first-run",
                 "--use-angle=swiftshader", "--enable-unsafe-swiftshader", "--window-size=1280,2600"):
        options.add_argument(flag)
    browser = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    try:
        browser.get(f"http://127.0.0.1:{port}/")
        wait = WebDriverWait(browser, 90)
        upload = wait.until(lambda b: b.find_element(By.CSS_SELECTOR, "#voxface-audio input[type=file]"))
        note = browser.find_element(By.ID, "voxface-note").text
        browser.find_element(By.ID, "voxface-predict").click()  # nothing recorded or uploaded yet
        wait.until(lambda b: "no audio given" in b.find_element(By.TAG_NAME, "body").text)
        browser.find_element(By.CSS_SELECTOR, "[data-testid=toast-close]").click()
        upload.send_keys(str(Path(voice).resolve()))
        wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, "#voxface-audio audio, #voxface-audio canvas, "
                                                              "#voxface-audio .waveform-container"))
        time.sleep(1.0)
        browser.find_element(By.ID, "voxface-predict").click()
        links = wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, "#voxface-downloads a[href]"))
        shown = {name: wait.until(lambda b: [i for i in b.find_elements(By.CSS_SELECTOR, f"#{name} img")
                                             if b.execute_script("return arguments[0].complete && "
                                                                 "arguments[0].naturalWidth", i)])[0]
                 for name in images}
        canvas = wait.until(lambda b: b.find_element(By.CSS_SELECTOR, "#voxface-viewer canvas"))
        seen = [b""]  # the 3D viewer drew the face and has stopped changing (a large mesh loads for seconds)
        WebDriverWait(browser, 90, poll_frequency=1.0).until(lambda b: _drawn_and_settled(canvas.screenshot_as_png, seen))
        browser.save_screenshot(str(screenshot))
        return {"note": note, "notice": browser.find_element(By.ID, "voxface-voice-notice").text,
                "description": browser.find_element(By.ID, "voxface-face-description").text,
                "hrefs": [a.get_attribute("href") for a in links],
                "widths": {n: browser.execute_script("return arguments[0].naturalWidth", i) for n, i in shown.items()}}
    finally:
        browser.quit()


@pytest.mark.slow
@needs_browser
def test_browser_uploads_a_wav_and_gets_a_mesh_its_uncertainty_a_face_image_and_the_warning(
        gaussian_predictor_file, image_model_file, tiny_corpus_dir, tmp_path):
    port = _free_port()
    page = serve(gaussian_predictor_file, port=port, image_run=image_model_file, block=False)
    voice = _voices(tiny_corpus_dir)[0]
    screenshot = _screenshot_path(tmp_path, "serve_synthetic_model.png")
    try:
        seen = _predict_in_browser(port, voice, screenshot,
                                   ("voxface-render", "voxface-uncertainty", "voxface-face-image"))
    finally:
        page.close()
    assert "Model:" in seen["note"] and "2D face model" in seen["note"]
    assert any(h.endswith(f"{voice.stem}.obj") for h in seen["hrefs"]) and any(h.endswith(".glb") for h in seen["hrefs"])
    assert any(h.endswith(f"{voice.stem}_uncertainty.png") for h in seen["hrefs"])
    assert seen["widths"]["voxface-render"] == RENDER_SIZE and seen["widths"]["voxface-face-image"] == FACE_IMAGE_SIZE
    assert "Warning: this model was trained on the synthetic voices" in seen["notice"]
    assert "How typical this voice is for the model:" in seen["notice"]
    assert "the 2D face image comes from a model trained on the synthetic voices" in seen["notice"]
    assert "Nearest face type:" in seen["description"] and "interval" in seen["description"]
    assert screenshot.stat().st_size > 10_000


@pytest.mark.slow
@needs_browser
def test_browser_runs_the_imported_cmp_release_on_cpu(shared_data, tmp_path):
    from voxface.predictors.cmp_release import import_cmp_release, import_wen_release, shared_release_layout

    source = (shared_data / "cmp_checkpoints").resolve()
    release = shared_release_layout(shared_data, tmp_path / "release")
    if release is None:
        pytest.skip(f"{source} not found (set VOXFACE_SHARED_DATA)")
    runs = import_cmp_release(release, tmp_path / "cmp")
    wen_files = tmp_path / "wen_release"
    wen_files.mkdir()
    (wen_files / "voice_embedding.pth").symlink_to(source / "pretrained_models" / "voice_embedding.pth")
    (wen_files / "generator.pth").symlink_to(source / "pretrained_models" / "generator_48000.pth")
    wen = import_wen_release(wen_files, tmp_path / "wen")
    port = _free_port()
    page = serve(runs["supervised"], port=port, image_run=wen, block=False)
    voice = shared_data / "cmp_reference" / "wav" / "george_0.wav"
    screenshot = _screenshot_path(tmp_path, "serve_cmp_release.png")
    try:
        seen = _predict_in_browser(port, voice, screenshot, ("voxface-render", "voxface-face-image"))
    finally:
        page.close()
    assert str(runs["supervised"]) in seen["note"] and "VoxCeleb1" in seen["note"] and "wen2019" in seen["note"]
    assert "unknown (no reference of the model's training voices)" in seen["notice"]
    assert "Warning" not in seen["notice"]
    assert any(h.endswith("george_0.obj") for h in seen["hrefs"])
