"""Voice -> 2D face training: the matching-aware discriminator's mismatched pairs, the projection
discriminator, one step shared by Lightning and a bare loop, and the periodic held-out evaluation."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch

from voxface.methods.gan2d import ConditionalGANTraining, VAETraining, mismatched_rows
from voxface.models.biometric_gan2d import ConditionalDiscriminator


def test_mismatched_rows_are_other_identities_voices():
    identity = torch.tensor([0, 0, 1, 2, 2, 2, 1, 0])
    for seed in range(20):
        wrong = mismatched_rows(identity, torch.Generator().manual_seed(seed))
        assert (wrong >= 0).all() and (identity[wrong] != identity).all()
    # over many draws every row of another identity is chosen for row 0
    drawn = {int(mismatched_rows(identity, torch.Generator().manual_seed(s))[0]) for s in range(200)}
    assert drawn == {2, 3, 4, 5, 6}
    # a batch of one identity has no mismatched voice
    assert (mismatched_rows(torch.tensor([4, 4, 4])) == -1).all()


def test_only_the_projection_discriminator_can_tell_which_voice_an_image_matches():
    """The paper's concat discriminator is additively separable in (image, voice): the difference of
    its logits for two images is the same whatever the voice. The projection one's is not."""
    torch.manual_seed(0)
    images, voices = torch.rand(2, 3, 64, 64), torch.rand(2, 128)
    for conditioning, separable in (("concat", True), ("projection", False)):
        d = ConditionalDiscriminator(width=4, conditioning=conditioning).eval()
        with torch.no_grad():
            gaps = [float(d(images[:1], v[None]) - d(images[1:], v[None])) for v in voices]
        assert (abs(gaps[0] - gaps[1]) < 1e-5) == separable
    d = ConditionalDiscriminator(width=4, conditioning="projection").eval()
    assert torch.allclose(d(images, 3 * voices), d(images, voices), atol=1e-5)  # the voice is normalised
    with pytest.raises(ValueError, match="conditioning"):
        ConditionalDiscriminator(width=4, conditioning="late")


def _batch(n=8):
    g = torch.Generator().manual_seed(1)
    return torch.rand(n, 128, generator=g), torch.rand(n, 3, 64, 64, generator=g), torch.arange(n) % 3


@pytest.mark.parametrize("mismatch_weight, augment", [(0.0, "none"), (1.0, "color,translation,cutout")])
def test_gan_step_trains_both_networks_and_reports_the_mismatch_term(mismatch_weight, augment):
    torch.manual_seed(0)
    module = ConditionalGANTraining(width=4, l1_weight=10.0, discriminator="projection",
                                    mismatch_weight=mismatch_weight, augment=augment)
    before = [p.detach().clone() for p in (*module.generator.parameters(), *module.discriminator.parameters())]
    terms = module.train_batch(_batch(), module.configure_optimizers(), lambda loss: loss.backward())
    after = [p.detach() for p in (*module.generator.parameters(), *module.discriminator.parameters())]
    assert all(not torch.equal(a, b) for a, b in zip(before, after) if a.dim() > 1)
    assert ("d_mismatch" in terms) == (mismatch_weight > 0)
    assert all(t.requires_grad is False for t in terms.values())


def test_vae_step_lowers_its_loss_on_a_repeated_batch():
    torch.manual_seed(0)
    module = VAETraining(width=4)
    opts = [module.configure_optimizers()]
    batch = _batch()
    losses = [float(module.train_batch(batch, opts, lambda loss: loss.backward())["loss"]) for _ in range(20)]
    assert losses[-1] < losses[0]


class ConstantProbe:
    """Stands for a held-out probe: scores that grow with each call."""

    def __init__(self):
        self.calls = 0

    def __call__(self, module):
        self.calls += 1
        return {"identity_accuracy": 0.1 * self.calls, "PSNR": 10.0 + self.calls}


def test_periodic_evaluation_writes_its_columns_to_metrics_csv(tmp_path):
    from voxface.runs.config import TrainingSettings
    from voxface.runs.trainer import PeriodicEvaluation, fit_module
    from voxface.runs.distributed import data_loader
    from torch.utils.data import TensorDataset

    torch.manual_seed(0)
    module = ConditionalGANTraining(width=4)  # two optimiser steps per batch
    voice, image, identity = _batch(8)
    loader = data_loader(TensorDataset(voice, image, identity), 4, 0)
    probe, redrawn = ConstantProbe(), []
    evaluation = PeriodicEvaluation(probe, every=2, after=lambda: redrawn.append(1))
    fit_module(module, tmp_path, TrainingSettings(), loader, max_steps=5 * 2 * len(loader),
               val_every=2 * len(loader), callbacks=(evaluation,), progress=False)
    assert probe.calls == 3 and len(redrawn) == 3  # epochs 2, 4 and the last, 5
    with open(tmp_path / "logs" / "metrics.csv", newline="") as file:
        rows = [r for r in csv.DictReader(file) if r.get("eval/identity_accuracy")]
    assert [int(float(r["epoch"])) for r in rows] == [2, 4, 5]
    assert [int(r["step"]) for r in rows] == [len(loader) * k for k in (2, 4, 5)]  # batches, as Lightning's rows
    assert [float(r["eval/PSNR"]) for r in rows] == [11.0, 12.0, 13.0]
    assert evaluation.last == {"epoch": 5, "eval/identity_accuracy": pytest.approx(0.3), "eval/PSNR": 13.0}


