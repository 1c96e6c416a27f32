"""What one long upload and many requests cost ``voxface serve``: peak memory and disk.

Usage: .venv/bin/python bench/bench_serve_limits.py [--minutes 120] [--requests 100] [--src SRC]
       [--serve-args '--keep-minutes 0.5'] [--idle 30] [--skip-long]

Starts ``voxface serve`` (an untrained predictor: the cost of a request does not depend on the
weights) as a subprocess on 127.0.0.1, with its ``TMPDIR`` (where voxface's request folders and
Gradio's cache go) inside a scratch folder so that their disk use can be measured, then:

1. uploads a ``--minutes`` long Opus recording (real speech from ``$VOXFACE_SHARED_DATA/fsdd``
   looped by ffmpeg, or a synthetic voice without shared data; a few MB, under the 20 MB limit)
   and reports the server's resident memory before and its peak (VmHWM) after, the answer, and
   how long a short request sent at the same time waited;
2. sends ``--requests`` short requests one after another and reports the disk use of the server's
   folders; stops the server with SIGTERM and reports the disk use again.

``--src`` runs another source tree (e.g. an export of an older commit) for a before/after table.
Loopback only, bounded loops. Needs ffmpeg.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

SR = 16000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=120.0, help="length of the long upload")
    parser.add_argument("--requests", type=int, default=100, help="short requests for the disk measurement")
    parser.add_argument("--src", default=str(Path(__file__).resolve().parents[1] / "src"),
                        help="source tree to serve (default: this checkout's src)")
    parser.add_argument("--skip-long", action="store_true", help="only the disk measurement")
    parser.add_argument("--idle", type=float, default=0.0, help="then wait this long and measure the disk again")
    parser.add_argument("--serve-args", default="", help="more options for `voxface serve`, e.g. '--keep-minutes 0.5'")
    args = parser.parse_args()
    if shutil.which("ffmpeg") is None:
        sys.exit("needs ffmpeg")
    scratch = Path(tempfile.mkdtemp(prefix="voxface-bench-serve-"))
    try:
        run(args, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def run(args: argparse.Namespace, scratch: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "GRADIO_TEMP_DIR"}
    env.update(PYTHONPATH=args.src, TMPDIR=str(scratch / "tmp"), GRADIO_ANALYTICS_ENABLED="False")
    (scratch / "tmp").mkdir()
    predictor = scratch / "predictor.pt"
    subprocess.run([sys.executable, "-c", PREDICTOR_SCRIPT, str(predictor)], env=env, check=True)
    clip = speech_clip(scratch, env)
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "voxface.cli", "serve", "--run", str(predictor),
                               "--port", str(port), *args.serve_args.split()], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    try:
        client = connect(port, server)
        print(f"source: {args.src}")
        print(f"server idle: RSS {rss_mb(server.pid):.0f} MB")
        if not args.skip_long:
            long_upload(args.minutes, clip, scratch, client, server, env)
        start = time.perf_counter()
        for n in range(args.requests):  # distinct uploads, as from distinct visitors (Gradio dedupes equal files)
            client.predict(handle(variant(clip, n, scratch)), api_name=API)
        print(f"after {args.requests} short requests ({time.perf_counter() - start:.0f} s): server folders "
              f"{disk_mb(scratch)}, {files(scratch)} files")
        if args.idle:
            time.sleep(args.idle)
            print(f"after {args.idle:g} s idle: server folders {disk_mb(scratch)}, {files(scratch)} files")
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
        print(f"after shutdown (SIGTERM): server folders {disk_mb(scratch)}, {files(scratch)} files; "
              f"exit status {server.returncode}")
    finally:
        if server.poll() is None:
            server.kill()


def long_upload(minutes: float, clip: Path, scratch: Path, client, server, env: dict) -> None:
    long = scratch / f"long_{minutes:g}min.ogg"
    subprocess.run(["ffmpeg", "-v", "error", "-stream_loop", "-1", "-i", str(clip), "-t", str(60 * minutes),
                    "-ac", "1", "-c:a", "libopus", "-b:a", "12k", str(long)], check=True)
    print(f"long upload: {minutes:g} minutes of speech as Opus, {long.stat().st_size / 2**20:.1f} MB")
    before = rss_mb(server.pid)
    start = time.perf_counter()
    with ThreadPoolExecutor(2) as pool:
        answer = pool.submit(call, client, long)
        time.sleep(1.0)
        short_start = time.perf_counter()
        short = pool.submit(call, client, clip)
        short_result, short_s = short.result(), time.perf_counter() - short_start
        long_result = answer.result()
    print(f"  answer after {time.perf_counter() - start:.1f} s: {long_result}")
    print(f"  server RSS before {before:.0f} MB, peak (VmHWM) {peak_mb(server.pid):.0f} MB")
    print(f"  a short request sent meanwhile: {short_result} after {short_s:.1f} s")


def call(client, path: Path) -> str:
    try:
        client.predict(handle(path), api_name=API)
        return "a face"
    except Exception as e:  # the page's refusal arrives as an error
        return f"refused: {str(e).strip().splitlines()[-1][:160]}"


API = "/answer"


def handle(path: Path):
    from gradio_client import handle_file

    return handle_file(str(path))


def connect(port: int, server: subprocess.Popen):
    from gradio_client import Client

    deadline = time.time() + 180
    while time.time() < deadline:
        if server.poll() is not None:
            sys.exit(f"server stopped: {server.stdout.read()}")
        try:
            return Client(f"http://127.0.0.1:{port}/", verbose=False)
        except Exception:
            time.sleep(1)
    sys.exit("server did not start")


def speech_clip(scratch: Path, env: dict) -> Path:
    """A few seconds of speech as WAV: FSDD digits of one speaker joined, else a synthetic voice."""
    clip = scratch / "speech.wav"
    fsdd = Path(os.environ.get("VOXFACE_SHARED_DATA", "../shared/data")) / "fsdd" / "recordings"
    if fsdd.is_dir():
        import soundfile as sf

        waves = [sf.read(fsdd / f"{d}_george_0.wav", dtype="float32")[0] for d in range(10)]
        sf.write(clip, np.concatenate(waves), 8000)
    else:
        subprocess.run([sys.executable, "-c", VOICE_SCRIPT, str(clip)], env=env, check=True)
    return clip


def variant(clip: Path, n: int, scratch: Path) -> Path:
    """``clip`` with ``n + 1`` samples of silence appended: another file of the same speech."""
    import soundfile as sf

    wave, sr = sf.read(clip, dtype="float32")
    path = scratch / f"visitor_{n:03d}.wav"
    sf.write(path, np.concatenate([wave, np.zeros(n + 1, np.float32)]), sr)
    return path


def rss_mb(pid: int) -> float:
    return _status_kb(pid, "VmRSS") / 1024


def peak_mb(pid: int) -> float:
    return _status_kb(pid, "VmHWM") / 1024


def _status_kb(pid: int, key: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return float(line.split()[1])
    return float("nan")


def disk_mb(root: Path) -> str:
    """Disk use of the server's TMPDIR (voxface's request folders and Gradio's cache, wherever the
    version under test puts it there), as ``du`` counts it, and of its Gradio cache alone."""
    tmp = root / "tmp"
    total = _du_kb(tmp) / 1024
    gradio = sum(_du_kb(p) for p in tmp.glob("**/gradio") if p.is_dir()) / 1024
    return f"{total:.2f} MB (Gradio cache {gradio:.2f} MB)"


def _du_kb(path: Path) -> int:
    out = subprocess.run(["du", "-sk", str(path)], capture_output=True, text=True)
    return int(out.stdout.split()[0]) if out.stdout else 0


def files(root: Path) -> int:
    return sum(1 for p in (root / "tmp").rglob("*") if p.is_file())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


PREDICTOR_SCRIPT = """
import sys, torch
from voxface.face3d.loading import load_morphable_model
from voxface.predictors.voice_to_3d import VoiceTo3D
from voxface.models.regressor import ParameterRegressor
from voxface.models.voice_encoders import CMPVoiceEncoder
torch.manual_seed(0)
model = load_morphable_model("builtin")
encoder = CMPVoiceEncoder().eval()
VoiceTo3D("cmp", encoder, ParameterRegressor(encoder.embed_dim, model.n_shape), model).save(sys.argv[1])
"""

VOICE_SCRIPT = """
import sys, numpy as np
from voxface.audio.io import save_wav
from voxface.audio.synth import sample_conditions, sample_voice_params, synthesize
rng = np.random.default_rng(0)
voice = sample_voice_params(rng, "f")
save_wav(sys.argv[1], synthesize(voice, sample_conditions(rng, duration_s=(4.0, 4.0)), sr=16000), 16000)
"""

if __name__ == "__main__":
    main()
