"""Image metrics against scikit-image and hand computations; verification scores on hand-made cases."""

from __future__ import annotations

import numpy as np
import pytest
from skimage import data as skdata
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from voxface.errors import VoxfaceError
from voxface.evaluate import image_metrics as im
from voxface.evaluate import verification as ver


@pytest.fixture(scope="module")
def photo_pair():
    """A real photo (astronaut, 64x64 crop) in [0, 1] and a noisy, shifted copy."""
    ref = skdata.astronaut()[100:164, 180:244].astype(np.float64) / 255.0
    rng = np.random.default_rng(0)
    test = np.clip(0.9 * ref + 0.05 + rng.normal(0, 0.05, ref.shape), 0, 1)
    return ref, test


def test_psnr_matches_skimage(photo_pair):
    ref, test = photo_pair
    assert im.psnr(ref, test) == pytest.approx(peak_signal_noise_ratio(ref, test, data_range=1.0), rel=1e-12)


@pytest.mark.parametrize("channel", [True, False])
def test_ssim_matches_skimage(photo_pair, channel):
    ref, test = photo_pair
    if not channel:
        ref, test = ref[..., 1], test[..., 1]
    expected = structural_similarity(ref, test, data_range=1.0, gaussian_weights=True, sigma=1.5,
                                     use_sample_covariance=False, channel_axis=2 if channel else None)
    assert im.ssim(ref, test) == pytest.approx(expected, abs=1e-10)
    assert im.ssim(ref, ref) == pytest.approx(1.0)


def test_pamse_hand_made_case():
    """A single error pixel e in a constant image: the Gaussian spreads it, PAMSE = e^2 sum(w^2) / n_valid."""
    ref = np.zeros((9, 9))
    test = ref.copy()
    test[4, 4] = 0.2  # 51 grey levels
    # independent computation: the 7x7 Gaussian weights written out from the formula
    ax = np.arange(-3, 4)
    w = np.exp(-(ax[:, None] ** 2 + ax[None, :] ** 2) / (2 * 0.8 ** 2))
    w /= w.sum()
    # 'valid' output is 3x3: output (i, j) covers pixels (i..i+6, j..j+6), so it sees the error at offset (4-i, 4-j)
    out = np.array([[51.0 * w[4 - i, 4 - j] for j in range(3)] for i in range(3)])
    expected = np.mean(out ** 2)
    assert im.pamse(ref, test) == pytest.approx(expected, rel=1e-9)
    assert im.pamse(ref, ref) == 0.0


def test_simple_metrics_closed_forms():
    ref = np.full((16, 16, 3), 0.5)
    test = ref + 0.1
    assert im.mae(ref, test) == pytest.approx(0.1)
    assert im.mse(ref, test) == pytest.approx(0.01)
    assert im.psnr(ref, test) == pytest.approx(20.0)
    assert im.snr(ref, test) == pytest.approx(10 * np.log10(0.25 / 0.01))
    q = im.image_quality(np.stack([ref, ref]), np.stack([test, test]))
    assert set(q) == set(im.METRICS) and q["MSE"] == pytest.approx(0.01)


def test_threshold_sweep_and_calibration():
    distances = np.array([0.2, 0.3, 0.5, 0.7, 0.9, 1.0])
    same = np.array([True, True, True, False, False, False])
    sweep = ver.threshold_sweep(distances, same, np.array([0.25, 0.6, 2.0]))
    np.testing.assert_allclose(sweep["accuracy"], [4 / 6, 1.0, 0.5])
    np.testing.assert_allclose(sweep["balanced_accuracy"], [(1 / 3 + 1) / 2, 1.0, 0.5])
    np.testing.assert_allclose(sweep["f1"], [2 / (2 + 0 + 2), 1.0, 6 / 9])
    cal, _ = ver.calibrate_threshold(distances, same)
    assert 0.5 < cal.tau <= 0.7 and cal.balanced_accuracy == 1.0


def test_matching_and_recall():
    # 3 queries, 4 identities; rows are distances to identities
    d = np.array([[0.1, 0.5, 0.6, 0.05],   # true 0: beaten by identity 3
                  [0.4, 0.2, 0.3, 0.9],    # true 1: nearest
                  [0.5, 0.5, 0.5, 0.5]])   # true 2: all tied
    true = np.array([0, 1, 2])
    # trials: q0 vs {1,2,3}: 1,1,0; q1 vs {0,2,3}: 1,1,1; q2: 0.5 x 3
    assert ver.matching_1v2(d, true) == pytest.approx((2 + 3 + 1.5) / 9)
    genders = np.array(["m", "m", "f", "f"])
    # stratified: q0 vs 1: 1; q1 vs 0: 1; q2 vs 3: 0.5
    assert ver.matching_1v2(d, true, genders) == pytest.approx(2.5 / 3)
    r = ver.recall_at_k(d, true, ks=(1, 2, 4))
    assert r == {1: pytest.approx(1 / 3), 2: pytest.approx(2 / 3), 4: 1.0}
    won, trials = ver.matching_1v2_per_query(d, true)
    np.testing.assert_allclose(won, [2, 3, 1.5])
    np.testing.assert_array_equal(trials, [3, 3, 3])
    won, trials = ver.matching_1v2_per_query(d, true, genders)
    np.testing.assert_allclose(won, [1, 1, 0.5])
    np.testing.assert_array_equal(trials, [1, 1, 1])
    np.testing.assert_array_equal(ver.true_identity_rank(d, true), [2, 1, 4])


