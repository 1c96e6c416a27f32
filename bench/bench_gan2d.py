"""Voice -> 2D face benchmarks: each generator's training epoch through voxface against a bare PyTorch
loop on the same networks and batches, side by side; generation images/s.

    .venv/bin/python bench/bench_gan2d.py --speaker-run runs/gan2d/speaker [--config configs/gan2d_generator_fast.yaml]
        [--epochs 3] [--rounds 3] [--set width=32 ...]

For each generator (VAE, C-GAN, RC-GAN) and each of ``--rounds`` rounds, alternating: ``--epochs``
epochs through voxface's skeleton (``gan2d.train_generator``: Lightning's Trainer, its CSV and
TensorBoard loggers, checkpoints, the data loader; the held-out evaluation is off, it is timed on its
own), then the same number through a bare loop (``for batch in loader: module.train_batch(batch,
optimisers, loss.backward)``) on a network initialised alike and the same loader. The first epoch of
each block is warm-up and not counted. Prints the median seconds per epoch of both, their ratio, the
whole voxface fit per epoch (Trainer set-up included), one held-out evaluation's seconds, and
generation throughput (images/s at batch 256 and one at a time). Say the machine's load beside the numbers.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback

from voxface.corpus.validate import check_corpus
from voxface.methods.gan2d import GENERATORS, TRAINING, Config, train_generator, training_loader
from voxface.methods.speaker_cnn import load_voice_embeddings
from voxface.models.registry import create
from voxface.reports.gan2d_progress import held_out_probe
from voxface.reports.voice_to_image import generate_faces
from voxface.runs.config import build, load_yaml, parse_overrides
from voxface.runs.folder import read_run_config
from voxface.runs.logs import setup_logging
from voxface.vision.face_embedding import create_face_embedder


class EpochTimer(Callback):
    """Seconds of each training epoch (from its start to its end, inside the Trainer's loop)."""

    def __init__(self) -> None:
        self.seconds: list[float] = []

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self.start = time.perf_counter()

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self.seconds.append(time.perf_counter() - self.start)


def voxface_epochs(config: Config, loader, run: Path) -> tuple[list[float], float]:
    """(seconds of each epoch inside the Trainer, the whole fit's seconds) of a fresh module."""
    L.seed_everything(config.seed)
    module = create(config.generator, TRAINING, config=config)
    timer = EpochTimer()
    start = time.perf_counter()
    train_generator(module, run, config, loader, (timer,), progress=False)
    return timer.seconds, time.perf_counter() - start


def bare_epochs(config: Config, loader) -> tuple[list[float], torch.nn.Module]:
    """Seconds of each of ``config.epochs`` epochs of a bare loop over ``loader``, and the generator."""
    L.seed_everything(config.seed)
    module = create(config.generator, TRAINING, config=config).train()
    optimizers = module.configure_optimizers()
    optimizers = list(optimizers) if isinstance(optimizers, tuple) else [optimizers]
    seconds = []
    for _ in range(config.epochs):
        start = time.perf_counter()
        for batch in loader:
            module.train_batch(batch, optimizers, lambda loss: loss.backward())
        seconds.append(time.perf_counter() - start)
    return seconds, module.generator


def generation_rates(generator: torch.nn.Module) -> tuple[float, float]:
    """Images/s of ``generator`` at batch 256 and one voice at a time."""
    generator.eval()
    voices = np.random.default_rng(0).random((512, 128), dtype=np.float32)
    generate_faces(generator, voices[:32])
    start = time.perf_counter()
    generate_faces(generator, voices)
    batched = len(voices) / (time.perf_counter() - start)
    start = time.perf_counter()
    for v in voices[:64]:
        generate_faces(generator, v[None])
    return batched, 64 / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--speaker-run", required=True)
    parser.add_argument("--config", default="configs/gan2d_generator_fast.yaml")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per block (the first is warm-up)")
    parser.add_argument("--rounds", type=int, default=3, help="voxface / bare blocks per generator")
    parser.add_argument("--generators", nargs="+", default=list(GENERATORS), choices=GENERATORS)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    args = parser.parse_args()
    setup_logging()
    corpus_dir = read_run_config(args.speaker_run)["corpus"]
    corpus = check_corpus(corpus_dir)
    voices = load_voice_embeddings(args.speaker_run)
    print(f"torch threads {torch.get_num_threads()}; corpus {corpus_dir}; {args.rounds} rounds of {args.epochs} "
          f"epochs (first of each not counted)")
    for generator in args.generators:
        config = build(Config, load_yaml(args.config), parse_overrides(args.set),
                       {"corpus": corpus_dir, "speaker_run": args.speaker_run, "generator": generator,
                        "epochs": args.epochs, "eval_every": 0, "checkpoint_every": 1})
        loader = training_loader(config, corpus, voices)
        ours, bare, whole = [], [], []
        for r in range(args.rounds):
            with tempfile.TemporaryDirectory() as tmp:
                epochs, seconds = voxface_epochs(config, loader, Path(tmp))
            ours += epochs[1:]
            whole.append(seconds / config.epochs)
            epochs, net = bare_epochs(config, loader)
            bare += epochs[1:]
        v, b = float(np.median(ours)), float(np.median(bare))
        print(f"{generator:6s} width {config.width}, {len(loader.dataset)} pairs, {len(loader)} batches of "
              f"{config.batch_size}: voxface {v:.3f} s/epoch ({1e3 * v / len(loader):.1f} ms/batch), bare loop "
              f"{b:.3f} s/epoch ({1e3 * b / len(loader):.1f} ms/batch), ratio {v / b:.3f}; whole voxface fit "
              f"{np.median(whole):.3f} s/epoch over {config.epochs} epochs (Trainer set-up included)")
        batched, single = generation_rates(net)
        print(f"{generator:6s} generation {batched:.0f} images/s (batch 256), {single:.0f} images/s (one at a time)")
    start = time.perf_counter()
    probe = held_out_probe(corpus, voices, config.seed, config.eval_per_identity, create_face_embedder("dlib"))
    built = time.perf_counter() - start
    start = time.perf_counter()
    probe.score(net)
    print(f"held-out evaluation ({len(probe.voices)} voices, dlib): probe built once in {built:.2f} s, "
          f"one evaluation {time.perf_counter() - start:.2f} s")


if __name__ == "__main__":
    main()
