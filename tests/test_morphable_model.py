"""The MorphableModel type on a small hand-made model: reconstruction, truncation, storage, checks."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from voxface.errors import VoxfaceError
from voxface.face3d import MEASUREMENTS, REGIONS, MorphableModel


def small_model(v: int = 80, k: int = 5, e: int = 2) -> MorphableModel:
    rng = np.random.default_rng(0)
    return MorphableModel(
        name="small", mean=rng.normal(size=(v, 3)).astype(np.float32),
        shape_basis=rng.normal(size=(3 * v, k)).astype(np.float32),
        shape_std=np.linspace(2, 1, k).astype(np.float32),
        triangles=np.array([[0, 1, 2], [2, 3, 0]], np.int32), landmarks68=np.arange(68),
        measurements={m: (i, i + 1) for i, m in enumerate(MEASUREMENTS)},
        regions={r: np.array([70 + i]) for i, r in enumerate(REGIONS)},
        expression_basis=rng.normal(size=(3 * v, e)).astype(np.float32),
        expression_std=np.ones(e, np.float32), gender_offset=np.ones(k, np.float32))


def test_reconstruct_is_mean_plus_scaled_basis():
    m = small_model()
    z = np.array([1.0, 0, 0, 0, 0], np.float32)
    expected = m.mean + (m.shape_basis[:, 0] * m.shape_std[0]).reshape(-1, 3)
    np.testing.assert_allclose(m.reconstruct(z), expected, rtol=1e-6)
    # fewer coefficients than components: the rest are zero
    np.testing.assert_allclose(m.reconstruct(z[:2]), expected, rtol=1e-6)


def test_numpy_and_torch_agree_batched():
    m = small_model()
    z = np.random.default_rng(1).normal(size=(4, 3, 5)).astype(np.float32)
    e = np.random.default_rng(2).normal(size=(4, 3, 2)).astype(np.float32)
    out_np = m.reconstruct(z, e)
    out_t = m.reconstruct(torch.from_numpy(z), torch.from_numpy(e))
    assert out_np.shape == (4, 3, 80, 3) and isinstance(out_t, torch.Tensor)
    np.testing.assert_allclose(out_t.numpy(), out_np, rtol=1e-5, atol=1e-5)


def test_torch_reconstruction_has_gradients():
    m = small_model()
    z = torch.zeros(2, 5, requires_grad=True)
    m.reconstruct(z).pow(2).sum().backward()
    assert z.grad is not None and torch.isfinite(z.grad).all()


def test_too_many_coefficients_is_a_clear_error():
    with pytest.raises(VoxfaceError, match="5 shape components; got 6"):
        small_model().reconstruct(np.zeros(6))


def test_truncated_and_npz_round_trip():
    m = small_model().truncated(3, 1)
    assert (m.n_shape, m.n_expression) == (3, 1) and m.gender_offset.shape == (3,)
    back = MorphableModel.from_npz(io.BytesIO(m.to_npz_bytes()))
    z = np.array([0.5, -1.0, 2.0], np.float32)
    np.testing.assert_allclose(back.reconstruct(z, [1.0]), m.reconstruct(z, [1.0]), rtol=1e-6, atol=1e-6)
    assert back.measurements == m.measurements and back.name == "small"
    assert all(np.array_equal(back.regions[r], m.regions[r]) for r in REGIONS)


def test_inconsistent_model_is_refused():
    good = small_model()
    with pytest.raises(VoxfaceError, match="out of range"):
        MorphableModel(**{**good.__dict__, "landmarks68": np.full(68, 10_000)})
    with pytest.raises(VoxfaceError, match="measurements"):
        MorphableModel(**{**good.__dict__, "measurements": {"OICD": (0, 1)}})
