"""Distributed training: launcher settings, the per-process share of a batch, and two CPU (gloo)
processes training each of the six methods to the weights one process reaches at the same global
batch, with only rank 0 writing the run's files.

Every method is trained with its per-item noise switched off (dropout, the GAN's input noise) and,
for CMP unsupervised, without the two losses that pair items across the batch (the mesh triplet's
negatives and PKT's similarity distributions): those depend on how the batch is split
(runs/distributed.py, docs/scale.md). Weights agree to rounding, except the few that Adam moves by
the sign of a gradient that is itself rounding noise (:data:`SETTINGS`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from voxface.cli import main
from voxface.corpus.datasets import Triplets
from voxface.errors import VoxfaceError
from voxface.methods.expert import EXPERT
from voxface.methods.speaker import ENCODER
from voxface.models.image_to_3d import ImageTo3D
from voxface.models.voice_encoders import CMPVoiceEncoder
from voxface.predictors.bundle import FILES, read_bundle, write_bundle
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


@pytest.mark.parametrize("shuffle, drop_last", [(None, False), (7, False), ("torch", True)])
def test_every_order_is_split_into_the_ranks_shares_of_each_global_batch(monkeypatch, shuffle, drop_last):
    data = TensorDataset(torch.arange(22))
    for name in ("WORLD_SIZE", "LOCAL_WORLD_SIZE", "RANK"):
        monkeypatch.delenv(name, raising=False)
    torch.manual_seed(3)
    expected = DataLoader(data, 8, shuffle=shuffle is not None, drop_last=drop_last,
                          generator=torch.Generator().manual_seed(shuffle) if isinstance(shuffle, int) else None)
    expected = [b[0].tolist() for _ in range(2) for b in expected]  # two epochs: fresh permutations
    torch.manual_seed(3)
    loader = data_loader(data, 8, shuffle, drop_last)
    assert [b[0].tolist() for _ in range(2) for b in loader] == expected
    monkeypatch.setenv("WORLD_SIZE", "2"), monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    shares = []
    for rank in range(2):
        monkeypatch.setenv("RANK", str(rank))
        torch.manual_seed(3)
        loader = data_loader(data, 8, shuffle, drop_last)
        shares.append([b[0].tolist() for _ in range(2) for b in loader])
    merged = [sorted(a + b) for a, b in zip(*shares)]
    # the last partial batch of 6 splits evenly; one of 5 or 7 would lose an item to stay even
    assert merged == [sorted(b) for b in expected]


SETTINGS = {
    "speaker": dict(max_steps=1, batch_size=8, val_every=1, workers=1),
    "supervised": dict(max_steps=8, batch_size=8, val_every=4, embedding_bank=2, workers=1, dropout=0.0),
    "expert": dict(train_images=24, test_images=8, render_size=32, input_size=32, width=0.25, last_channel=16,
                   dropout=0.0, max_steps=1, batch_size=8, val_every=1),
    "unsupervised": dict(generator_base=2, critic_base=4, embedding_bank=2, max_steps=1, batch_size=8, val_every=1,
                         grid_every=1, noise=0.0, triplet_weight=0.0, distill_weight=0.0),
    "speaker-cnn": dict(setting="cmp", test_per_identity=0, val_per_identity=2, max_epochs=2, batch_size=8,
                        channels=4, dropout=0.0),
    "gan2d": dict(generator="rcgan", epochs=1, batch_size=28, width=4),
}
"""Each method's tiny settings, the same for one process and two. The methods with batch
normalisation train one step (one iteration): Adam moves every weight by about lr·sign(gradient),
and batch normalisation makes some gradients rounding noise whose sign one process and two draw
differently: a bias right before it (its true gradient is zero), and in a deep stack of them (the
image-to-3D student, about 50) rounding amplified layer by layer towards the input, so that the
smallest gradients of the early layers change sign. The weights those flips move change every
later gradient a little, so after a few steps all weights differ by rounding-sized amounts,
amplified. After one step the flips are the only difference."""
FLIPS_ALLOWED = 0.02
"""Share of a batch-normalised network's weights whose first Adam step may flip. How many flip depends
on the CPU's rounding: the unsupervised generator's were 225 and 440 of 43,972 on two machines (0.5%
and 1.0%); the gradient-scrambling bug of docs/scale.md flipped 21,230 (48%)."""
EXACT = ("supervised", "speaker-cnn")
"""The methods without batch normalisation: their weights agree to 1e-5 after several steps."""
SAVED = {"speaker": "voice-encoder", "supervised": "voice-to-3d", "expert": "image-to-3d-expert",
         "unsupervised": "voice-image-3d", "speaker-cnn": "speaker-cnn", "gan2d": "generator-2d"}
"""What each method saves (a kind of :mod:`voxface.predictors.bundle`)."""


def _train_arguments(method: str, run: Path, parts: Path, corpus: Path) -> list[str]:
    needs = {"supervised": ["--speaker-run", str(parts / "speaker")],
             "unsupervised": ["--speaker-run", str(parts / "speaker"), "--set", f"expert_run={parts / 'expert'}"],
             "gan2d": ["--speaker-run", str(parts / "speaker-cnn")]}
    settings = [f"--set={k}={v}" for k, v in SETTINGS[method].items()]
    return ["train", method, "--run", str(run), "--corpus", str(corpus), "--quiet", *needs.get(method, []), *settings]


@pytest.fixture(scope="module")
def ddp(tmp_path_factory):
    """One two-process gloo launch that trains the six methods in turn (one process group), on a
    small corpus whose training sets split evenly over two processes; what each rank wrote."""
    from voxface.corpus.synthetic import SynthConfig, generate_corpus

    root = tmp_path_factory.mktemp("ddp")
    corpus = root / "corpus"
    generate_corpus(corpus, SynthConfig(identities=10, utterances=4, images=2, seed=5, workers=1,
                                        duration_s=(1.2, 1.25)), progress=False)
    parts = root / "parts"
    from voxface.corpus.data import utterance_set
    from voxface.corpus.datasets import CROP_FRAMES
    from voxface.corpus.format import Corpus

    torch.manual_seed(0)
    encoder, voices = CMPVoiceEncoder().train(), Corpus(corpus)
    with torch.no_grad():  # batch-norm statistics of the corpus's voices: embeddings that tell voices apart
        for f in utterance_set(voices, voices.identity_ids(), "cmp_logmel", progress=False).features:
            encoder(torch.from_numpy(np.ascontiguousarray(f[:CROP_FRAMES].T))[None].float())
    write_bundle(parts / "speaker" / FILES[ENCODER], ENCODER, {"network": encoder.eval()}, n_speakers=8)
    model = voices.model
    write_bundle(parts / "expert" / FILES[EXPERT], EXPERT, {"network": ImageTo3D(
        model.n_shape, model.n_expression, width=0.25, last_channel=16, dropout=0.0, input_size=32)}, model=None)
    assert main(_train_arguments("speaker-cnn", parts / "speaker-cnn", parts, corpus)) == 0  # what gan2d reads
    commands = {m: _train_arguments(m, root / "ddp" / m, parts, corpus) for m in SETTINGS}
    (root / "commands.json").write_text(json.dumps(commands))
    logs = root / "logs"
    logs.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE")}
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                           str(Path(__file__).with_name("ddp_writer_probe.py")), str(root / "commands.json"), str(logs)],
                          capture_output=True, text=True, timeout=600, env={**env, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    writes = {rank: (logs / f"rank{rank}.txt").read_text().splitlines() for rank in (0, 1)}
    return root, corpus, parts, logs, writes


def _weights(run: Path, kind: str) -> dict[str, torch.Tensor]:
    """The weights of the networks a method trained (not the frozen voice encoder it builds on)."""
    networks, _ = read_bundle(run, kind)
    return {f"{name}.{k}": v for name, net in networks.items() if net is not None and not (name == "encoder" and kind != ENCODER)
            for k, v in net.state_dict().items()}


@pytest.mark.slow
@pytest.mark.parametrize("method", list(SETTINGS))
def test_two_gloo_processes_train_each_method_as_one_process_and_only_rank_0_writes(ddp, method):
    root, corpus, parts, logs, writes = ddp
    statuses = [(logs / f"{method}.rank{rank}").read_text() for rank in (0, 1)]
    assert statuses == ["0", "0"], statuses
    single = root / "single" / method
    assert main(_train_arguments(method, single, parts, corpus)) == 0
    distributed = root / "ddp" / method
    one, two = _weights(single, SAVED[method]), _weights(distributed, SAVED[method])
    assert one.keys() == two.keys()
    for network in {k.split(".")[0] for k in one}:
        _assert_trained_alike(method, network, {k: v for k, v in one.items() if k.startswith(f"{network}.")}, two)

    events = {rank: [tuple(line.split(" ", 1)) for line in lines if line.split(" ", 1)[1].startswith(f"{distributed}/")]
              for rank, lines in writes.items()}
    assert events[0] and events[1] == []  # rank 1 wrote nothing in the run folder
    for name in (FILES[SAVED[method]], "metrics.json", "config.yaml"):
        assert events[0].count(("replace", str(distributed / name))) == 1, name  # written once
    assert _files(distributed) == _files(single)


def _assert_trained_alike(method: str, network: str, one: dict[str, torch.Tensor], two: dict[str, torch.Tensor]) -> None:
    """The weights of ``network`` after one-process (``one``) and two-process (``two``) training agree:
    all to 1e-5 for the :data:`EXACT` methods, all but :data:`FLIPS_ALLOWED` otherwise (:data:`SETTINGS`)."""
    apart = sum(int(((one[k].double() - two[k].double()).abs() > 1e-5 * max(1.0, float(one[k].abs().max()))).sum())
                for k in one)
    allowed = 0 if method in EXACT else FLIPS_ALLOWED * sum(v.numel() for v in one.values())
    assert apart <= allowed, f"{network}: {apart} weights differ"


def test_synchronised_batch_norm_is_one_process_batch_norm_even_far_from_zero(tmp_path):
    """The batch norm DDP runs use (:class:`SyncBatchNorm`) in a process group of one: outputs,
    gradients and running statistics of torch's own, on features whose mean is 600 standard
    deviations from zero (where E[x²] − mean² in float32 has no variance left)."""
    from torch import nn

    from voxface.runs.distributed import SyncBatchNormLayers

    torch.distributed.init_process_group("gloo", store=torch.distributed.FileStore(str(tmp_path / "store"), 1),
                                         rank=0, world_size=1)
    try:
        torch.manual_seed(0)
        x = 30 + 0.05 * torch.randn(16, 4, 5, 5)
        weights = torch.randn(16, 4, 5, 5)
        plain = nn.BatchNorm2d(4)
        synced = SyncBatchNormLayers().apply(nn.Sequential(nn.BatchNorm2d(4)))[0]
        outputs, grads = [], []
        for layer in (plain, synced):
            inputs = x.clone().requires_grad_()
            out = layer(inputs)
            (out * weights).sum().backward()
            outputs.append(out.detach()), grads.append(inputs.grad)
        np.testing.assert_allclose(outputs[1], outputs[0], atol=1e-3)
        np.testing.assert_allclose(grads[1], grads[0], rtol=1e-3, atol=1e-3 * float(grads[0].abs().max()))
        np.testing.assert_allclose(synced.running_var, plain.running_var, rtol=1e-3)
        np.testing.assert_allclose(synced.running_mean, plain.running_mean, rtol=1e-6)
    finally:
        torch.distributed.destroy_process_group()


def _files(run: Path) -> list[Path]:
    """The files of a run folder besides its checkpoints and TensorBoard events."""
    return sorted(p.relative_to(run) for p in run.rglob("*") if p.is_file() and not {"checkpoints", "tb"} & set(p.parts))


@pytest.mark.slow
def test_another_global_batch_trains_measurably_different_weights(ddp):
    """What makes the equality above worth asserting: a run whose batch is the per-process one
    (the per-process batch taken for the global one) lands elsewhere."""
    root, corpus, parts, _, _ = ddp
    half = _train_arguments("supervised", root / "half_batch", parts, corpus) + ["--set=batch_size=4"]
    assert main(half) == 0
    one = _weights(root / "ddp" / "supervised", SAVED["supervised"])
    other = _weights(root / "half_batch", SAVED["supervised"])
    assert max(float((one[k] - other[k]).abs().max()) for k in one) > 1e-4
