"""``voxface serve``: a web page that turns a recorded or uploaded voice into a 3D face.

The page (Gradio) shows the face forming while the visitor speaks into the microphone (live mode,
:mod:`voxface.app.live`: the render, the ratios, the in-distribution score, the uncertainty and a
trace, from all the speech so far), or takes a recording or a file and **Predict**. The final answer
shows the predicted face in a rotatable 3D viewer, its render, and offers the mesh as OBJ and GLB
(and a live recording as WAV); with a 2D model loaded
(``--image-run``, a run of ``voxface train gan2d``) it also shows the generated face image. It is a
thin layer over :class:`FaceFromVoice`, which holds the loaded predictor: it checks, decodes,
predicts and writes each request on the visitor's request thread (Gradio runs at most
:data:`~voxface.app.settings.CONCURRENCY` at once), each into its own output folder. Renders wait
for the renderer of their size, which draws on its own thread (:mod:`voxface.face3d.render`): the
answers' renders (:data:`RENDER_SIZE`) and the live previews (:data:`LIVE_RENDER_SIZE`) do not
wait for each other.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import signal
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..audio.duration import SERVE_MAX_MINUTES, DurationLimit
from ..audio.voice import prepare_voice
from ..errors import VoxfaceError
from ..evaluate.in_distribution import WARN_BELOW
from ..extras import optional_module
from ..face3d.render import save_png
from ..predictors.prediction import Prediction
from ..predictors.provenance import image_warning, trained_on
from ..predictors.voice_to_3d import BUNDLE_FILE, VoiceTo3D
from ..predictors.voice_to_image import VoiceToImage
from ..runs.config import check_number
from ..runs.placement import place_predictor
from ..workflows.predict import decoded_speech, write_prediction
from .live import ChunkFiles, LiveRecording, LiveSessions, LiveUpdate, png_data_url
from .settings import (
    CONCURRENCY,
    DEFAULT_HOST,
    DEFAULT_PORT,
    DEFAULT_RUN,
    FACE_IMAGE_SIZE,
    KEEP_MINUTES,
    LIVE_EVERY_S,
    LIVE_RENDER_SIZE,
    MAKE_RUN_COMMAND,
    MAX_UPLOAD_MB,
    RENDER_SIZE,
)
from .storage import RequestFolders, expire_cached, sweep_abandoned

log = logging.getLogger(__name__)
logging.getLogger("httpx").setLevel(logging.WARNING)  # Gradio polls its own server once per launch

SHORTER = "upload a shorter recording"
"""The page's advice for a recording past the limit."""


@dataclass
class FacePrediction:
    """One request's answer: the :class:`Prediction`, the files written from it (mesh in both
    formats, a PNG render, the parameters as JSON, the uncertainty render of a probabilistic
    model) and the generated 2D face image with its warning (None without a 2D model)."""

    prediction: Prediction
    glb: Path
    obj: Path
    png: Path
    parameters: Path
    uncertainty_png: Path | None = None
    face_image: Path | None = None
    face_image_warning: str | None = None
    recording: Path | None = None
    """The live recording as the WAV the prediction was made from (None for an upload)."""

    def notice(self) -> str:
        """Markdown shown beside the face: the warnings (if any) and the in-distribution score."""
        return notice_markdown(self.prediction, self.face_image_warning)

    def description(self) -> str:
        """Markdown: the face's ratios with their intervals (:func:`description_markdown`)."""
        return description_markdown(self.prediction)

    def downloads(self) -> list[str]:
        files = [self.obj, self.glb, self.parameters, self.uncertainty_png, self.face_image, self.recording]
        return [str(f) for f in files if f is not None]


def notice_markdown(prediction: Prediction, face_image_warning: str | None = None) -> str:
    """Markdown shown beside a face: the warnings (if any) and the in-distribution score."""
    score = prediction.in_distribution
    typical = ("unknown (no reference of the model's training voices)" if score is None else
               f"**{score:.3f}** (share of held-out training voices at least as unusual; "
               f"below {WARN_BELOW:g} is flagged)")
    lines = [f"⚠️ **Warning: {warning}.**" for warning in (prediction.warning, face_image_warning) if warning]
    return "\n\n".join(lines + [f"How typical this voice is for the model: {typical}. "
                                  f"Model trained on {prediction.trained_on}."])


