"""Synthetic corpus generation speed: 100 identities x 10 utterances x 5 images (the target's size;
the default corpus has 40 images per identity: --images 40).

    python bench/bench_synth.py [--identities 100] [--workers 2]

Prints wall time against the 60 s target, per-stage costs measured in this process (voice
synthesis, face rendering), and the corpus size on disk.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from voxface.audio.synth import sample_conditions, sample_voice_params, synthesize
from voxface.corpus.face_images import render_face_image, sample_appearance
from voxface.corpus.synthetic import SynthConfig, generate_corpus
from voxface.face3d.loading import load_morphable_model

TARGET_S = 60.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--identities", type=int, default=100)
    parser.add_argument("--utterances", type=int, default=10)
    parser.add_argument("--images", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    voice = sample_voice_params(rng, "f")
    start = time.perf_counter()
    seconds = sum(len(synthesize(voice, sample_conditions(rng))) / 16000 for _ in range(20))
    synth_rt = seconds / (time.perf_counter() - start)
    model = load_morphable_model("builtin")
    z = np.zeros(model.n_shape, np.float32)
    render_face_image(model, z, sample_appearance(rng, model.n_expression), 120)  # warm-up (GL context)
    start = time.perf_counter()
    for _ in range(50):
        render_face_image(model, z, sample_appearance(rng, model.n_expression), 120)
    render_ms = 1000 * (time.perf_counter() - start) / 50

    out = Path(tempfile.mkdtemp()) / "corpus"
    config = SynthConfig(identities=args.identities, utterances=args.utterances, images=args.images,
                         workers=args.workers)
    start = time.perf_counter()
    generate_corpus(out, config, progress=False)
    wall = time.perf_counter() - start
    size_mb = sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) / 2**20
    shutil.rmtree(out.parent)

    print(f"voice synthesis: {synth_rt:.0f}x real time (one process)")
    print(f"face render 120x120: {render_ms:.1f} ms per image (one process)")
    print(f"corpus {args.identities} ids x {args.utterances} utt x {args.images} images, {args.workers} workers: "
          f"{wall:.1f} s (target <= {TARGET_S:.0f} s, ratio {wall / TARGET_S:.2f}); {size_mb:.0f} MB on disk")


if __name__ == "__main__":
    main()
