"""Speed of the CMP front end on one CPU core, as a multiple of real time, beside the official recipe.

Usage: .venv/bin/python bench/bench_features.py [--repeats 5]

On the 18 real clips of ``shared/data/cmp_reference`` (4.6 minutes of speech and pauses), two
pipelines from the WAV file to the (T, 64) features, timed side by side in this run:

- ``voxface``: ``cmp_logmel(prepare_voice(path))`` — read the int16 samples, the reference VAD
  collector, vectorised float32 log-mel (what ``voxface features`` / ``predict`` run);
- ``official-style``: the steps of the released preprocessing as its code takes them (written
  here from its description, not copied): the ``wave`` module read, the same collector, each segment
  written to a temporary WAV and read back with ``scipy.io.wavfile``, then the Sphinx front end
  frame by frame in float64 (``mfcc.py``'s loop: per-frame pre-emphasis, Hamming window, rfft,
  filter bank, log), per-utterance normalisation and tiling.

Prints best-of-N seconds per pipeline, the real-time factor (audio seconds per compute second),
voxface's speed-up over the official-style one, and voxface against the issue's 400× floor and
650× aim. Also the older synthetic-signal figures for ``mel_delta``.
"""

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"  # before numpy is imported

import argparse  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import wave  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import scipy.io.wavfile  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from voxface.audio.features import cmp_logmel, mel_delta, mel_filterbank  # noqa: E402
from voxface.audio.vad import voiced_spans  # noqa: E402
from voxface.audio.voice import prepare_voice  # noqa: E402
from voxface.paths import shared_data_dir  # noqa: E402

SR = 16000
FLOOR, AIM = 400.0, 650.0


def voxface_pipeline(path: Path) -> np.ndarray:
    return cmp_logmel(prepare_voice(path))


def official_style_pipeline(path: Path) -> np.ndarray:
    """The released recipe's steps, including its temporary-file round trip and per-frame loop."""
    with wave.open(str(path), "rb") as f:
        pcm = np.frombuffer(f.readframes(f.getnframes()), dtype="<i2")
    pieces = []
    with tempfile.TemporaryDirectory() as tmp:
        for k, (a, b) in enumerate(voiced_spans(pcm)):
            segment = Path(tmp) / f"{k}.wav"
            with wave.open(str(segment), "wb") as f:
                f.setnchannels(1)
                f.setsampwidth(2)
                f.setframerate(SR)
                f.writeframes(pcm[a:b].tobytes())
            pieces.append(scipy.io.wavfile.read(segment)[1])
    signal = np.concatenate(pieces).astype(np.int16)
    bank = np.asarray(mel_filterbank(), dtype=np.float64)
    window = np.hamming(400)
    rows, prior = [], 0.0
    for t in range(int(len(signal) / 160 + 1)):
        frame = signal[160 * t:160 * t + 400]
        if len(frame) < 400:
            frame = np.resize(frame, 400)
        emphasised = np.empty(400)
        emphasised[0] = frame[0] - 0.97 * prior
        for i in range(1, 400):  # the release pre-emphasises sample by sample
            emphasised[i] = frame[i] - 0.97 * frame[i - 1]
        prior = frame[-1]
        spectrum = np.fft.rfft(emphasised * window, 1024)
        power = spectrum.real * spectrum.real + spectrum.imag * spectrum.imag
        rows.append(np.log(np.dot(power, bank).clip(1e-5, np.inf)))
    feats = np.array(rows).astype(np.float32)
    feats = (feats - feats.mean(0)) / (feats.std(0) + np.finfo(np.float32).eps)
    return np.tile(feats, (-(-1000 // len(feats)), 1))[:max(1000, len(feats))]


def best_seconds(fn, items, repeats: int) -> float:
    for item in items[:1]:
        fn(item)  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for item in items:
            fn(item)
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    clips = sorted((shared_data_dir() / "cmp_reference" / "wav").glob("*.wav"))
    if not clips:
        raise SystemExit("cmp_reference clips not found (set VOXFACE_SHARED_DATA)")
    seconds = sum(scipy.io.wavfile.read(c)[1].size for c in clips) / SR
    with threadpool_limits(limits=1):
        worst = max(float(np.abs(voxface_pipeline(c) - official_style_pipeline(c)).max()) for c in clips[:3])
        print(f"one core, best of {args.repeats}; {len(clips)} cmp_reference clips, {seconds:.1f} s of audio; "
              f"the two pipelines agree to {worst:.1e} on the first three")
        print(f"{'pipeline':<16}{'s':>9}{'x real time':>14}")
        timed = {}
        for name, fn, repeats in (("voxface", voxface_pipeline, args.repeats),
                                  ("official-style", official_style_pipeline, 1)):
            timed[name] = best_seconds(fn, clips, repeats)
            print(f"{name:<16}{timed[name]:>9.3f}{seconds / timed[name]:>13.0f}x")
        factor = seconds / timed["voxface"]
        print(f"voxface / official-style: {timed['official-style'] / timed['voxface']:.1f}x faster; "
              f"{factor:.0f}x real time = {factor / FLOOR:.2f} x the {FLOOR:.0f}x floor, "
              f"{factor / AIM:.2f} x the {AIM:.0f}x aim")
        speech = prepare_voice(clips[-1])
        elapsed = best_seconds(mel_delta, [speech], args.repeats)
        print(f"mel_delta on {len(speech) / SR:.1f} s of speech: {len(speech) / SR / elapsed:.0f}x real time")


if __name__ == "__main__":
    main()
