"""Similarity transforms: Euler rotations against scipy, Umeyama against known transforms."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from voxface.face3d.transforms import apply_similarity, rotation_matrix, umeyama

ANGLES = [(0.3, -0.2, 0.1), (-1.2, 0.7, 2.5), (0.0, 0.0, 0.0), (3.0, -1.5, -0.4)]


@pytest.mark.parametrize("yaw, pitch, roll", ANGLES)
def test_rotation_is_orthonormal_with_det_one_and_matches_scipy(yaw, pitch, roll):
    r = rotation_matrix(yaw, pitch, roll)
    np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-12)
    assert np.linalg.det(r) == pytest.approx(1.0)
    # Rz(roll) Rx(pitch) Ry(yaw) = extrinsic rotations about y, then x, then z.
    np.testing.assert_allclose(r, Rotation.from_euler("yxz", [yaw, pitch, roll]).as_matrix(), atol=1e-12)


def test_rotation_axes_follow_the_documented_signs():
    forward, up = np.array([0.0, 0, 1]), np.array([0.0, 1, 0])
    assert (rotation_matrix(0.3, 0, 0) @ forward)[0] > 0  # yaw: face turns to +x (subject's left)
    assert (rotation_matrix(0, 0.3, 0) @ forward)[1] < 0  # pitch: nose goes down
    assert (rotation_matrix(0, 0, 0.3) @ up)[0] < 0  # roll: top of the head towards -x


def test_rotation_batches_and_keeps_torch():
    yaw, pitch, roll = (torch.tensor(a, dtype=torch.float64) for a in zip(*ANGLES))
    batch = rotation_matrix(yaw, pitch, roll)
    assert isinstance(batch, torch.Tensor) and batch.shape == (4, 3, 3)
    for k, angles in enumerate(ANGLES):
        np.testing.assert_allclose(batch[k].numpy(), rotation_matrix(*angles), atol=1e-12)


def known_similarity(seed: int = 0):
    rng = np.random.default_rng(seed)
    src = rng.normal(size=(40, 3)) * 50
    scale, rot, shift = 1.7, rotation_matrix(0.4, -0.3, 1.1), np.array([10.0, -4.0, 30.0])
    return src, scale, rot, shift


def test_umeyama_recovers_a_known_similarity():
    src, scale, rot, shift = known_similarity()
    dst = scale * src @ rot.T + shift  # written out, independent of apply_similarity
    s, r, t = umeyama(src, dst)
    assert s == pytest.approx(scale, abs=1e-6)
    np.testing.assert_allclose(r, rot, atol=1e-6)
    np.testing.assert_allclose(t, shift, atol=1e-6)
    np.testing.assert_allclose(apply_similarity(src, s, r, t), dst, atol=1e-6)


def test_umeyama_without_scale_recovers_a_rigid_motion():
    src, _, rot, shift = known_similarity(1)
    s, r, t = umeyama(src, src @ rot.T + shift, with_scale=False)
    assert s == 1.0
    np.testing.assert_allclose(r, rot, atol=1e-6)
    np.testing.assert_allclose(t, shift, atol=1e-6)


def test_umeyama_is_the_least_squares_optimum_under_noise():
    src, scale, rot, shift = known_similarity(2)
    dst = scale * src @ rot.T + shift + np.random.default_rng(3).normal(size=src.shape) * 5
    fitted = np.sum((apply_similarity(src, *umeyama(src, dst)) - dst) ** 2)
    assert fitted <= np.sum((scale * src @ rot.T + shift - dst) ** 2)
    for perturbed in (1.01 * scale, 0.99 * scale):
        assert fitted < np.sum((perturbed * src @ rot.T + shift - dst) ** 2)


def test_umeyama_never_returns_a_reflection():
    src = known_similarity()[0]
    _, r, _ = umeyama(src, src * [-1, 1, 1])
    assert np.linalg.det(r) == pytest.approx(1.0)


def test_umeyama_torch_batch_matches_numpy():
    cases = [known_similarity(seed) for seed in range(3)]
    src = torch.tensor(np.stack([c[0] for c in cases]))
    dst = torch.stack([torch.tensor(c[1] * c[0] @ c[2].T + c[3]) for c in cases])
    s, r, t = umeyama(src, dst)
    assert s.shape == (3,) and r.shape == (3, 3, 3) and t.shape == (3, 3)
    for k, (_, scale, rot, shift) in enumerate(cases):
        assert float(s[k]) == pytest.approx(scale, abs=1e-6)
        np.testing.assert_allclose(r[k].numpy(), rot, atol=1e-6)
        np.testing.assert_allclose(t[k].numpy(), shift, atol=1e-6)
    np.testing.assert_allclose(apply_similarity(src, s, r, t).numpy(), dst.numpy(), atol=1e-6)
