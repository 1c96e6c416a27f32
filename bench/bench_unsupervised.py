"""CMP unsupervised speed: training iterations per second at batch 64, and what 50,000 would take.

    python bench/bench_unsupervised.py [--threads 2] [--iterations 5] [--sizes fast,paper]

Each size is timed twice side by side: with channels-last convolutions (what training uses) and with
the default contiguous layout, and the ratio is printed.

One iteration = a discriminator step and a generator + student step (Eq. 7 with PKT), run by
Lightning exactly as ``voxface train unsupervised`` does, on random inputs (speed does not depend on
the data). Sizes: "fast" = the fast default (generator/trunk base 16, student and expert MobileNetV2
width 0.25, 128 features, 64×64 input); "paper" = CMP's (base 64, width 1.0, 1280 features, 120×120).
On a CUDA GPU the runs use mixed precision (bf16 where supported). The paper reports ~16 h for
50,000 iterations on one RTX 2080.
"""

from __future__ import annotations

import argparse
import time

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset

from voxface.face3d.loading import load_morphable_model
from voxface.losses.distillation import create_distiller
from voxface.methods.unsupervised import OPTIMISERS_PER_ITERATION, UnsupervisedCMP
from voxface.models.cmp_gan import FaceCritic, FaceGenerator
from voxface.models.image_to_3d import ImageTo3D

BATCH = 64
PAPER_ITERATIONS, PAPER_HOURS = 50_000, 16.0
SIZES = {"fast": dict(base=16, norm="batch", width=0.25, last_channel=128, input_size=64),
         "paper": dict(base=64, norm="none", width=1.0, last_channel=1280, input_size=120)}


class RandomBatches(Dataset):
    """Random pairs as :class:`voxface.methods.unsupervised.VoiceFaceBatches` yields them."""

    def __init__(self, n_items: int, n_identities: int, n_shape: int):
        self.n, self.ids, self.k = n_items, n_identities, n_shape

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        g = torch.Generator().manual_seed(i)
        return {"voice": torch.randn(2, 64, generator=g), "voice_identity": torch.randint(self.ids, (), generator=g),
                "face": torch.rand(2, 3, 64, 64, generator=g) * 2 - 1,
                "face_identity": torch.randint(self.ids, (2,), generator=g), "shape": torch.randn(self.k, generator=g)}


class Timer(L.Callback):
    def __init__(self):
        self.starts = []

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        self.starts.append(time.perf_counter())


def iterations_per_second(size: str, iterations: int, channels_last: bool) -> float:
    s = SIZES[size]
    model = load_morphable_model("builtin")
    expert = ImageTo3D(model.n_shape, model.n_expression, s["width"], s["last_channel"], input_size=s["input_size"])
    student = ImageTo3D(**expert.arch_kwargs)
    dims = expert.distilled_feature_sizes()
    distiller, weight = create_distiller("pkt", dims, dims)
    module = UnsupervisedCMP(FaceGenerator(64, s["base"], s["norm"]), FaceCritic(80, s["base"]), model, student,
                             expert, distiller, distill_weight=weight, channels_last=channels_last)
    timer = Timer()
    gpu = torch.cuda.is_available()
    precision = ("bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed") if gpu else "32-true"
    trainer = L.Trainer(max_steps=OPTIMISERS_PER_ITERATION * (iterations + 1), logger=False, callbacks=[timer],
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                        precision=precision, limit_val_batches=0)
    trainer.fit(module, DataLoader(RandomBatches(BATCH // 2 * (iterations + 1), 80, model.n_shape),
                                   batch_size=BATCH // 2))
    if gpu:
        torch.cuda.synchronize()
    end = time.perf_counter()
    return iterations / (end - timer.starts[1])  # the first iteration is warm-up


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument("--iterations", type=int, default=5, help="timed iterations per size (default 5)")
    parser.add_argument("--sizes", default="fast,paper", help="comma-separated: fast, paper")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else f"CPU, {args.threads} threads"
    print(f"device: {device}; batch {BATCH}; paper: {PAPER_ITERATIONS} iterations in ~{PAPER_HOURS:.0f} h "
          f"({PAPER_ITERATIONS / PAPER_HOURS / 3600:.2f} it/s on an RTX 2080)")
    for size in args.sizes.split(","):
        rates = {layout: iterations_per_second(size, args.iterations, layout == "channels-last")
                 for layout in ("channels-last", "contiguous")}
        for layout, rate in rates.items():
            hours = PAPER_ITERATIONS / rate / 3600
            print(f"{size:6s} {layout:13s} {rate:7.3f} iterations/s  -> 50,000 iterations: {hours:8.1f} h "
                  f"({hours / PAPER_HOURS:.2f}x the paper's 16 h)")
        print(f"{size:6s} channels-last / contiguous speed: {rates['channels-last'] / rates['contiguous']:.2f}x")


if __name__ == "__main__":
    main()
