"""How many processes train together, read from the launcher, and what each of them takes.

voxface trains data-parallel through Lightning (DDP). A run is launched by ``torchrun`` or SLURM
(``srun``), which start one process per device and describe the job in environment variables;
:func:`launch_from_environment` turns those into the Trainer's ``devices`` / ``num_nodes`` /
``strategy``. A plain ``python`` / ``voxface`` call is one process.

The rules that keep a distributed run equal to a single-process one:
- ``batch_size`` in a config is the *global* batch; each of the W processes loads
  ``batch_size / W`` (:func:`per_device_batch`). DDP averages gradients over processes, so one
  step sees the same gradient as one process with the whole batch, and the learning rate stays as
  configured. (Raising the global batch is a different experiment: scale ``lr`` linearly with it.)
- Datasets derive every random choice from the item index (``corpus/datasets.py``: triplets,
  speaker crops), so most orders need no shuffling. :func:`data_loader` computes the order one
  process would read (sequential, or one seeded permutation per epoch) and gives rank r the
  items r, r+W, ... of each global batch (:class:`GlobalBatchSampler`; Lightning keeps a sampler
  of that type as it is), so the W per-process batches of a step are exactly the items of the
  single-process batch.
- Batch normalisation sees the global batch: :class:`SyncBatchNorm` (installed by the Trainer of
  :mod:`.trainer` when W > 1) reduces each layer's batch sums over the processes, on CPUs (gloo)
  as on GPUs, so the statistics, the running averages and the gradients are the single process's.
- Only rank 0 writes files (:func:`is_writer`); every process computes the same results.

Per-item noise drawn inside a step (dropout, the GAN's input noise, the VAE's sample) comes from
each process's own generator, so a run with such noise is a run of the same method, not the same
numbers; with it switched off the weights match one process to rounding.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterator

import torch
import torch.distributed
from lightning.pytorch.plugins.layer_sync import LayerSync
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from ..errors import VoxfaceError


@dataclass(frozen=True)
class Launch:
    """Trainer settings of this job: ``devices`` (processes) per node, ``num_nodes``, ``strategy``.

    A process not started by a launcher trains on one device: several devices always go through
    torchrun or SLURM, so every process knows the world size before it builds its data loaders.
    """

    devices: int = 1
    num_nodes: int = 1
    strategy: str = "auto"

    @property
    def world_size(self) -> int:
        """Processes in the whole job."""
        return self.devices * self.num_nodes


def launch_from_environment(env: dict[str, str] | None = None) -> Launch:
    """The job as torchrun (``WORLD_SIZE``, ``LOCAL_WORLD_SIZE``) or SLURM (``SLURM_NTASKS``,
    ``SLURM_NTASKS_PER_NODE``, ``SLURM_NNODES``) describes it; one process otherwise."""
    env = os.environ if env is None else env
    if "LOCAL_WORLD_SIZE" in env and "WORLD_SIZE" in env:
        world, local = int(env["WORLD_SIZE"]), int(env["LOCAL_WORLD_SIZE"])
    elif int(env.get("SLURM_NTASKS", "1")) > 1 and env.get("SLURM_JOB_NAME") not in ("bash", "interactive"):
        world = int(env["SLURM_NTASKS"])
        local = int(env.get("SLURM_NTASKS_PER_NODE", "").split("(")[0] or world // int(env.get("SLURM_NNODES", "1")))
    else:
        return Launch()
    if world % local:
        raise VoxfaceError(f"the launcher reports {world} processes in all but {local} per node; "
                           "start the same number of processes on every node")
    return Launch(devices=local, num_nodes=world // local, strategy="ddp" if world > 1 else "auto")


def global_rank(env: dict[str, str] | None = None) -> int:
    """This process's rank in the job (0 when not launched by torchrun or SLURM)."""
    env = os.environ if env is None else env
    if "RANK" in env:
        return int(env["RANK"])
    return int(env["SLURM_PROCID"]) if launch_from_environment(env).world_size > 1 else 0


def per_device_batch(global_batch: int, world_size: int | None = None) -> int:
    """The batch each process loads so that all of them together make ``global_batch``."""
    world = launch_from_environment().world_size if world_size is None else world_size
    if global_batch % world:
        raise VoxfaceError(f"batch_size {global_batch} cannot be split evenly over {world} processes; "
                           f"set batch_size to a multiple of {world} (--set batch_size=...)")
    return global_batch // world


def is_writer() -> bool:
    """True in the one process that writes a run's files (rank 0; the only process of a plain run)."""
    return global_rank() == 0


SHUFFLES = (None, "torch")
"""``shuffle`` of :func:`data_loader` besides a seed: None keeps the dataset's order; "torch" draws
each epoch's permutation as a shuffling ``DataLoader`` does, from torch's global generator."""