def test_identity_accuracy_and_distances():
    gallery = np.array([[0.0, 0.0], [0.0, 1.0], [3.0, 0.0]])
    labels = np.array(["a", "a", "b"])
    queries = np.array([[0.0, 0.5], [3.0, 0.4]])
    assert ver.identity_accuracy(queries, np.array(["a", "b"]), gallery, labels, tau=0.6) == pytest.approx(1.0)
    assert ver.identity_accuracy(queries, np.array(["b", "b"]), gallery, labels, tau=0.6) == pytest.approx(0.5)
    hits = ver.identity_hits(queries, np.array(["a", "b"]), gallery, labels, tau=0.6)
    np.testing.assert_array_equal(hits["own_hits"], [2, 1])      # both a-faces within 0.5; b's face 0.4 away
    np.testing.assert_array_equal(hits["own_pairs"], [2, 1])
    np.testing.assert_array_equal(hits["other_hits"], [0, 0])
    np.testing.assert_array_equal(hits["other_pairs"], [1, 2])
    hits = ver.identity_hits(queries, np.array(["b", "b"]), gallery, labels, tau=0.6)
    np.testing.assert_array_equal(hits["own_hits"], [0, 1])
    np.testing.assert_array_equal(hits["other_hits"], [2, 0])
    with pytest.raises(VoxfaceError, match="no real face"):
        ver.identity_hits(queries, np.array(["a", "z"]), gallery, labels, tau=0.6)
    d = ver.distances_to_identities(queries, gallery, labels, ["a", "b"])
    np.testing.assert_allclose(d[0], [0.5, np.hypot(3, 0.5)])
    dist, same = ver.pair_distances(gallery, labels)
    np.testing.assert_allclose(dist, [1.0, 3.0, np.hypot(3, 1)])
    np.testing.assert_array_equal(same, [True, False, False])


def test_library_metrics_equal_the_closed_forms_exactly(photo_pair):
    """MSE, PSNR and SSIM come from scikit-image; they equal Wang et al.'s formulas as written out
    here (Gaussian σ = 1.5 window truncated at 3.5 σ, reflected borders, population covariances,
    5-pixel border dropped, channels averaged) to the last bit."""
    from scipy import ndimage

    def blur(a):
        return ndimage.gaussian_filter(a, 1.5, truncate=3.5, mode="reflect")

    def ssim_formula(x, y):
        if x.ndim == 3:
            return float(np.mean([ssim_formula(x[..., c], y[..., c]) for c in range(x.shape[2])]))
        mx, my = blur(x), blur(y)
        vx, vy, cxy = blur(x * x) - mx ** 2, blur(y * y) - my ** 2, blur(x * y) - mx * my
        c1, c2 = 0.01 ** 2, 0.03 ** 2
        s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx ** 2 + my ** 2 + c1) * (vx + vy + c2))
        return float(s[5:-5, 5:-5].mean())

    ref, test = (np.asarray(a, np.float64) for a in photo_pair)
    for x, y in ((ref, test), (ref.mean(2), test.mean(2))):
        error = float(np.mean((x - y) ** 2))
        assert im.mse(x, y) == error
        assert im.psnr(x, y) == float(10.0 * np.log10(1.0 / error))
        assert im.ssim(x, y) == ssim_formula(x, y)


def test_threshold_sweep_equals_counting_every_pair_at_every_tau():
    rng = np.random.default_rng(1)
    distances = np.round(rng.uniform(0, 1.5, 3000), 2)  # ties with the grid's thresholds on purpose
    same = rng.random(3000) < 0.2
    taus = np.round(np.arange(0, 2.01, 0.01), 2)
    sweep = ver.threshold_sweep(distances, same, taus)
    accept = distances[None] < taus[:, None]
    tp, tn = (accept & same).sum(1), (~accept & ~same).sum(1)
    np.testing.assert_array_equal(sweep["tpr"], tp / same.sum())
    np.testing.assert_array_equal(sweep["tnr"], tn / (~same).sum())
    np.testing.assert_array_equal(sweep["accuracy"], (tp + tn) / len(same))


def test_threshold_sweep_memory_does_not_grow_with_thresholds_times_pairs():
    """The sweep over 201 thresholds of 200,000 pairs (a few thousand photos give millions) must not
    build a thresholds × pairs table (201 × 200,000 booleans are 40 MB per table)."""
    import tracemalloc

    rng = np.random.default_rng(2)
    distances, same = rng.uniform(0, 1.5, 200_000), rng.random(200_000) < 0.1
    taus = np.round(np.arange(0, 2.01, 0.01), 2)
    table_mb = len(taus) * len(distances) / 2**20
    tracemalloc.start()
    ver.threshold_sweep(distances, same, taus)
    peak_mb = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    assert peak_mb < table_mb / 2
