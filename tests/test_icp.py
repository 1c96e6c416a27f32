"""Kabsch and the point-to-plane RMSE after ICP (voxface.evaluate.icp) on analytic surfaces."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh
from scipy.io import loadmat
from scipy.spatial.transform import Rotation

from voxface.errors import VoxfaceError
from voxface.evaluate.icp import batch_point_to_plane_rmse, kabsch, point_to_plane_rmse
from voxface.paths import shared_data_dir


def bumpy_height_field(n: int = 40, shift_x: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """(n*n, 3) vertices of z = 0.25 sin(2x) cos(1.5y) on an n x n grid of [-1, 1]^2 (x offset by
    shift_x), and the grid's (2(n-1)^2, 3) triangles."""
    x, y = np.meshgrid(np.linspace(-1, 1, n) + shift_x, np.linspace(-1, 1, n), indexing="ij")
    vertices = np.stack([x, y, 0.25 * np.sin(2 * x) * np.cos(1.5 * y)], axis=-1).reshape(-1, 3)
    index = np.arange(n * n).reshape(n, n)
    a, b, c, d = index[:-1, :-1], index[1:, :-1], index[1:, 1:], index[:-1, 1:]
    triangles = np.concatenate([np.stack([a, b, c], -1).reshape(-1, 3), np.stack([a, c, d], -1).reshape(-1, 3)])
    return vertices, triangles


def unit_sphere() -> tuple[np.ndarray, np.ndarray]:
    """Icosphere: (642, 3) vertices on the unit sphere and its (1280, 3) triangles."""
    mesh = trimesh.creation.icosphere(subdivisions=3, radius=1.0)
    return np.asarray(mesh.vertices), np.asarray(mesh.faces)


def quadrant_regions(vertices: np.ndarray) -> dict[str, np.ndarray]:
    x, y = vertices[:, 0], vertices[:, 1]
    return {
        "upper_left": np.flatnonzero((x < -0.3) & (y > 0.3)),
        "lower_right": np.flatnonzero((x > 0.3) & (y < -0.3)),
    }


RIGID = Rotation.from_rotvec(np.radians(10) * np.array([1.0, 2.0, 0.5]) / np.linalg.norm([1.0, 2.0, 0.5]))
SHIFT = np.array([0.3, -0.2, 1.5])


# ------------------------------------------------------------------------------------ kabsch
def test_kabsch_recovers_a_rigid_motion_and_agrees_with_scipy():
    rng = np.random.default_rng(0)
    source = rng.normal(size=(50, 3))
    rotation, translation = kabsch(source, RIGID.apply(source) + SHIFT)
    assert np.allclose(rotation, RIGID.as_matrix(), atol=1e-12)
    assert np.allclose(translation, SHIFT, atol=1e-12)
    noisy_target = RIGID.apply(source) + 0.1 * rng.normal(size=source.shape)
    rotation, _ = kabsch(source, noisy_target)
    scipy_rotation, _ = Rotation.align_vectors(
        noisy_target - noisy_target.mean(0), source - source.mean(0))
    assert np.allclose(rotation, scipy_rotation.as_matrix(), atol=1e-10)


def test_kabsch_never_returns_a_reflection():
    source = np.random.default_rng(1).normal(size=(30, 3))
    rotation, _ = kabsch(source, source * np.array([-1.0, 1.0, 1.0]))
    assert np.linalg.det(rotation) == pytest.approx(1.0)


# ------------------------------------------------------------------------------------ RMSE
def test_a_rigid_motion_is_undone():
    ref, triangles = bumpy_height_field()
    regions = quadrant_regions(ref)
    pred = RIGID.apply(ref) + SHIFT
    result = point_to_plane_rmse(pred, ref, triangles, regions)
    assert set(result) == {"holistic", "upper_left", "lower_right"}
    assert all(value < 1e-6 for value in result.values())


def test_scale_is_matched_by_rms_radius_or_taken_as_given():
    ref, triangles = bumpy_height_field()
    enlarged = 2.5 * RIGID.apply(ref) + SHIFT
    assert point_to_plane_rmse(enlarged, ref, triangles)["holistic"] < 1e-6
    assert point_to_plane_rmse(enlarged, ref, triangles, scale=1 / 2.5)["holistic"] < 1e-6
    assert point_to_plane_rmse(enlarged, ref, triangles, scale=1 / 2.0)["holistic"] > 1e-2


def test_a_sphere_pushed_along_its_normals_by_d_has_rmse_d():
    ref, triangles = unit_sphere()
    d = 0.02
    pred = RIGID.apply(ref * (1 + d)) + SHIFT  # every vertex moved by d along its exact normal
    result = point_to_plane_rmse(pred, ref, triangles, scale=1.0)
    assert result["holistic"] == pytest.approx(d, rel=0.01)


