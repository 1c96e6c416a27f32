"""Distributed training: launcher settings, the per-process share of a batch, and a 2-process CPU
(gloo) run of the supervised method that must equal a single-process run with the same global batch."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from voxface.corpus.datasets import Triplets
from voxface.errors import VoxfaceError
from voxface.methods.speaker import save_encoder
from voxface.methods.supervised import Config as SupervisedConfig
from voxface.methods.supervised import fit as train_supervised
from voxface.models.voice_encoders import CMPVoiceEncoder
from voxface.predictors.voice_to_3d import VoiceTo3D
from voxface.runs.distributed import Launch, data_loader, global_rank, launch_from_environment, per_device_batch


def test_launch_settings_follow_torchrun_and_slurm():
    assert launch_from_environment({}) == Launch(devices=1, num_nodes=1, strategy="auto")
    torchrun = {"WORLD_SIZE": "8", "LOCAL_WORLD_SIZE": "4", "RANK": "5"}
    assert launch_from_environment(torchrun) == Launch(devices=4, num_nodes=2, strategy="ddp")
    assert global_rank(torchrun) == 5
    slurm = {"SLURM_NTASKS": "6", "SLURM_NTASKS_PER_NODE": "3", "SLURM_NNODES": "2", "SLURM_PROCID": "4",
             "SLURM_JOB_NAME": "train"}
    assert launch_from_environment(slurm) == Launch(devices=3, num_nodes=2, strategy="ddp")
    assert global_rank(slurm) == 4
    assert launch_from_environment({**slurm, "SLURM_JOB_NAME": "bash"}).world_size == 1  # interactive shell
    with pytest.raises(VoxfaceError, match="per node"):
        launch_from_environment({"WORLD_SIZE": "5", "LOCAL_WORLD_SIZE": "2"})


def test_per_device_batch_splits_the_global_batch_or_says_how_to_fix_it():
    assert per_device_batch(64, 4) == 16 and per_device_batch(64, 1) == 64
    with pytest.raises(VoxfaceError, match="multiple of 3"):
        per_device_batch(64, 3)


def test_the_ranks_batches_of_a_step_are_the_single_process_batch(monkeypatch):
    rng = np.random.default_rng(0)
    features = [rng.normal(size=(5,)).astype(np.float32) for _ in range(30)]
    data = Triplets(features, np.repeat(np.arange(10), 3), rng.normal(size=(10, 4)), items_per_epoch=48, crop=None)
    single = list(data_loader(data, 12))
    for step in range(len(single)):
        shares = []
        for rank in range(4):
            monkeypatch.setenv("WORLD_SIZE", "4"), monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")
            monkeypatch.setenv("RANK", str(rank))
            shares.append(list(data_loader(data, 12))[step]["features"])
        merged = torch.cat(shares)
        assert merged.shape == single[step]["features"].shape
        # the same items, as multisets of rows
        assert sorted(map(tuple, merged.flatten(1).tolist())) == sorted(map(tuple, single[step]["features"].flatten(1).tolist()))


@pytest.mark.slow
def test_two_gloo_processes_train_the_same_regressor_as_one(tiny_corpus_dir, tmp_path):
    torch.manual_seed(0)
    save_encoder(tmp_path / "speaker" / "encoder.pt", CMPVoiceEncoder().eval(), n_speakers=12)
    settings = dict(max_steps=16, batch_size=8, val_every=8, embedding_bank=3, workers=1, dropout=0.0)
    base = SupervisedConfig(corpus=str(tiny_corpus_dir), speaker_run=str(tmp_path / "speaker"), **settings)
    train_supervised(base, tmp_path / "single", progress=False)
    wrong = SupervisedConfig(**{**base.__dict__, "batch_size": 4})  # the per-process batch taken as global
    train_supervised(wrong, tmp_path / "half_batch", progress=False)

    overrides = [f"--set={k}={v}" for k, v in settings.items()]
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
               "-m", "voxface.cli", "--", "train", "supervised", "--run", str(tmp_path / "ddp"),
               "--corpus", str(tiny_corpus_dir), "--speaker-run", str(tmp_path / "speaker"), "--quiet", *overrides]
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE")}
    done = subprocess.run(command, capture_output=True, text=True, timeout=240, env={**env, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("supervised: run folder") == 2  # both ranks finished

    weights = {name: VoiceTo3D.load(tmp_path / name).regressor.head.weight.detach()
               for name in ("single", "ddp", "half_batch")}
    moved = (weights["single"] - weights["half_batch"]).abs().max()
    assert (weights["ddp"] - weights["single"]).abs().max() < 1e-5
    assert moved > 1e-4  # a run with another global batch lands measurably elsewhere
