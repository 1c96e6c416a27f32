"""Speed of the audio front end on one CPU core, as a multiple of real time.

Usage: .venv/bin/python bench/bench_features.py [--repeats 7]

Prints, for 10 s and 60 s clips of a speech-like signal (150 Hz harmonic bursts and pauses, 16 kHz),
the best-of-N time of ``cmp_logmel`` (SPEC.md §A), ``mel_delta`` (§B) and ``trim_silence`` (webrtcvad),
the real-time factor (seconds of audio per second of compute) and its ratio to the 300× target.
"""

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"  # before numpy is imported

import argparse  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from voxface.audio.features import cmp_logmel, mel_delta  # noqa: E402
from voxface.audio.vad import trim_silence  # noqa: E402

SR = 16000
TARGET = 300.0


def speech_like(seconds: float, seed: int = 0) -> np.ndarray:
    """(N,) float32: 0.3-1.2 s harmonic bursts with random pitch, separated by 0.1-0.5 s pauses."""
    rng = np.random.default_rng(seed)
    pieces, total = [], 0
    while total < seconds * SR:
        n = int(rng.uniform(0.3, 1.2) * SR)
        t = np.arange(n) / SR
        f0 = rng.uniform(90, 250)
        burst = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 20)) * 0.2
        pieces += [burst, rng.normal(0, 1e-4, int(rng.uniform(0.1, 0.5) * SR))]
        total += len(pieces[-2]) + len(pieces[-1])
    return np.concatenate(pieces)[: int(seconds * SR)].astype(np.float32)


def best_seconds(fn, wave: np.ndarray, repeats: int) -> float:
    fn(wave)  # warm-up (librosa / numba initialisation, caches)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn(wave)
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    print(f"one core, best of {args.repeats}; x real time = audio s / compute s; target {TARGET:.0f}x")
    print(f"{'step':<14}{'clip':>6}{'ms':>9}{'x real time':>13}{'/ target':>10}")
    with threadpool_limits(limits=1):
        for seconds in (10, 60):
            wave = speech_like(seconds)
            for fn in (cmp_logmel, mel_delta, trim_silence):
                name = fn.__name__
                elapsed = best_seconds(fn, wave, args.repeats)
                factor = seconds / elapsed
                print(f"{name:<14}{seconds:>5}s{elapsed * 1e3:>9.2f}{factor:>12.0f}x{factor / TARGET:>9.1f}x")


if __name__ == "__main__":
    main()