class GlobalBatchSampler(DistributedSampler):
    """Rank ``rank``'s items of each global batch of the order one process would read.

    The order: ``range(n)`` (``shuffle`` None), a fresh permutation per epoch from a generator
    seeded once with ``shuffle`` (an int; as ``DataLoader(shuffle=True, generator=...)``), or from
    a seed drawn from torch's global generator ("torch"; as ``DataLoader(shuffle=True)``). Rank r
    takes positions r, r + W, ... of each batch of ``global_batch`` items. A last partial batch is
    dropped with ``drop_last``; with several processes it is cut to a multiple of W so that every
    process takes the same number of items.
    """

    def __init__(self, dataset: Dataset, global_batch: int, world: int, rank: int,
                 shuffle: int | str | None = None, drop_last: bool = False):
        super().__init__(dataset, num_replicas=world, rank=rank, shuffle=False)
        if shuffle not in SHUFFLES and not isinstance(shuffle, int):
            raise ValueError(f"shuffle must be a seed or one of {SHUFFLES}, got {shuffle!r}")
        self.global_batch, self.order, self.drop_last_batch = global_batch, shuffle, drop_last
        self.generator = torch.Generator().manual_seed(shuffle) if isinstance(shuffle, int) else None
        n = len(dataset)
        full, rest = divmod(n, global_batch)
        rest = 0 if drop_last else rest - rest % world if world > 1 else rest
        self.items = full * global_batch + rest

    def _order(self) -> list[int]:
        n = len(self.dataset)
        if self.order is None:
            return list(range(n))
        if self.generator is None:
            seed = int(torch.empty((), dtype=torch.int64).random_().item())
            return torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
        order = torch.randperm(n, generator=self.generator).tolist()
        torch.randperm(n, generator=self.generator)  # RandomSampler draws a second, empty, slice per epoch
        return order

    def __iter__(self) -> Iterator[int]:
        order = self._order()[:self.items]
        for start in range(0, self.items, self.global_batch):
            yield from order[start:start + self.global_batch][self.rank::self.num_replicas]

    def __len__(self) -> int:
        return self.items // self.num_replicas


def data_loader(dataset: Dataset, global_batch: int, shuffle: int | str | None = None, drop_last: bool = False,
                **kwargs) -> DataLoader:
    """This process's share of ``global_batch`` items per step, in the single-process order.

    Args:
        dataset: a map-style dataset.
        global_batch: items per step over all processes (a config's ``batch_size``).
        shuffle: None (the dataset's order), a seed, or "torch" (:class:`GlobalBatchSampler`).
        drop_last: drop a last partial batch.
        kwargs: more ``DataLoader`` arguments (``num_workers``).

    One process reads exactly what ``DataLoader(dataset, global_batch, shuffle=..., drop_last=...)``
    would; W processes read batches of ``global_batch / W`` whose union is that batch.
    """
    world = launch_from_environment().world_size
    batch = per_device_batch(global_batch, world)
    sampler = GlobalBatchSampler(dataset, global_batch, world, global_rank(), shuffle, drop_last)
    # a seeded order also seeds the workers' base seed, from the same generator, as DataLoader does
    return DataLoader(dataset, batch_size=batch, sampler=sampler, generator=sampler.generator, **kwargs)


class SyncBatchNorm(nn.modules.batchnorm._BatchNorm):
    """Batch normalisation over the batches of all processes together (channels in dim 1, any
    input rank; gloo and nccl alike). In eval mode, or outside a process group, it is the batch
    normalisation it replaced; it has that layer's state, so saved weights load into one."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and torch.distributed.is_initialized()):
            return super().forward(x)
        from torch.distributed.nn.functional import all_reduce

        c, dims = x.shape[1], [d for d in range(x.dim()) if d != 1]
        shape = [1, c] + [1] * (x.dim() - 2)
        # two passes, as one process's batch norm: the mean first, then the squared deviations from
        # it (E[x²] − mean² loses the variance to cancellation in float32 where |mean| >> std)
        total = all_reduce(torch.cat([x.sum(dims), x.new_tensor([x.numel() / c])]))  # differentiable
        count = total[c]
        mean = total[:c] / count
        centred = x - mean.view(shape)
        var = all_reduce((centred * centred).sum(dims)) / count
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                n = float(count)
                self.running_mean.mul_(1 - m).add_(m * mean)
                self.running_var.mul_(1 - m).add_(m * var * n / max(n - 1, 1.0))
        y = centred * torch.rsqrt(var.view(shape) + self.eps)
        return y * self.weight.view(shape) + self.bias.view(shape) if self.affine else y

    def _check_input_dim(self, x: torch.Tensor) -> None:
        if x.dim() < 2:
            raise ValueError(f"expected at least 2D input, got {x.dim()}D")


class SyncBatchNormLayers(LayerSync):
    """Lightning plugin that makes every batch normalisation of a module a :class:`SyncBatchNorm`
    in place (the same parameters, buffers and training mode); :meth:`revert` undoes it."""

    def apply(self, model: nn.Module) -> nn.Module:
        for layer in model.modules():
            if isinstance(layer, nn.modules.batchnorm._BatchNorm) and not isinstance(layer, SyncBatchNorm):
                layer._unsynced_class, layer.__class__ = type(layer), SyncBatchNorm
        return model

    def revert(self, model: nn.Module) -> nn.Module:
        for layer in model.modules():
            if isinstance(layer, SyncBatchNorm):
                layer.__class__ = layer.__dict__.pop("_unsynced_class")
        return model
