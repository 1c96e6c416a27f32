"""Live prediction on the page: the face of all the speech so far, updated while the visitor speaks.

The microphone streams chunks (1 s of int16 samples at the browser's rate, 48 kHz in Chromium).
Each visitor's chunks go into one :class:`LiveRecording`; every update runs the batch path on the
whole recording so far — the samples a WAV of it would hold, through the same conversion
(:func:`voxface.audio.io.resample_mono`) and the same front end (:func:`voxface.audio.voice.prepare_voice`:
the reference VAD collector over the whole recording, then the features) as an upload, then
:meth:`VoiceTo3D.predict`. An update is therefore exactly ``voxface predict`` on the recording as
it stood at that chunk; the last one (when recording stops) is ``voxface predict`` on the whole
recording saved as WAV, which the page then writes and offers for download.

The live renders show a coarser mesh (:class:`~voxface.face3d.simplify.VertexClustering` of the
model's mean, cells of about two pixels) of the same prediction; the final answer renders the full mesh.

Bounds: a recording holds at most ``max_seconds`` of audio (more is not kept, and the page says
so); at most ``max_sessions`` visitors record at once; a recording nobody added to for
``idle_s`` seconds (the visitor left) is dropped, as it is when the page's tab closes; updates
write no files (images go to the page inline) and each chunk file Gradio wrote is deleted once read.
"""

from __future__ import annotations

import io
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..audio.io import resample_mono, save_wav, to_pcm16
from ..audio.voice import check_speech_like, prepare_voice
from ..errors import VoxfaceError
from ..face3d.render import RENDER_FILL, render_mesh
from ..face3d.simplify import VertexClustering
from ..predictors.prediction import Prediction
from ..predictors.voice_to_3d import VoiceTo3D
from ..workflows.predict import uncertainty_colours
from .settings import LIVE_PREVIEW_CELL_PX

SAMPLE_RATE = 16000
"""The front end's rate; chunks are converted to it only as part of the whole recording."""
MAX_SESSIONS = 8
IDLE_S = 30.0
"""A live recording without a chunk for this long is dropped (its visitor left mid-recording)."""


@dataclass(frozen=True)
class TracePoint:
    """One update's place in the trace: ``speech_s`` of speech heard (after silence removal); how
    far the shape moved since the previous update (``change``, RMS over the K standardised shape
    coefficients) and how unsure the model is (``spread``, RMS of the coefficients' standard
    deviations; None for a point model), both in z-scores of the model prior."""

    speech_s: float
    change: float
    spread: float | None


@dataclass
class LiveUpdate:
    """What the page shows after one chunk.

    Attributes:
        number: how many updates this recording has had (1 for the first).
        recorded_s: seconds of audio received so far.
        prediction: the face of all the speech so far, or None while there is not enough speech.
        render: (S, S, 3) uint8 render of the face, or None.
        uncertainty: (S, S, 3) uint8 render coloured by the per-vertex standard deviation, or None.
        message: why there is no face yet, or that the limit was reached; None otherwise.
        trace: the trace points of every update with a face so far.
    """

    number: int
    recorded_s: float
    prediction: Prediction | None = None
    render: np.ndarray | None = None
    uncertainty: np.ndarray | None = None
    message: str | None = None
    trace: list[TracePoint] = field(default_factory=list)


