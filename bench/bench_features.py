"""Speed of the CMP front end on one CPU core, beside the released CMP preprocessing itself.

Usage: .venv/bin/python bench/bench_features.py [--repeats 5]

On the 18 real clips of ``shared/data/cmp_reference`` (4.6 minutes of speech and pauses), from the
WAV file to the (T, 64) features, timed side by side in this run (the two alternate, best of N):

- ``official``: the released code (``mfcc.py``, ``vad.py``, ``rm_sil`` and ``get_fbank``), loaded
  from ``shared/reference_code/cmp_official`` (``$VOXFACE_CMP_OFFICIAL_CODE``) and run as its
  scripts run it (:mod:`voxface.audio.official`); skipped, with the reason, when it is absent;
- ``voxface``: ``cmp_logmel(prepare_voice(path))`` (what ``voxface features`` / ``predict`` run).

Prints the machine's load before and after, the largest difference between the two outputs, each
pipeline's best time and real-time factor, voxface's speed-up, and a profile of where each one
spends its time (decode, collector, frames, FFT, filter bank, log, normalisation); then the speed
of ``mel_delta``, the biometric-matching paper's voice input.
"""

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"  # before numpy is imported

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from voxface.audio import features as fe  # noqa: E402
from voxface.audio.official import official_frontend  # noqa: E402
from voxface.audio.voice import prepare_voice  # noqa: E402
from voxface.errors import VoxfaceError  # noqa: E402
from voxface.paths import shared_data_dir  # noqa: E402

SR = 16000
TARGET = 5.0
"""The speed-up over the released code that docs/benchmarks.md asks of the exact front end."""


def voxface_pipeline(path: Path) -> np.ndarray:
    return fe.cmp_logmel(prepare_voice(path))


def seconds(fn, items) -> float:
    start = time.perf_counter()
    for item in items:
        fn(item)
    return time.perf_counter() - start


def best_side_by_side(pipelines: dict, clips: list[Path], repeats: int) -> dict[str, float]:
    """Best-of-``repeats`` seconds of each pipeline over all clips, the pipelines alternating."""
    for fn in pipelines.values():
        fn(clips[0])  # warm-up
    best = {name: float("inf") for name in pipelines}
    for _ in range(repeats):
        for name, fn in pipelines.items():
            best[name] = min(best[name], seconds(fn, clips))
    return best


class StageClock:
    """Seconds spent in chosen functions while a pipeline runs: each ``(owner, name, label)`` of
    ``wraps`` (or ``clock.wrap(owner, name, label)``) replaces ``owner.name`` by a timed version until
    ``restore()``. A profile of the real code path,
    at the cost of one timer call per wrapped call."""

    def __init__(self, wraps=()):
        self.stages: dict[str, float] = {}
        self._undo: list = []
        self._nested: list[float] = []
        for owner, name, label in wraps:
            self.wrap(owner, name, label)

    def wrap(self, owner, name: str, label: str) -> None:
        original = getattr(owner, name)

        def timed(*args, **kwargs):
            self._nested.append(0.0)
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                elapsed = time.perf_counter() - start
                self.stages[label] = self.stages.get(label, 0.0) + elapsed - self._nested.pop()
                if self._nested:
                    self._nested[-1] += elapsed  # the caller's own time excludes this call

        setattr(owner, name, timed)
        self._undo.append((owner, name, original))

    def restore(self) -> None:
        for owner, name, original in reversed(self._undo):
            setattr(owner, name, original)
        self._undo.clear()

    def profile(self, fn, items) -> dict[str, float]:
        """Run ``fn`` over ``items`` once: each label's own seconds (a wrapped call inside another counts
        for its own label only) and the rest as "other"."""
        total = seconds(fn, items)
        self.restore()
        return {**self.stages, "other": total - sum(self.stages.values())}


class NumpyStandIn:
    """The ``numpy`` module, except for the functions ``overrides`` replaces (for :class:`StageClock`)."""

    def __init__(self, **overrides):
        self.__dict__.update(overrides)

    def __getattr__(self, name):
        return getattr(np, name)


