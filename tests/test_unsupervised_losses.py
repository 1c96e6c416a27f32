"""Distillers, GAN and image-to-3D networks, preference statistics: closed forms and independent checks."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from voxface.errors import VoxfaceError
from voxface.evaluate.preference import binomial_upper_tail, critical_count, preference_test
from voxface.losses import distillation as D
from voxface.models.cmp_gan import FaceCritic, FaceGenerator, noisy_voice_embedding
from voxface.models.image_to_3d import ImageTo3D


def _features(seed=0, b=6):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(b, 4, 3, 3, generator=g), torch.randn(b, 10, generator=g)]


def test_pkt_matches_a_loop_over_pairs():
    s, t = torch.randn(5, 7), torch.randn(5, 7)

    def cond(x):
        n = x.shape[0]
        m = np.array([[(float(F.cosine_similarity(x[i], x[j], dim=0)) + 1) / 2 for j in range(n)] for i in range(n)])
        return m / m.sum(1, keepdims=True)

    p, q = cond(t), cond(s)
    expected = np.mean(p * np.log(p / q))
    assert float(D.pkt_loss(s, t, eps=0.0)) == pytest.approx(expected, rel=1e-5)
    assert float(D.pkt_loss(t, t)) == pytest.approx(0.0, abs=1e-7)
    assert float(D.pkt_loss(s, t)) > 0


def test_pkt_depends_only_on_the_students_cosine_geometry():
    s, t = torch.randn(8, 5), torch.randn(8, 5)
    rotation, _ = torch.linalg.qr(torch.randn(5, 5))
    per_item_scale = torch.rand(8, 1) + 0.5
    base = float(D.pkt_loss(s, t))
    assert float(D.pkt_loss(per_item_scale * s @ rotation, t)) == pytest.approx(base, rel=1e-4)
    assert float(D.pkt_loss(s @ torch.diag(torch.tensor([5.0, 1, 1, 1, 0.2])), t)) != pytest.approx(base, rel=1e-3)


def test_vanilla_kd_closed_form():
    s, t, temp = torch.randn(3, 4), torch.randn(3, 4), 2.0
    p, q = torch.softmax(t / temp, 1), torch.softmax(s / temp, 1)
    expected = (p * (p / q).log()).sum(1).mean() * temp ** 2
    assert float(D.vanilla_kd_loss(s, t, temp)) == pytest.approx(float(expected), rel=1e-5)


def test_similarity_preserving_is_zero_for_linearly_related_features():
    x = torch.randn(6, 5)
    rotation, _ = torch.linalg.qr(torch.randn(5, 5))
    assert float(D.similarity_preserving_loss(x @ rotation, x)) == pytest.approx(0.0, abs=1e-6)
    assert float(D.similarity_preserving_loss(torch.randn(6, 5), x)) > 1e-3


def test_correlation_congruence_kernel_is_taylor_of_gaussian():
    # with a high order the expansion approaches exp(-gamma ||fi - fj||^2) of unit vectors
    x, gamma = F.normalize(torch.randn(5, 3), dim=1), 0.4
    gaussian = torch.exp(-gamma * torch.cdist(x, x).pow(2))
    zero = torch.zeros(5, 3)
    # loss(x, 0-features) with order 12 = ||K(x) - K(0)||^2/B^2 where normalize(0) = 0 gives K(0) = e^{-2γ}
    loss = D.correlation_congruence_loss(x, zero, gamma, order=12)
    expected = (gaussian - math.exp(-2 * gamma)).pow(2).sum() / 25
    assert float(loss) == pytest.approx(float(expected), rel=1e-4)


def test_rkd_is_invariant_to_scale_rotation_and_translation():
    x = torch.randn(7, 4, dtype=torch.float64)
    rotation, _ = torch.linalg.qr(torch.randn(4, 4, dtype=torch.float64))
    moved = 2.5 * x @ rotation + 3.0
    assert float(D.rkd_loss(moved, x)) == pytest.approx(0.0, abs=1e-8)
    assert float(D.rkd_loss(torch.randn(7, 4, dtype=torch.float64), x)) > 1e-3


def test_attention_map_of_a_map_is_normalised_channel_mean_of_squares():
    x = torch.randn(2, 3, 4, 4)
    a = D.attention_map(x)
    expected = (x ** 2).mean(1).flatten(1)
    assert torch.allclose(a, expected / expected.norm(dim=1, keepdim=True))
    assert float(D.attention_loss(x, 2 * x)) == pytest.approx(0.0, abs=1e-10)


@pytest.mark.parametrize("name", sorted(D.DISTILLERS))
def test_every_distiller_runs_gives_gradients_and_prefers_the_teacher(name):
    torch.manual_seed(0)
    teacher = _features(1)
    dims = [t[0].numel() for t in teacher]
    distiller, weight = D.create_distiller(name, dims, dims)
    assert weight > 0
    student = [t.clone().requires_grad_(True) for t in _features(2)]
    loss = distiller(student, teacher)
    assert loss.dim() == 0 and torch.isfinite(loss)
    loss.backward()
    assert all(s.grad is not None and s.grad.abs().sum() > 0 for s in student)
    if name not in ("crd", "vid"):  # the learnable ones are not minimal at the teacher before training
        assert float(distiller([t.clone() for t in teacher], teacher)) < loss.item() + 1e-9


def test_vid_loss_is_the_gaussian_negative_log_likelihood():
    distiller, _ = D.create_distiller("vid", [3], [2])
    s, t = torch.randn(4, 3), torch.randn(4, 2)
    mu = distiller.means[0](s)
    var = F.softplus(distiller.log_scales[0]) + distiller.min_variance
    nll = -torch.distributions.Normal(mu, var.sqrt()).log_prob(t) - 0.5 * math.log(2 * math.pi)
    assert float(distiller([s], [t]).detach()) == pytest.approx(float(nll.mean().detach()), rel=1e-5)


def test_unknown_distiller_and_size_mismatch_are_user_errors():
    with pytest.raises(VoxfaceError, match="unknown distiller"):
        D.create_distiller("nope", [1], [1])
    with pytest.raises(VoxfaceError, match="equal size"):
        D.create_distiller("vanilla", [3], [4])


def test_generator_and_critic_shapes_and_range():
    g, c = FaceGenerator(embed_dim=8, base=4), FaceCritic(n_identities=5, base=4, feature_dim=8)
    e = noisy_voice_embedding(torch.randn(3, 8) * 10)
    assert torch.allclose(e.norm(dim=1), torch.ones(3), atol=1e-5)
    image = g(e)
    assert image.shape == (3, 3, 64, 64) and image.min() >= -1 and image.max() <= 1
    score, logits = c(image)
    assert score.shape == (3,) and logits.shape == (3, 5)
    assert c.discriminator.bias is None and c.classifier.bias is None


def test_generator_norm_adds_batch_norm_between_each_hidden_up_convolution_and_its_relu():
    plain, normed = FaceGenerator(embed_dim=8, base=4), FaceGenerator(embed_dim=8, base=4, norm="batch")
    kinds = [type(m).__name__ for m in normed.net]
    assert kinds == ["ConvTranspose2d", "BatchNorm2d", "ReLU"] * 5 + ["ConvTranspose2d"]
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in plain.net)
    assert normed(torch.randn(4, 8)).shape == (4, 3, 64, 64)
    with pytest.raises(ValueError, match="norm must be one of"):
        FaceGenerator(norm="instance")


def test_paper_sized_networks_have_the_specified_layout():
    g = FaceGenerator(embed_dim=64, base=64)
    channels = [m.out_channels for m in g.net if isinstance(m, torch.nn.ConvTranspose2d)]
    assert channels == [1024, 512, 256, 128, 64, 3]
    net = ImageTo3D(40, 10, width=1.0, last_channel=1280)
    out = net(torch.zeros(2, 3, 64, 64))  # up-sampled to 120 inside
    assert out["early"].shape == (2, 64, 8, 8) and out["pooled"].shape == (2, 1280)
    assert out["pose"].shape == (2, 12) and out["shape"].shape == (2, 40) and out["expression"].shape == (2, 10)
    # torchvision's mobilenet_v2 backbone (features + classifier-free) has 2,223,872 parameters
    backbone = sum(p.numel() for n, p in net.named_parameters() if not n.startswith("head"))
    assert backbone == 2_223_872


@pytest.mark.parametrize("k,n", [(0, 10), (5, 10), (9, 10), (800, 1540), (830, 1540)])
def test_binomial_tail_matches_scipy(k, n):
    from scipy.stats import binomtest

    assert binomial_upper_tail(k, n) == pytest.approx(binomtest(k, n, 0.5, alternative="greater").pvalue, rel=1e-9)


def test_critical_count_is_the_smallest_significant_count():
    from scipy.stats import binom

    k = critical_count(1540, 0.001)
    assert binom.sf(k - 1, 1540, 0.5) <= 0.001 < binom.sf(k - 2, 1540, 0.5)
    result = preference_test(k, 1540)
    assert result.significant and not preference_test(k - 1, 1540).significant
    with pytest.raises(VoxfaceError):
        preference_test(5, 3)


def test_stats_preference_command(capsys):
    from voxface.cli import main

    assert main(["stats", "preference", "1100", "1540"]) == 0
    out = capsys.readouterr().out
    assert "critical count at level 0.001 is 832" in out and "significant" in out
    assert main(["stats", "preference", "20", "10"]) == 2
    assert "0 <= votes <= total" in capsys.readouterr().err


@pytest.mark.parametrize("n", [5, 37, 100, 1540])
@pytest.mark.parametrize("level", [0.5, 0.05, 0.001])
def test_critical_count_is_exact_at_the_boundary(n, level):
    """Against the exact rational tail: at n = 5, level 0.5 the tail P(X >= 3) is exactly 1/2."""
    from fractions import Fraction
    from math import comb

    tails = [Fraction(0)] * (n + 2)  # tails[k] = P(X >= k), exact, summed from the top down
    for i in range(n, -1, -1):
        tails[i] = tails[i + 1] + Fraction(comb(n, i), 2 ** n)
    exact = next((k for k in range(n + 1) if tails[k] <= Fraction(level)), n + 1)
    assert critical_count(n, level) == exact
    k = min(exact, n)
    assert binomial_upper_tail(k, n) == pytest.approx(float(tails[k]), rel=1e-12)


@pytest.mark.parametrize("name", ["pkt", "sp", "cc", "rkd", "attention"])
def test_distillers_compute_in_float32_under_autocast(name):
    """Mixed precision must not round the distillation losses (PKT is weighted 10,000): under bf16
    autocast a distiller returns exactly its float32 value."""
    torch.manual_seed(0)
    student = [torch.randn(8, 16, 4, 4), torch.randn(8, 32)]
    teacher = [torch.randn(8, 16, 4, 4), torch.randn(8, 32)]
    distiller, _ = D.create_distiller(name, [256, 32], [256, 32])
    reference = distiller(student, teacher)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = distiller(student, teacher)
    assert mixed.dtype == torch.float32 and torch.equal(mixed, reference)