class LiveRecording:
    """One visitor's growing recording: int16 chunks at the browser's rate, at most ``max_seconds``.

    Args:
        max_seconds: audio beyond this is not kept (``full`` becomes True).
    """

    def __init__(self, max_seconds: float):
        self.max_seconds = max_seconds
        self.chunks: list[np.ndarray] = []
        self.sr: int | None = None
        self.frames = 0
        self.full = False
        self.updates = 0
        self.trace: list[TracePoint] = []
        self.last_shape: np.ndarray | None = None
        self.touched = time.monotonic()
        self.lock = threading.Lock()
        self.waiting = 0
        """Chunks of this recording waiting for its lock (an update is skipped when one is)."""

    @property
    def seconds(self) -> float:
        return self.frames / self.sr if self.sr else 0.0

    def add(self, sr: int, samples: np.ndarray) -> int:
        """Append one chunk: (n,) or (n, C) int16 at ``sr`` Hz; what passes ``max_seconds`` is dropped.
        Returns how many of its samples were kept.

        Raises:
            VoxfaceError: if the chunk's rate or channels differ from the recording's.
        """
        samples = to_pcm16(np.asarray(samples))
        if self.sr is None:
            self.sr = int(sr)
        elif sr != self.sr or (self.chunks and samples.shape[1:] != self.chunks[0].shape[1:]):
            raise VoxfaceError(f"the microphone changed from {self.sr} Hz to {sr} Hz (or its channels) while "
                               "recording: stop, and record again")
        room = int(self.max_seconds * self.sr) - self.frames
        if len(samples) > room:
            samples, self.full = samples[:max(room, 0)], True
        if len(samples):
            self.chunks.append(samples)
            self.frames += len(samples)
        self.touched = time.monotonic()
        return len(samples)

    def samples(self) -> np.ndarray:
        """(N,) or (N, C) int16: the recording so far at its own rate (what its WAV holds)."""
        if len(self.chunks) > 1:
            self.chunks = [np.concatenate(self.chunks)]
        return self.chunks[0] if self.chunks else np.zeros(0, np.int16)

    def speech(self) -> np.ndarray:
        """(N,) float32 16 kHz speech of the whole recording so far: ``voxface predict``'s front end on
        its WAV (converted as a decoded file is, then silence removal over the whole of it, then the
        same refusal of noise-like audio).

        Raises:
            VoxfaceError: while there is not enough speech (too short, silent, no speech found, noise).
        """
        if not self.frames:
            raise VoxfaceError("nothing recorded yet")
        pcm = to_pcm16(resample_mono(self.samples(), self.sr, SAMPLE_RATE, source="the recording"))
        speech = prepare_voice(pcm, sr=SAMPLE_RATE)
        check_speech_like(speech, "the recording so far")
        return speech

    def save(self, path: str | Path) -> Path:
        """Write the recording as a 16-bit WAV at its own rate (what ``voxface predict`` would read)."""
        save_wav(path, self.samples(), self.sr)
        return Path(path)