def test_icp_refines_an_alignment_that_correspondences_get_wrong():
    # The prediction samples the same surface on a grid shifted by 0.02: every predicted vertex
    # lies on the reference surface, but not on its corresponding vertex. Aligning by the vertex
    # correspondence alone leaves the surfaces apart; ICP slides them back together.
    ref, triangles = bumpy_height_field(n=40)
    pred, _ = bumpy_height_field(n=40, shift_x=0.02)
    correspondence_only = point_to_plane_rmse(pred, ref, triangles, scale=1.0, max_iterations=0)
    refined = point_to_plane_rmse(pred, ref, triangles, scale=1.0)
    assert correspondence_only["holistic"] > 2e-3
    assert refined["holistic"] < 0.05 * correspondence_only["holistic"]


def test_region_rmse_isolates_a_local_perturbation():
    # The cap z > 0.7 of the sphere is pushed out by d, beyond ICP's correspondence cut-off
    # (0.1 x RMS radius): ICP treats it as an outlier, registers the rest exactly, and the error
    # shows in the cap's region alone.
    ref, triangles = unit_sphere()
    regions = {"cap": np.flatnonzero(ref[:, 2] > 0.7), "bottom": np.flatnonzero(ref[:, 2] < -0.7),
               "side": np.flatnonzero(np.abs(ref[:, 0]) > 0.9)}
    d = 0.15
    pred = ref.copy()
    pred[regions["cap"]] *= 1 + d
    result = point_to_plane_rmse(RIGID.apply(pred) + SHIFT, ref, triangles, regions, scale=1.0)
    assert result["cap"] == pytest.approx(d, rel=0.02)
    assert result["bottom"] < 1e-6
    assert result["side"] < 1e-6
    fraction = len(regions["cap"]) / len(ref)
    assert result["holistic"] == pytest.approx(np.sqrt(fraction) * result["cap"], rel=1e-3)

    separate = point_to_plane_rmse(pred, ref, triangles, regions, scale=1.0, region_registration="per_region")
    assert separate["bottom"] < 1e-6 and separate["side"] < 1e-6
    assert 0 < separate["cap"] < 0.5 * result["cap"]  # registered alone, the cap moves towards the surface


def test_batch_matches_single_pairs_and_broadcasts_one_reference():
    ref, triangles = bumpy_height_field(n=20)
    regions = quadrant_regions(ref)
    noise = np.random.default_rng(2).normal(size=(3, *ref.shape))
    preds = ref + 0.01 * noise
    batch = batch_point_to_plane_rmse(preds, ref, triangles, regions)
    assert set(batch) == {"holistic", *regions} and batch["holistic"].shape == (3,)
    single = point_to_plane_rmse(preds[1], ref, triangles, regions)
    assert all(batch[key][1] == pytest.approx(single[key], rel=1e-9) for key in single)
    paired = batch_point_to_plane_rmse(preds, np.stack([ref] * 3), triangles, regions)
    assert np.allclose(paired["holistic"], batch["holistic"])
    with pytest.raises(VoxfaceError, match="references"):
        batch_point_to_plane_rmse(preds, np.stack([ref] * 2), triangles)


def test_bad_inputs_raise_voxface_errors():
    ref, triangles = bumpy_height_field(n=10)
    with pytest.raises(VoxfaceError, match="0-based"):
        point_to_plane_rmse(ref, ref, triangles + 1)
    with pytest.raises(VoxfaceError, match="topology"):
        point_to_plane_rmse(ref[:-1], ref, triangles)
    with pytest.raises(VoxfaceError, match="holistic"):
        point_to_plane_rmse(ref, ref, triangles, {"holistic": np.arange(5)})
    with pytest.raises(VoxfaceError, match="region 'nose'"):
        point_to_plane_rmse(ref, ref, triangles, {"nose": np.array([0, 1, 1000])})


@pytest.mark.shared_data
def test_the_bfm_mean_face_moved_rigidly_has_zero_rmse():
    bfm = shared_data_dir() / "bfm_topology"
    if not (bfm / "tri_53215.mat").is_file():
        pytest.skip(f"BFM topology data not found under {bfm} (set VOXFACE_SHARED_DATA)")
    ref = (np.load(bfm / "u_shp.npy") + np.load(bfm / "u_exp.npy")).reshape(-1, 3).astype(np.float64)
    triangles = loadmat(bfm / "tri_53215.mat")["tri"].T.astype(np.int64) - 1
    pred = RIGID.apply(ref) + 1e4 * SHIFT
    result = point_to_plane_rmse(pred, ref, triangles)
    assert result["holistic"] < 1e-6 * np.linalg.norm(ref[2217] - ref[14607])
