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
  speaker crops), so the order needs no shuffling. :func:`data_loader` gives each process a
  ``DistributedSampler`` over the sequential order (rank r takes items r, r+W, ...; Lightning
  would otherwise insert a *shuffling* one), so the W per-process batches of a step are exactly
  the items of the single-process batch.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

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


def data_loader(dataset: Dataset, global_batch: int, **kwargs) -> DataLoader:
    """This process's share of ``global_batch`` items per step, in the single-process order.

    One process: a plain sequential loader. W processes: batches of ``global_batch / W`` drawn by a
    non-shuffling ``DistributedSampler`` (Lightning keeps a sampler of that type as it is).
    """
    world = launch_from_environment().world_size
    batch = per_device_batch(global_batch, world)
    if world == 1:
        return DataLoader(dataset, batch_size=batch, **kwargs)
    sampler = DistributedSampler(dataset, num_replicas=world, rank=global_rank(), shuffle=False)
    return DataLoader(dataset, batch_size=batch, sampler=sampler, **kwargs)