class LiveSessions:
    """The live recordings of the page's visitors, by session key, and their updates.

    Args:
        predictor: the page's predictor (an update predicts in its own request's thread).
        max_seconds: the most audio one recording holds (the page's duration limit).
        render_size: pixels of the live renders.
        preview_cell_px: pixels across one vertex cluster of the coarse mesh the live renders show.
        max_sessions: visitors recording at once; one more is refused with a message.
        idle_s: a recording without a chunk for this long is dropped.
    """

    def __init__(self, predictor: VoiceTo3D, max_seconds: float, render_size: int,
                 preview_cell_px: float = LIVE_PREVIEW_CELL_PX, max_sessions: int = MAX_SESSIONS,
                 idle_s: float = IDLE_S):
        self.predictor = predictor
        self.max_seconds, self.render_size = max_seconds, render_size
        model = predictor.model
        self.preview = VertexClustering.of(model.mean, model.triangles,
                                           cells=max(2, round(RENDER_FILL * render_size / preview_cell_px)))
        self.max_sessions, self.idle_s = max_sessions, idle_s
        self._recordings: dict[str, LiveRecording] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._recordings)

    def add(self, key: str, sr: int, samples: np.ndarray) -> LiveUpdate | None:
        """Add one chunk to ``key``'s recording and return the update for all of it so far; None
        when a newer chunk of the same recording is already waiting (that one updates instead).

        Raises:
            VoxfaceError: with a message for the page (too many visitors recording, the microphone
                changed its format).
        """
        recording = self._recording(key)
        with self._lock:
            recording.waiting += 1
        with recording.lock:
            with self._lock:
                recording.waiting -= 1
                skip = recording.waiting > 0
            kept = recording.add(sr, samples)
            if skip:
                return None
            return self._update(recording, changed=kept > 0)

    def finish(self, key: str) -> LiveRecording | None:
        """End ``key``'s recording and hand it over (None if there is none); it is no longer held."""
        with self._lock:
            recording = self._recordings.pop(key, None)
        if recording is not None:
            with recording.lock:  # an update still running finishes first
                pass
        return recording

    def drop(self, key: str) -> None:
        """Forget ``key``'s recording (its visitor left)."""
        with self._lock:
            self._recordings.pop(key, None)

    def expire(self, now: float | None = None) -> int:
        """Drop the recordings without a chunk for ``idle_s``; return how many."""
        now = time.monotonic() if now is None else now
        with self._lock:
            idle = [k for k, r in self._recordings.items() if now - r.touched > self.idle_s]
            for key in idle:
                del self._recordings[key]
        return len(idle)

    def _recording(self, key: str) -> LiveRecording:
        self.expire()
        with self._lock:
            if key not in self._recordings:
                if len(self._recordings) >= self.max_sessions:
                    raise VoxfaceError(f"{self.max_sessions} visitors are recording live already: try again in a "
                                       "minute, or record and press Predict")
                self._recordings[key] = LiveRecording(self.max_seconds)
            return self._recordings[key]

    def _update(self, recording: LiveRecording, changed: bool) -> LiveUpdate:
        """The update of ``recording`` as it stands (its lock held); without a face when nothing
        new was kept (the face shown stays)."""
        recording.updates += 1
        update = LiveUpdate(recording.updates, recording.seconds, trace=recording.trace)
        if recording.full:
            update.message = (f"the live limit of {self.max_seconds:g} s is reached: the rest is not "
                              "heard; press Stop to get the face of what was recorded")
        if not changed:
            return update
        try:
            speech = recording.speech()
        except VoxfaceError as e:
            update.message = update.message or f"listening: {str(e).replace('the waveform', 'the recording so far')}"
            return update
        update.prediction = self.predictor.predict(speech)  # in this request's thread, beside other visitors'
        update.render, update.uncertainty = self._renders(update.prediction)
        shape = update.prediction.parameters["shape"].astype(np.float64)
        change = 0.0 if recording.last_shape is None else float(np.sqrt(np.mean((shape - recording.last_shape) ** 2)))
        uncertainty = update.prediction.uncertainty
        spread = None if uncertainty is None else float(np.sqrt(np.mean(uncertainty.coefficient_std ** 2)))
        recording.last_shape = shape
        recording.trace.append(TracePoint(update.prediction.speech_seconds, change, spread))
        return update

    def _renders(self, prediction: Prediction) -> tuple[np.ndarray, np.ndarray | None]:
        """The preview render of the prediction and its uncertainty render (or None)."""
        mesh, triangles = self.preview.reduce(prediction.mesh), self.preview.triangles
        image = render_mesh(mesh, triangles, size=self.render_size)
        spread = None
        if prediction.uncertainty is not None:
            colours = uncertainty_colours(self.preview.reduce(prediction.uncertainty.vertex_std[:, None])[:, 0])
            spread = render_mesh(mesh, triangles, colors=colours, size=self.render_size)
        return image, spread


class ChunkFiles:
    """Reads the chunk files Gradio writes for a streaming microphone and deletes them at once.

    Gradio names an uploaded file by the hash of its content, so two visitors' identical chunks
    (digital silence) share one file: what was read is remembered for ``grace_s`` seconds so that
    the second reader still gets it after the first deleted it.
    """

    def __init__(self, grace_s: float = 5.0):
        self.grace_s = grace_s
        self._read: OrderedDict[str, tuple[float, int, np.ndarray]] = OrderedDict()
        self._lock = threading.Lock()

    def read(self, path: str | Path) -> tuple[int, np.ndarray]:
        """(sample rate, (n,) or (n, C) int16 samples) of one chunk file, which is then removed."""
        import soundfile as sf

        path = Path(path)
        now = time.monotonic()
        with self._lock:
            while self._read and now - next(iter(self._read.values()))[0] > self.grace_s:
                self._read.popitem(last=False)
            try:
                samples, sr = sf.read(path, dtype="int16")
            except (sf.LibsndfileError, FileNotFoundError, RuntimeError):
                if str(path) not in self._read:
                    raise VoxfaceError("a chunk of the live recording could not be read: stop, and record again")
                return self._read[str(path)][1:]
            self._read[str(path)] = (now, sr, samples)
            self._read.move_to_end(str(path))
        path.unlink(missing_ok=True)
        try:
            path.parent.rmdir()
        except OSError:
            pass
        return sr, samples


def png_data_url(image: np.ndarray) -> str:
    """(H, W, 3) uint8 -> a ``data:image/png;base64,...`` URL (the page shows it without a file)."""
    import base64

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG", compress_level=1)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
