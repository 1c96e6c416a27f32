"""Are synthetic speakers separable by a real pretrained speaker encoder?

Synthesises speakers from the geometry-free voice prior (half men, half women), embeds every
utterance with Resemblyzer and prints the speaker-verification EER over all utterance pairs
(overall and within each gender; target <= 15 %), the synthesis speed (x real time, one core) and,
as a check of the audio path, the same EER on the real Free Spoken Digit Dataset speakers.
A few example WAVs are written to --out so that a person can listen.

    .venv/bin/python bench/check_voice_realism.py [--speakers 40] [--utterances 6] [--seed 0] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from voxface.audio.speaker_encoder import SAMPLE_RATE, ResemblyzerEncoder
from voxface.audio.synth import sample_conditions, sample_voice_params, synthesize
from voxface.evaluate.speaker import verification_eer
from voxface.paths import shared_data_dir
from voxface.runs.atomic import atomic_path


def synthetic_speakers(n_speakers: int, n_utterances: int, seed: int) -> tuple[list, np.ndarray, np.ndarray, float]:
    """Waves, speaker ids (N,), genders (N,) and the synthesis time in seconds."""
    rng = np.random.default_rng(seed)
    waves, ids, genders, seconds = [], [], [], 0.0
    for speaker in range(n_speakers):
        gender = "male" if speaker < n_speakers // 2 else "female"
        voice = sample_voice_params(rng, gender)
        for _ in range(n_utterances):
            conditions = sample_conditions(rng)
            start = time.perf_counter()
            waves.append(synthesize(voice, conditions, SAMPLE_RATE))
            seconds += time.perf_counter() - start
            ids.append(speaker)
            genders.append(gender)
    return waves, np.array(ids), np.array(genders), seconds


def fsdd_speakers(per_speaker: int, seed: int) -> tuple[list, np.ndarray] | None:
    """Random recordings of each FSDD speaker resampled to 16 kHz, or None when the data is absent."""
    import librosa

    root = shared_data_dir() / "fsdd"
    if not (root / "speakers.json").is_file():
        return None
    rng = np.random.default_rng(seed)
    waves, ids = [], []
    for speaker in sorted(json.loads((root / "speakers.json").read_text())):
        files = sorted((root / "recordings").glob(f"*_{speaker}_*.wav"))
        for path in rng.choice(files, size=min(per_speaker, len(files)), replace=False):
            waves.append(librosa.load(path, sr=SAMPLE_RATE)[0])
            ids.append(speaker)
    return waves, np.array(ids)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--speakers", type=int, default=40)
    parser.add_argument("--utterances", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fsdd-per-speaker", type=int, default=40)
    parser.add_argument("--out", type=Path, default=None, help="folder for example WAVs (default: a temp dir)")
    args = parser.parse_args()

    warm_up = np.random.default_rng(0)  # compiles the numba kernels outside the timing
    synthesize(sample_voice_params(warm_up, "male"), sample_conditions(warm_up))
    waves, ids, genders, seconds = synthetic_speakers(args.speakers, args.utterances, args.seed)
    audio_s = sum(w.shape[0] for w in waves) / SAMPLE_RATE
    print(f"synthesis: {len(waves)} utterances, {audio_s:.1f} s of audio in {seconds:.2f} s "
          f"= {audio_s / seconds:.0f}x real time (one core)")

    encoder = ResemblyzerEncoder()
    start = time.perf_counter()
    embeddings = encoder.embed(waves)
    print(f"resemblyzer: {len(waves)} utterances embedded in {time.perf_counter() - start:.1f} s")
    print(f"synthetic EER, all pairs:       {100 * verification_eer(embeddings, ids):5.2f} %  (target <= 15 %)")
    for gender in ("male", "female"):
        keep = genders == gender
        print(f"synthetic EER, {gender:6s} pairs only: {100 * verification_eer(embeddings[keep], ids[keep]):5.2f} %")

    real = fsdd_speakers(args.fsdd_per_speaker, args.seed)
    if real is None:
        print(f"FSDD EER: skipped, no {shared_data_dir() / 'fsdd'}")
    else:
        real_waves, real_ids = real
        eer = verification_eer(encoder.embed(real_waves), real_ids)
        print(f"FSDD EER (real, {len(set(real_ids))} speakers x {args.fsdd_per_speaker}): {100 * eer:5.2f} %")

    out = args.out or Path(tempfile.mkdtemp(prefix="voxface_voices_"))
    for speaker in range(0, args.speakers, max(1, args.speakers // 4)):
        for k, index in enumerate(np.flatnonzero(ids == speaker)[:2]):
            with atomic_path(out / f"speaker{speaker:03d}_{genders[index]}_{k}.wav") as tmp:
                sf.write(tmp, waves[index], SAMPLE_RATE)
    print(f"example WAVs: {out}")


if __name__ == "__main__":
    main()
