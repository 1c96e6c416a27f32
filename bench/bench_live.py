"""Live mode's latency: from a microphone chunk reaching the server to the page's updated face.

Usage: .venv/bin/python bench/bench_live.py [--seconds 20] [--chunk-seconds 1] [--run RUN] [--no-cmp-release]

For each model — ``--run`` (default: the demo's run if ``voxface demo`` made one, else a demo-like
predictor: the CMP encoder with a Gaussian head on the built-in model, untrained, since the cost
of an update does not depend on the weights) and the CMP release imported from
``$VOXFACE_SHARED_DATA/cmp_checkpoints`` (laid out by ``shared_release_layout``) — it plays a
``--seconds`` long recording (real speech from ``$VOXFACE_SHARED_DATA/cmp_reference``) at 48 kHz in chunks of ``--chunk-seconds`` (the page's, 1 s) at real-time pace into the page's handler
(``voxface.app.web.live_outputs``: the chunk file read as Gradio wrote it, the whole recording
through the front end, the prediction and the live renders of the coarse preview mesh, the
inline images and the trace table), and reports the p50 and p95 of the time from a chunk file
being written to its outputs being ready, for

1. one live session;
2. two live sessions at once;
3. two live sessions at once, with one upload (a 10 s recording through **Predict**) sent at the
   same time.

The time the browser needs to receive and draw an update (loopback, a few ms) is not included.
Aim (docs/serve.md): p95 <= 250 ms on 2 cores. Timing figures mean something only on an idle
machine; ``--seconds 2`` just checks that the script runs.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from voxface.app.settings import LIVE_EVERY_S
from voxface.app.web import FaceFromVoice, live_outputs
from voxface.audio.io import to_pcm16
from voxface.paths import shared_data_dir
from voxface.predictors.voice_to_3d import VoiceTo3D

RATE = 48000
AIM_P95_MS = 250


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each live recording")
    parser.add_argument("--chunk-seconds", type=float, default=LIVE_EVERY_S,
                        help="audio per chunk, as the page's microphone sends it (default: the page's)")
    parser.add_argument("--run", help="a voice-to-3D run or predictor.pt (default: the demo's, else demo-like)")
    parser.add_argument("--no-cmp-release", action="store_true", help="skip the imported CMP release")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="voxface-bench-live-"))
    try:
        models = {"demo-like" if args.run is None else args.run: load_model(args.run, scratch)}
        if not args.no_cmp_release:
            release = cmp_release(scratch)
            if release is not None:
                models["CMP release"] = release
        speech = recording(args.seconds)
        upload = scratch / "upload.wav"
        sf.write(upload, speech[:10 * RATE], RATE, subtype="PCM_16")
        print(f"{args.seconds:g} s recordings in {args.chunk_seconds:g} s chunks at real-time pace; latency chunk -> page outputs")
        print("| model | sessions | upload | updates | p50 ms | p95 ms | max ms | upload s |")
        print("|---|---|---|---|---|---|---|---|")
        for name, predictor in models.items():
            service = FaceFromVoice(predictor, scratch / "served")
            live_session(service, speech, scratch / "warm-up", "warm-up", args.chunk_seconds)  # renderers, torch, caches
            for sessions, with_upload in ((1, False), (2, False), (2, True)):
                latencies, upload_s = measure(service, speech, scratch, sessions, upload if with_upload else None,
                                              args.chunk_seconds)
                p50, p95 = np.percentile(latencies, [50, 95])
                print(f"| {name} | {sessions} | {'yes' if with_upload else 'no'} | {len(latencies)} | {p50:.0f} | "
                      f"{p95:.0f} | {max(latencies):.0f} | {'-' if upload_s is None else f'{upload_s:.2f}'} |",
                      flush=True)
            service.folders.close()
        print(f"aim: p95 <= {AIM_P95_MS} ms on 2 cores (measure on an idle machine)")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def measure(service: FaceFromVoice, speech: np.ndarray, scratch: Path, sessions: int,
            upload: Path | None, chunk_s: float) -> tuple[list[float], float | None]:
    """Latencies (ms) of every chunk of ``sessions`` concurrent live sessions, and how long the
    upload sent at their start took (s), or None without one."""
    upload_s = []

    def send_upload():
        start = time.perf_counter()
        service.predict(upload)
        upload_s.append(time.perf_counter() - start)

    threads = [threading.Thread(target=send_upload)] if upload is not None else []
    with ThreadPoolExecutor(sessions) as pool:
        futures = [pool.submit(live_session, service, speech, scratch / f"session{i}", f"session{i}", chunk_s)
                   for i in range(sessions)]
        for thread in threads:
            thread.start()
        latencies = [ms for future in futures for ms in future.result()]
    for thread in threads:
        thread.join()
    return latencies, upload_s[0] if upload_s else None


def live_session(service: FaceFromVoice, speech: np.ndarray, folder: Path, key: str, chunk_s: float) -> list[float]:
    """Play ``speech`` into the page's live handler in ``chunk_s`` chunks at real-time pace; the
    latency (ms) of each chunk."""
    step = int(chunk_s * RATE)
    latencies = []
    start = time.perf_counter()
    for index, offset in enumerate(range(0, len(speech), step)):
        time.sleep(max(0.0, start + (index + 1) * chunk_s - time.perf_counter()))  # the chunk is recorded
        chunk = folder / f"{index:05d}" / "audio.wav"
        chunk.parent.mkdir(parents=True)
        arrived = time.perf_counter()
        sf.write(chunk, speech[offset:offset + step], RATE, subtype="PCM_16")  # as Gradio's upload writes it
        live_outputs(service, key, chunk)
        latencies.append(1000 * (time.perf_counter() - arrived))
    service.live.finish(key)
    return latencies


def recording(seconds: float) -> np.ndarray:
    """(N,) int16 at 48 kHz: real speech, the shared reference clips one after another (looped)."""
    clips = sorted((shared_data_dir() / "cmp_reference" / "wav").glob("*.wav"))
    if not clips:
        raise SystemExit(f"needs the reference clips in {shared_data_dir() / 'cmp_reference'}: set VOXFACE_SHARED_DATA")
    wave = np.concatenate([sf.read(c, dtype="float32")[0] for c in clips])
    rate = sf.info(clips[0]).samplerate
    wave = np.tile(wave, int(np.ceil(seconds * rate / len(wave))))[:int(seconds * rate)]
    return to_pcm16(soxr.resample(wave, rate, RATE, quality="HQ"))


def load_model(run: str | None, scratch: Path) -> VoiceTo3D:
    """``run``, the demo's run, or a demo-like untrained predictor (CMP encoder, Gaussian head, built-in model)."""
    from voxface.app.settings import DEFAULT_RUN
    from voxface.predictors.voice_to_3d import BUNDLE_FILE

    if run is not None:
        return VoiceTo3D.load(run)
    if (DEFAULT_RUN / BUNDLE_FILE).is_file():
        return VoiceTo3D.load(DEFAULT_RUN)
    import torch

    from voxface.face3d.loading import load_morphable_model
    from voxface.models.regressor import create_regressor
    from voxface.models.voice_encoders import CMPVoiceEncoder

    torch.manual_seed(0)
    model = load_morphable_model("builtin")
    encoder = CMPVoiceEncoder().eval()
    return VoiceTo3D("cmp", encoder, create_regressor("gaussian", encoder.embed_dim, model.n_shape), model,
                     provenance={"trained_on": "nothing (an untrained demo-like predictor)", "synthetic": True})


def cmp_release(scratch: Path) -> VoiceTo3D | None:
    """The CMP release imported from the shared checkpoints, or None (with a note) when they are absent."""
    from voxface.predictors.cmp_release import import_cmp_release, shared_release_layout

    release = shared_release_layout(shared_data_dir(), scratch / "release")
    if release is None:
        print(f"(no CMP release in {shared_data_dir()}: set VOXFACE_SHARED_DATA; skipped)")
        return None
    return VoiceTo3D.load(import_cmp_release(release, scratch / "cmp")["supervised"])

if __name__ == "__main__":
    main()