def description_markdown(prediction: Prediction) -> str:
    """Markdown: the face's ratios with their intervals against the population, its face type and
    the gender it resembles, each with how sure the model is (empty without a population)."""
    face = prediction.face
    if face is None:
        return ""
    level = f"{100 * face['interval_level']:.0f}%"
    sure = "share of sampled faces" if face["probabilistic"] else "a point model: no uncertainty"
    rows = [f"| {name} | {r['median']:.3f} | [{r['interval'][0]:.3f}, {r['interval'][1]:.3f}] | "
            f"{r['population'][0]:.3f}–{r['population'][1]:.3f} |" for name, r in face["ratios"].items()]
    kind, gender = face["face_type"], face["gender"]
    return "\n".join([f"| ratio (÷ eye-corner distance) | predicted | {level} interval | population 5–95% |",
                      "|---|---|---|---|", *rows, "",
                      f"Nearest face type: **{kind['name']}** ({100 * kind['share_of_samples']:.0f}%, {sure}). "
                      f"The shape resembles a **{gender['resembles']}** face "
                      f"({100 * gender['probability']:.0f}%)."])


class FaceFromVoice:
    """A loaded predictor answering requests: audio file -> :class:`FacePrediction`.

    Args:
        predictor: the trained voice-to-3D predictor.
        out_root: folder receiving one sub-folder per request (the newest few are kept, see
            :class:`RequestFolders`), or a :class:`RequestFolders`.
        max_upload_mb: larger inputs are refused with a message.
        image_model: a voice-to-2D-image model, or None.
        max_minutes: longer recordings are refused, from their header, before they are decoded.
        keep_minutes: how long Gradio keeps the files of an answer (stated on the page).
    """

    def __init__(self, predictor: VoiceTo3D, out_root: str | Path | RequestFolders,
                 max_upload_mb: float = MAX_UPLOAD_MB, image_model: VoiceToImage | None = None,
                 max_minutes: float = SERVE_MAX_MINUTES, keep_minutes: float = KEEP_MINUTES):
        self.predictor = predictor
        self.folders = out_root if isinstance(out_root, RequestFolders) else RequestFolders(out_root)
        self.out_root = self.folders.root
        self.max_upload_mb = max_upload_mb
        self.max_minutes, self.keep_minutes = max_minutes, keep_minutes
        self.image_model = image_model
        self.live = LiveSessions(predictor, 60 * max_minutes, LIVE_RENDER_SIZE)
        self.chunks = ChunkFiles()

    def predict(self, audio_path: str | os.PathLike | None) -> FacePrediction:
        """Predict a face for one audio file; VoxfaceError (a message for the page) if it is unusable."""
        if not audio_path:
            raise VoxfaceError("no audio given: record from the microphone or upload an audio file, then press Predict")
        audio_path = Path(audio_path)
        size_mb = audio_path.stat().st_size / 2**20
        if size_mb > self.max_upload_mb:
            raise VoxfaceError(f"the file {audio_path.name} is {size_mb:.1f} MB; the limit is "
                               f"{self.max_upload_mb:g} MB: upload a shorter recording")
        limit = DurationLimit(60 * self.max_minutes, SHORTER)
        limit.check_header(audio_path, audio_path.name)
        try:
            speech = decoded_speech(audio_path, limit)  # decoding stops at the limit, whatever the header says
        except VoxfaceError as e:
            message = str(e).replace(str(audio_path), audio_path.name)
            raise VoxfaceError(f"{message} (only speech recordings can be used: wav, flac, ogg, mp3, m4a)") from None
        return self._answer(audio_path, speech, self.folders.new())

    def predict_live(self, recording: LiveRecording) -> FacePrediction:
        """The final answer of a live recording: it is saved as a WAV and predicted from that file as
        an upload is (so it equals ``voxface predict`` on the WAV, which is among the downloads)."""
        folder = self.folders.new()
        wav = recording.save(folder / "live_recording.wav")
        try:
            speech = prepare_voice(wav)
        except VoxfaceError as e:
            raise VoxfaceError(str(e).replace(f"audio file {wav}", "the live recording")) from None
        result = self._answer(wav, speech, folder)
        result.recording = wav
        return result

    def _answer(self, audio_path: Path, speech: np.ndarray, folder: Path) -> FacePrediction:
        """Predict from ``speech`` and write the request's files into ``folder``."""
        prediction = self.predictor.predict(speech)
        stem = audio_path.stem
        files = write_prediction(prediction, folder, stem, audio_path.name, ("glb", "obj"), RENDER_SIZE)
        face_image = face_image_warning = None
        if self.image_model is not None:
            from PIL import Image

            image = Image.fromarray(self.image_model.image(audio_path))
            face_image = save_png(folder / f"{stem}_face2d.png",
                                  np.asarray(image.resize((FACE_IMAGE_SIZE,) * 2, Image.BICUBIC)))
            face_image_warning = image_warning(self.image_model.provenance)
        log.info("served %s -> %s", audio_path.name, folder)
        return FacePrediction(prediction, files["glb"], files["obj"], files["png"], files["json"],
                              files.get("uncertainty"), face_image, face_image_warning)