def voxface_profile(clips: list[Path]) -> dict[str, float]:
    """Seconds per stage of one pass of ``voxface_pipeline`` over ``clips``."""
    from voxface.audio import voice

    stand_in = NumpyStandIn(maximum=np.maximum, log=np.log)
    clock = StageClock([
        (voice, "load_pcm16", "decode (int16 samples)"),
        (voice, "trim_silence", "VAD collector + concatenation"),
        (fe._SphinxFrames, "__init__", "frames: pre-emphasised signal"),
        (fe._SphinxFrames, "windowed", "frames: cut, window"),
        (fe.scipy.fft, "rfft", "FFT (float32, 1024 points)"),
        (fe, "_filter_bank_energies", "power + filter bank"),
        (stand_in, "maximum", "floor + log"), (stand_in, "log", "floor + log")])
    fe.np = stand_in
    try:
        return clock.profile(voxface_pipeline, clips)  # other: to float and back, normalisation, tiling
    finally:
        fe.np = np


def official_profile(clips: list[Path], official) -> dict[str, float]:
    """Seconds per stage of one pass of the released code over ``clips`` (its own functions, timed;
    the per-frame calls are left unwrapped, so that the timer does not weigh on them)."""
    preprocess, mfcc = sys.modules["official_preprocess"], sys.modules["mfcc"]
    frames = "per frame: pre-emphasis, window, FFT (float64), filter bank, log"
    clock = StageClock([
        (preprocess, "read_wave", "read (wave module)"),
        (preprocess, "write_wave", "temporary WAVs: write"),
        (preprocess.wavfile, "read", "temporary WAVs: read back"),
        (mfcc.MFCC, "sig2logspec", frames),
        (preprocess, "get_fbank", "normalisation + tiling")])
    return clock.profile(official, clips)  # other: the VAD collector, mostly


def print_profile(title: str, stages: dict[str, float]) -> None:
    total = sum(stages.values())
    print(f"\n{title} (one pass, {total * 1000:.0f} ms)")
    for label, s in stages.items():
        print(f"  {label:<62}{s * 1000:8.1f} ms {100 * s / total:5.1f}%")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print("load average before: %.2f %.2f %.2f" % os.getloadavg())
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    clips = sorted((shared_data_dir() / "cmp_reference" / "wav").glob("*.wav"))
    if not clips:
        raise SystemExit("skipped: cmp_reference clips not found (set VOXFACE_SHARED_DATA)")
    try:
        official = official_frontend()
    except VoxfaceError as err:
        raise SystemExit(f"skipped: {err}")
    audio_s = sum(sf.info(c).frames for c in clips) / SR
    with threadpool_limits(limits=1):
        worst = max(float(np.abs(voxface_pipeline(c) - official(c)).max()) for c in clips)
        print(f"one core, best of {args.repeats}, alternating; {len(clips)} cmp_reference clips, {audio_s:.1f} s "
              f"of audio; largest feature difference voxface vs released code: {worst:.1e} (all {len(clips)})")
        best = best_side_by_side({"official": official, "voxface": voxface_pipeline}, clips, args.repeats)
        print(f"{'pipeline':<12}{'ms':>9}{'x real time':>14}")
        for name, s in best.items():
            print(f"{name:<12}{s * 1000:>9.1f}{audio_s / s:>13.0f}x")
        ratio = best["official"] / best["voxface"]
        print(f"voxface / released code: {ratio:.2f}x faster (target {TARGET:.0f}x: "
              f"{'met' if ratio >= TARGET else 'NOT met'})")
        print_profile("voxface", voxface_profile(clips))
        print_profile("released code", official_profile(clips, official))
        speech = prepare_voice(clips[-1])
        fe.mel_delta(speech)  # warm-up: librosa compiles its kernels on first use
        elapsed = min(seconds(fe.mel_delta, [speech] * 3) / 3 for _ in range(args.repeats))
        print(f"\nmel_delta (the biometric-matching paper's input) on {len(speech) / SR:.1f} s of speech: "
              f"{len(speech) / SR / elapsed:.0f}x real time")
    print("\nload average after: %.2f %.2f %.2f" % os.getloadavg())


if __name__ == "__main__":
    main()
