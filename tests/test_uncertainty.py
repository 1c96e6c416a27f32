"""The predictive distribution over a face (evaluate/uncertainty.py, models' Gaussian heads) against
closed forms, Monte Carlo and scipy."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

from voxface.evaluate.geometry import measurement_ratios
from voxface.evaluate.uncertainty import (
    CoefficientDistribution,
    coverage,
    gaussian_nll,
    population_gaussian,
    ratio_samples,
    reliability,
    vertex_std,
)
from voxface.face3d import RATIOS
from voxface.face3d.loading import load_morphable_model
from voxface.models.regressor import GaussianRegressor, RegressorEnsemble


@pytest.fixture(scope="module")
def model():
    return load_morphable_model("builtin")


def random_distribution(rng, batch=3, k=5, rank=2) -> CoefficientDistribution:
    return CoefficientDistribution(rng.normal(size=(batch, k)), rng.uniform(0.1, 1.0, (batch, k)),
                                   rng.normal(0, 0.5, (batch, k, rank)))


def test_samples_have_the_distributions_mean_and_covariance():
    rng = np.random.default_rng(0)
    d = random_distribution(rng)
    samples = d.sample(200_000, rng)
    np.testing.assert_allclose(samples.mean(0), d.mean, atol=0.02)
    empirical = np.einsum("nbi,nbj->bij", samples - d.mean, samples - d.mean) / len(samples)
    np.testing.assert_allclose(empirical, d.covariance(), atol=0.03)


def test_mixture_is_moment_matched_to_its_members():
    rng = np.random.default_rng(1)
    members = [random_distribution(rng, batch=2) for _ in range(4)]
    mixture = CoefficientDistribution.mixture(members)
    means = np.stack([m.mean for m in members])
    expected_cov = np.mean([m.covariance() for m in members], axis=0) + np.einsum(
        "mbi,mbj->bij", means - means.mean(0), means - means.mean(0)) / 4
    np.testing.assert_allclose(mixture.mean, means.mean(0))
    np.testing.assert_allclose(mixture.covariance(), expected_cov, atol=1e-12)


def test_vertex_std_is_the_spread_of_sampled_meshes(model):
    rng = np.random.default_rng(2)
    k = model.n_shape
    d = CoefficientDistribution(rng.normal(size=(1, k)), rng.uniform(0.2, 1.0, (1, k)), rng.normal(0, 0.3, (1, k, 3)))
    meshes = model.reconstruct(d.sample(20_000, rng)[:, 0].astype(np.float32))
    sampled = np.sqrt(((meshes - meshes.mean(0)) ** 2).sum(-1).mean(0))
    np.testing.assert_allclose(vertex_std(model, d)[0], sampled, rtol=0.03)


def test_ratio_samples_equal_the_ratios_of_full_meshes(model):
    z = np.random.default_rng(3).normal(size=(6, model.n_shape))
    full = measurement_ratios(model.reconstruct(z.astype(np.float32)), model.measurements)
    np.testing.assert_allclose(ratio_samples(model, z), np.stack([full[r] for r in RATIOS], -1), rtol=1e-5)


def test_coverage_of_a_calibrated_gaussian_is_nominal_and_reliability_tracks_it():
    rng = np.random.default_rng(4)
    d = CoefficientDistribution.diagonal(np.zeros((20000, 3)), np.full((20000, 3), 4.0))
    truth = rng.normal(0, 2.0, (20000, 3))
    for level in (0.5, 0.9):
        assert coverage(truth, d, level) == pytest.approx(level, abs=0.01)
        assert coverage(truth, d.sample(500, rng), level) == pytest.approx(level, abs=0.015)
    too_narrow = CoefficientDistribution.diagonal(d.mean, np.full((20000, 3), 1.0))
    assert coverage(truth, too_narrow, 0.9) == pytest.approx(2 * stats.norm.cdf(stats.norm.ppf(0.95) / 2) - 1, abs=0.01)
    curve = reliability(truth, d)
    np.testing.assert_allclose(curve["observed"], curve["nominal"], atol=0.015)


def test_nll_equals_scipys_multivariate_normal():
    rng = np.random.default_rng(5)
    d = random_distribution(rng, batch=4)
    truth = rng.normal(size=(4, 5))
    expected = [-stats.multivariate_normal(d.mean[i], d.covariance()[i]).logpdf(truth[i]) for i in range(4)]
    np.testing.assert_allclose(gaussian_nll(truth, d), expected, rtol=1e-10)


def test_population_gaussians_are_the_sample_and_pooled_within_group_moments():
    rng = np.random.default_rng(6)
    shapes = np.r_[rng.normal(1.0, 1.0, (300, 3)), rng.normal(-1.0, 1.0, (300, 3))]
    groups = np.array(["m"] * 300 + ["f"] * 300)
    prior = population_gaussian(shapes)
    np.testing.assert_allclose(prior.covariance()[0], np.cov(shapes.T), atol=1e-6)
    gender = population_gaussian(shapes, groups, np.array(["f", "m"]))
    np.testing.assert_allclose(gender.mean, [shapes[300:].mean(0), shapes[:300].mean(0)])
    pooled = (np.cov(shapes[:300].T) * 299 + np.cov(shapes[300:].T) * 299) / 598
    np.testing.assert_allclose(gender.covariance()[0], pooled, atol=1e-6)


@pytest.mark.parametrize("rank", [0, 3])
def test_gaussian_head_nll_equals_torchs_distribution(rank):
    torch.manual_seed(0)
    head = GaussianRegressor(16, 6, dropout=0.0, rank=rank).eval()
    head.set_target_stats(torch.randn(6), torch.rand(6) + 0.5)
    emb, target = torch.randn(5, 16), torch.randn(5, 6)
    d = head.distribution(emb)
    whitened = (target - head.target_mean) / head.target_std
    mean, variance = (d["mean"] - head.target_mean) / head.target_std, d["variance"] / head.target_std ** 2
    if rank:
        normal = torch.distributions.LowRankMultivariateNormal(mean, d["factor"] / head.target_std[:, None], variance)
        expected = -normal.log_prob(whitened)
    else:
        expected = -torch.distributions.Normal(mean, variance.sqrt()).log_prob(whitened).sum(-1)
    torch.testing.assert_close(head.negative_log_likelihood(emb, target), expected)
    assert torch.equal(head(emb), d["mean"])


def test_a_gaussian_head_learns_the_noise_it_is_trained_on():
    torch.manual_seed(1)
    head = GaussianRegressor(4, 2, dropout=0.0)
    x = torch.randn(4000, 4)
    y = torch.stack([x[:, 0], -x[:, 1]], 1) + torch.randn(4000, 2) * torch.tensor([0.5, 2.0])
    optimiser = torch.optim.Adam(head.parameters(), lr=0.05)
    for _ in range(400):
        optimiser.zero_grad()
        head.negative_log_likelihood(x, y).mean().backward()
        optimiser.step()
    variance = head.distribution(x)["variance"].mean(0).detach()
    torch.testing.assert_close(variance, torch.tensor([0.25, 4.0]), rtol=0.15, atol=0.0)


def test_an_ensemble_predicts_its_members_mean_and_sums_their_losses():
    torch.manual_seed(2)
    ensemble = RegressorEnsemble(8, 3, members=3, dropout=0.0)
    emb, target = torch.randn(4, 8), torch.randn(4, 3)
    torch.testing.assert_close(ensemble(emb), torch.stack([m(emb) for m in ensemble.members]).mean(0))
    torch.testing.assert_close(ensemble.negative_log_likelihood(emb, target),
                               sum(m.negative_log_likelihood(emb, target) for m in ensemble.members))
    assert not torch.equal(ensemble.members[0].head.weight, ensemble.members[1].head.weight)


def test_population_describes_a_face_with_its_type_gender_and_ratio_intervals(model):
    from voxface.corpus.link import sample_shape
    from voxface.evaluate.population import FacePopulation

    rng = np.random.default_rng(7)
    genders = np.array(["m", "f"] * 200)
    shapes = np.stack([sample_shape(model, rng, g) for g in genders]).astype(np.float64)
    population = FacePopulation.fit(model, shapes, genders)
    assert len(population.type_names) == 4 and len(set(population.type_names)) == 4
    male = shapes[0]
    point = CoefficientDistribution.diagonal(male[None], np.zeros((1, model.n_shape)))
    described = population.describe(model, point[0])
    true_ratios = ratio_samples(model, male)
    for i, name in enumerate(RATIOS):
        r = described["ratios"][name]
        assert r["interval"][0] == pytest.approx(r["median"]) == pytest.approx(true_ratios[i])
        assert r["population"][0] < r["population"][1]
    assert described["face_type"]["share_of_samples"] == 1.0
    assert described["face_type"]["name"] == population.type_names[int(population.face_type(true_ratios))]
    accuracy = np.mean((population.male_probability(shapes) > 0.5) == (genders == "m"))
    assert accuracy > 0.7  # the built-in model's shapes differ by gender
    wide = CoefficientDistribution.diagonal(male[None], np.ones((1, model.n_shape)))
    unsure = population.describe(model, wide[0])
    assert unsure["face_type"]["share_of_samples"] < 1.0
    assert unsure["ratios"]["ER"]["interval"][1] - unsure["ratios"]["ER"]["interval"][0] > 0
    restored = FacePopulation.from_saved(population.to_saved())
    assert restored.type_names == population.type_names
    np.testing.assert_array_equal(restored.male_probability(shapes), population.male_probability(shapes))


def test_the_perfect_listener_knows_more_with_a_stronger_link(model):
    from voxface.evaluate.listener import perfect_listener

    weak, strong = perfect_listener(model, 0.0, n=1600), perfect_listener(model, 1.0, n=1600)
    for ratio in RATIOS:
        assert strong.explained["ratios"][ratio] > weak.explained["ratios"][ratio] + 0.3
    assert strong.floor_variance.mean() < weak.floor_variance.mean()
    assert 0 < weak.explained["whole_face"] < strong.explained["whole_face"] < 1  # gender alone tells something