def find_run(run: str | Path | None) -> tuple[Path | None, str]:
    """The predictor to serve and a note for the page.

    ``run`` None means the demo's run; when that is missing too, (None, how to make one).
    Raises VoxfaceError when an explicitly given run has no predictor.
    """
    if run is not None:
        path = Path(run)
        if not (path / BUNDLE_FILE).is_file() and not path.is_file():
            raise VoxfaceError(f"no voice-to-3D predictor at {run}: pass a run folder of `voxface train "
                               f"supervised` (it holds {BUNDLE_FILE}) or the {BUNDLE_FILE} file itself")
        return path, f"Model: `{path}`."
    if (DEFAULT_RUN / BUNDLE_FILE).is_file():
        return DEFAULT_RUN, (f"No run was given, so this page uses the run that `voxface demo` made "
                             f"(`{DEFAULT_RUN}`, trained on the synthetic corpus). Serve another with "
                             "`voxface serve --run RUN`.")
    return None, (f"No trained model was found (looked for `{DEFAULT_RUN}`). Make one with the single "
                  f"command `{MAKE_RUN_COMMAND}` (about 3 minutes on 2 cores), then restart `voxface serve`.")


def build_page(service: FaceFromVoice | None, note: str):
    """The Gradio Blocks page; with no service, only the note saying how to make a model."""
    gr = optional_module("gradio", "voxface serve (the web page)")
    keep_s = int(60 * (service.keep_minutes if service else KEEP_MINUTES))
    with gr.Blocks(title="voxface: a face from a voice", analytics_enabled=False,
                   delete_cache=(max(10, min(600, keep_s // 4)), keep_s)) as page:
        gr.Markdown("# voxface: what a voice says about a face\nSpeak into the microphone and watch the "
                    "face the model expects form from all you have said so far; or upload an audio file (or "
                    "record one) and press **Predict**.")
        gr.Markdown(note, elem_id="voxface-note")
        if service is None:
            return page
        with gr.Row():
            with gr.Column():
                microphone = gr.Audio(sources=["microphone"], streaming=True, type="filepath",
                                      label="Speak (live: the face updates while you talk)", elem_id="voxface-live-mic",
                                      waveform_options=gr.WaveformOptions(show_recording_waveform=False))
                live_status = gr.Markdown("", elem_id="voxface-live-status")
                audio = gr.Audio(sources=["upload", "microphone"], type="filepath", label="Or a recording",
                                 elem_id="voxface-audio")
                button = gr.Button("Predict", variant="primary", elem_id="voxface-predict")
                gr.Markdown(f"Audio files up to {service.max_upload_mb:g} MB and {service.max_minutes:g} minutes; "
                            f"at least 0.5 s of speech. Results stay downloadable for {service.keep_minutes:g} "
                            "minutes.", elem_id="voxface-limits")
            with gr.Column():
                voice_notice = gr.Markdown("", elem_id="voxface-voice-notice")
                live_view = gr.HTML("", elem_id="voxface-live")
                description = gr.Markdown("", elem_id="voxface-face-description")
                trace = gr.LinePlot(x="speech (s)", y="z-score", color="series", label=TRACE_LABEL,
                                    elem_id="voxface-trace", height=220)
                viewer = gr.Model3D(label="Predicted face (drag to rotate)", elem_id="voxface-viewer")
                render = gr.Image(label="Render", type="filepath", interactive=False, elem_id="voxface-render")
                outputs = [voice_notice, viewer, render, description]
                if service.predictor.probabilistic:
                    outputs.append(gr.Image(label="How sure the model is (per-vertex standard deviation)",
                                            type="filepath", interactive=False, elem_id="voxface-uncertainty"))
                if service.image_model is not None:
                    outputs.append(gr.Image(label="Generated face image (2D model)", type="filepath",
                                            interactive=False, elem_id="voxface-face-image"))
                downloads = gr.File(label="Downloads (mesh, parameters, image)", file_count="multiple",
                                    interactive=False, elem_id="voxface-downloads")

        def shown(result: FacePrediction) -> tuple:
            extra = [str(f) for f in (result.uncertainty_png, result.face_image) if f is not None]
            return (result.notice(), str(result.glb), str(result.png), result.description(), *extra,
                    result.downloads())

        def answer(audio_path):
            expire_cached(page.temp_file_sets, keep_s)
            try:
                result = service.predict(audio_path)
            except VoxfaceError as e:
                raise gr.Error(str(e), print_exception=False) from None
            return shown(result)

        def listen(chunk, request):
            try:
                shown_live = live_outputs(service, request.session_hash, chunk)
            except VoxfaceError as e:
                raise gr.Error(str(e), print_exception=False) from None
            return tuple(gr.skip() if value is None else value for value in shown_live)

        def finish(request):
            recording = service.live.finish(request.session_hash)
            if recording is None:
                raise gr.Error("nothing was recorded live: press the microphone's record button and speak",
                               print_exception=False)
            try:
                result = service.predict_live(recording)
            except VoxfaceError as e:
                raise gr.Error(str(e), print_exception=False) from None
            final = (f"**Final** ({recording.seconds:.1f} s recorded, {result.prediction.speech_seconds:.1f} s "
                     f"of speech): `voxface predict` on the recording, which is among the downloads.")
            return final, *shown(result)

        def forget(request):  # the tab closed: its live recording goes
            service.live.drop(request.session_hash)

        for handler in (listen, finish, forget):  # Gradio passes the request (its session) by this annotation,
            handler.__annotations__["request"] = gr.Request  # which a string (this module's) cannot name
        button.click(answer, inputs=audio, outputs=outputs + [downloads], concurrency_limit=CONCURRENCY)
        live_parts = [live_status, voice_notice, live_view, description, trace]
        microphone.stream(listen, inputs=microphone, outputs=live_parts, stream_every=LIVE_EVERY_S,
                          time_limit=int(60 * service.max_minutes) + 10, concurrency_limit=CONCURRENCY,
                          show_progress="hidden")  # updates replace each other without a loading veil
        microphone.stop_recording(finish, inputs=None, outputs=[live_status] + outputs + [downloads],
                                  concurrency_limit=CONCURRENCY)
        page.unload(forget)
    return page


def live_outputs(service: FaceFromVoice, key: str, chunk: str | Path) -> tuple:
    """What the page shows for one live chunk file of session ``key``: the status, the notice, the
    live images, the ratios and the trace; None for each part that stays as it is (all but the
    status while there is no face yet; all when a newer chunk is waiting and updates instead)."""
    update = service.live.add(key, *service.chunks.read(chunk))
    if update is None:
        return (None,) * 5
    if update.prediction is None:
        return (live_text(update),) + (None,) * 4
    return (live_text(update), notice_markdown(update.prediction), live_html(update),
            description_markdown(update.prediction), trace_table(update))


TRACE_LABEL = "As speech accumulates: how far the face moved since the previous update, and how unsure it is"


def live_text(update: LiveUpdate) -> str:
    """Markdown status of a live update: its number, what was heard, and any message."""
    heard = "" if update.prediction is None else f", {update.prediction.speech_seconds:.1f} s of speech"
    text = f"**Live** · update {update.number} · {update.recorded_s:.1f} s recorded{heard}"
    return text + (f"\n\n{update.message}" if update.message else "")


def live_html(update: LiveUpdate) -> str:
    """The live render and uncertainty render as inline images (no files are written)."""
    figures = [("voxface-live-render", "The face of all the speech so far", update.render)]
    if update.uncertainty is not None:
        uncertainty = update.prediction.uncertainty
        how = ("the head's spread scaled to what held-out voices of this length showed" if uncertainty.length_scale
               is not None else "the head's own spread (this model has no length calibration, so it may not "
               "narrow with more speech)")
        figures.append(("voxface-live-uncertainty", f"How unsure after {update.prediction.speech_seconds:.1f} s "
                        f"of speech (per-vertex standard deviation, 0 to {uncertainty.vertex_std.max():.3g} "
                        f"{update.prediction.model.units}): {how}", update.uncertainty))
    return "".join(f'<figure style="display:inline-block;margin:4px"><img id="{key}" src="{png_data_url(image)}" '
                   f'width="{image.shape[1]}" alt="{caption}"><figcaption>{caption}</figcaption></figure>'
                   for key, caption, image in figures)


def trace_table(update: LiveUpdate):
    """The trace as the line plot's table: speech seconds, value, series."""
    import pandas as pd

    rows = [(p.speech_s, p.change, "shape change since the previous update") for p in update.trace]
    rows += [(p.speech_s, p.spread, "uncertainty (RMS coefficient std)") for p in update.trace if p.spread is not None]
    return pd.DataFrame(rows, columns=["speech (s)", "z-score", "series"])


def serve(run: str | Path | None = None, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
          max_upload_mb: float = MAX_UPLOAD_MB, image_run: str | Path | None = None, block: bool = True,
          max_minutes: float = SERVE_MAX_MINUTES, keep_minutes: float = KEEP_MINUTES, device: str = "auto"):
    """Load the predictor (or explain how to make one) and serve the page on ``host:port``.

    ``image_run``: a run of ``voxface train gan2d`` (or its voice_to_image.pt) whose generated face
    image the page shows beside the 3D face. ``max_minutes``: longer recordings are refused before
    decoding. ``keep_minutes``: how long the files of an answer stay downloadable. ``device``: where
    the networks compute. Everything the server writes is removed when it stops (Ctrl-C, SIGTERM,
    ``page.close()``). Returns the launched Gradio page (useful with ``block=False``).
    """
    port = check_number("--port", port, int, ge=1, le=65535)
    max_upload_mb = check_number("--max-upload-mb", max_upload_mb, float, gt=0)
    max_minutes = check_number("--max-minutes", max_minutes, float, gt=0)
    keep_minutes = check_number("--keep-minutes", keep_minutes, float, gt=0)
    path, note = find_run(run)
    service = None
    if path is not None:
        image_model = None
        if image_run is not None:
            image_model = place_predictor(VoiceToImage.load(image_run), device)
            note += (f" 2D face model: `{image_run}` ({image_model.settings['generator']}, trained on "
                     f"{trained_on(image_model.provenance)}).")
        predictor = place_predictor(VoiceTo3D.load(path), device)
        note += f" Trained on {trained_on(predictor.provenance)}."
        sweep_abandoned()
        folders = RequestFolders.for_this_process()
        if block and "GRADIO_TEMP_DIR" not in os.environ:  # this process serves until it exits: keep
            os.environ["GRADIO_TEMP_DIR"] = str(folders.root / "gradio")  # all it writes under one folder
        service = FaceFromVoice(predictor, folders, max_upload_mb, image_model, max_minutes, keep_minutes)
    else:
        log.warning("%s", note)
    page = build_page(service, note)
    page.queue(default_concurrency_limit=CONCURRENCY)
    cleanup = _cleanup_on_close(page, service, on_sigterm=block)
    print(f"voxface serve: http://{host}:{port}  (Ctrl-C stops it)", flush=True)
    try:
        page.launch(server_name=host, server_port=port, max_file_size=f"{max_upload_mb:g}mb",
                    allowed_paths=[str(service.out_root)] if service else None, prevent_thread_lock=not block,
                    quiet=True, show_error=True, ssr_mode=False)
    finally:
        if block:
            cleanup()
    return page


def _cleanup_on_close(page, service: FaceFromVoice | None, on_sigterm: bool):
    """Make ``page.close()``, SIGTERM and interpreter exit remove what the server wrote (Gradio
    deletes its cached files when its server stops; this removes the request folders). Returns the
    clean-up function."""
    close = page.close

    def cleanup() -> None:
        cached = {Path(f).parent for files in page.temp_file_sets for f in files}
        close()  # Gradio's server stops and deletes the files it cached for this page
        for folder in cached:
            with contextlib.suppress(OSError):
                folder.rmdir()  # the per-file folders it leaves, where empty
        if service is not None:
            service.folders.close()

    page.close = cleanup
    atexit.register(cleanup)
    if on_sigterm and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)
    return cleanup


def _interrupt(signum, frame) -> None:
    """SIGTERM stops the server as Ctrl-C does (Gradio then closes and the files are removed)."""
    raise KeyboardInterrupt
