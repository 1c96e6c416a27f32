"""Voice -> 2D face benchmarks: generator training time per epoch on the paper setting, images/s.

    .venv/bin/python bench/bench_gan2d.py --speaker-run runs/gan2d-paper/speaker [--epochs 2]

Times ``--epochs`` epochs of each generator (VAE, C-GAN, RC-GAN) on the speaker run's training
voices (the paper: batch 32, 5,000 epochs) and extrapolates to the paper's 5,000 epochs; measures
generation throughput (images/s, batch 256 and batch 1). (The FSDD real-voice accuracy is a command:
``voxface train speaker-cnn-fsdd``.)
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from voxface.methods.gan2d import Config as Gan2dConfig
from voxface.methods.gan2d import fit as train_gan2d
from voxface.methods.gan2d import GENERATOR
from voxface.predictors.bundle import read_network
from voxface.reports.voice_to_image import generate_faces
from voxface.runs.folder import read_run_config
from voxface.runs.logs import setup_logging

PAPER_EPOCHS = 5000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--speaker-run", required=True)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--width", type=int, default=32)
    args = parser.parse_args()
    setup_logging()
    corpus = read_run_config(args.speaker_run)["corpus"]
    print(f"torch threads {torch.get_num_threads()}; corpus {corpus}; width {args.width}")
    with tempfile.TemporaryDirectory() as tmp:
        for generator in ("vae", "cgan", "rcgan"):
            config = Gan2dConfig(corpus=corpus, speaker_run=args.speaker_run, generator=generator,
                                 epochs=args.epochs, width=args.width)
            start = time.perf_counter()
            summary = train_gan2d(config, Path(tmp) / generator, progress=False).metrics
            per_epoch = (time.perf_counter() - start) / args.epochs
            net = read_network(Path(tmp) / generator, GENERATOR)
            voices = np.random.default_rng(0).random((512, 128), dtype=np.float32)
            generate_faces(net, voices[:32])
            t = time.perf_counter()
            generate_faces(net, voices)
            batched = len(voices) / (time.perf_counter() - t)
            t = time.perf_counter()
            for v in voices[:64]:
                generate_faces(net, v[None])
            single = 64 / (time.perf_counter() - t)
            print(f"{generator:6s} {summary['training_pairs']} pairs: {per_epoch:.2f} s/epoch -> "
                  f"{PAPER_EPOCHS} epochs ≈ {per_epoch * PAPER_EPOCHS / 3600:.1f} h; "
                  f"generation {batched:.0f} images/s (batch 256), {single:.0f} images/s (one at a time)")


if __name__ == "__main__":
    main()