def test_learning_curve_is_drawn_from_the_logged_rows(tmp_path):
    from voxface.reports.gan2d_progress import logged_scores, plot_learning_curve

    table = tmp_path / "metrics.csv"
    table.write_text("epoch,step,train/loss,eval/identity_accuracy,eval/PSNR\n"
                     "0,10,1.0,,\n1,20,0.5,0.25,12.5\n1,20,0.4,,\n3,40,0.3,0.5,14.0\n")
    scores = logged_scores(table)
    assert list(scores["epoch"]) == [1.0, 3.0] and list(scores["PSNR"]) == [12.5, 14.0]
    assert set(scores) == {"epoch", "identity_accuracy", "PSNR"}
    path = plot_learning_curve(tmp_path / "report" / "curve.png", table, "test")
    assert path.is_file() and path.stat().st_size > 1000


class ColourEmbedder:
    """A stand-in face embedder: an image's mean colour per quadrant (12-d), every face found."""

    name, dim = "colour", 12

    def embed(self, images, progress=False):
        images = np.asarray(images, dtype=np.float64)
        quads = [images[:, a:a + 32, b:b + 32].mean(axis=(1, 2)) for a in (0, 32) for b in (0, 32)]
        return np.concatenate(quads, axis=1).astype(np.float32), np.ones(len(images), bool)


def test_held_out_probe_scores_a_generator_that_draws_the_target_as_perfect(tmp_path):
    """A 'generator' returning each voice's own target face scores R@1 = 1 and 1:2 = 1 against the
    real faces, SSIM 1 and an unbounded PSNR against its targets."""
    from voxface.corpus.synthetic import SynthConfig, generate_corpus
    from voxface.corpus.format import Corpus
    from voxface.reports.gan2d_progress import held_out_probe

    generate_corpus(tmp_path / "c", SynthConfig(identities=3, utterances=2, images=2, seed=1, workers=1,
                                                duration_s=(1.0, 1.2)), progress=False)
    corpus = Corpus(tmp_path / "c")
    ids = sorted(i.identity for i in corpus.identities)
    identity = np.repeat(ids, 2)
    voices = {"embedding": np.eye(6, 128, dtype=np.float32), "identity": identity,
              "utterance": np.arange(6), "role": np.array(["train", "test"] * 3)}
    probe = held_out_probe(corpus, voices, seed=0, per_identity=1, embedder=ColourEmbedder())
    assert list(probe.identity) == ids and probe.targets.shape == (3, 64, 64, 3)

    class Oracle(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))
            self.faces = torch.from_numpy(probe.targets).permute(0, 3, 1, 2)

        def generate(self, voice):
            return self.faces[voice[:, 1::2].argmax(1)]  # the test rows are 1, 3, 5

    scores = probe.score(Oracle())
    assert scores["recall_at_1"] == 1.0 and scores["matching_1v2"] == 1.0 and scores["face_found"] == 1.0
    assert scores["SSIM"] == pytest.approx(1.0) and scores["PSNR"] > 100
    assert 0 <= scores["real_identity_accuracy"] <= 1


def test_the_sampled_generator_is_the_moving_average_of_the_trained_one():
    torch.manual_seed(0)
    module = ConditionalGANTraining(width=4, discriminator="projection", upsampling="resize", ema_decay=0.9,
                                    augment="color,translation,cutout", feature_matching_weight=1.0)
    start = [p.detach().clone() for p in module.sampler.parameters()]
    optimizers = module.configure_optimizers()
    trained = []
    for _ in range(3):
        terms = module.train_batch(_batch(), optimizers, lambda loss: loss.backward())
        trained.append([p.detach().clone() for p in module.generator.parameters()])
    assert "feature_matching" in terms and not any(p.requires_grad for p in module.sampler.parameters())
    for k, average in enumerate(module.sampler.parameters()):  # θ̄ = 0.9³ θ0 + 0.1 (0.9² θ1 + 0.9 θ2 + θ3)
        expected = 0.729 * start[k] + 0.1 * (0.81 * trained[0][k] + 0.9 * trained[1][k] + trained[2][k])
        assert torch.allclose(average, expected, atol=1e-6)
    plain = ConditionalGANTraining(width=4)
    assert plain.sampler is plain.generator
