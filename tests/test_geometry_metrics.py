"""ARE, gain, NME and coherence (voxface.evaluate.geometry) against closed forms and the BFM mean face."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from voxface.errors import VoxfaceError
from voxface.evaluate.geometry import (
    absolute_ratio_error,
    coherence,
    gain,
    measurement_distances,
    measurement_ratios,
    nme,
    scale_to_reference_oicd,
    within_between_distances,
)
from voxface.paths import shared_data_dir

PAIRS = {"OICD": (0, 1), "ER": (2, 3), "FR": (4, 5), "MR": (6, 7), "CR": (8, 9)}
N_VERTICES = 80
LANDMARKS = np.arange(10, 78)  # 68 landmark vertices


def random_face(seed: int = 0) -> np.ndarray:
    """(80, 3) float64 points with a well-separated OICD pair."""
    vertices = np.random.default_rng(seed).normal(size=(N_VERTICES, 3))
    vertices[0], vertices[1] = (-1.0, 0.2, 0.1), (1.0, 0.25, 0.05)
    return vertices


def rotation_z(degrees: float) -> np.ndarray:
    c, s = np.cos(np.radians(degrees)), np.sin(np.radians(degrees))
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


# ------------------------------------------------------------------------------------ distances, ratios
def test_measurement_distances_are_batched_euclidean_distances():
    meshes = np.stack([random_face(s) for s in range(6)]).reshape(2, 3, N_VERTICES, 3)
    distances = measurement_distances(meshes, PAIRS)
    for name, (i, j) in PAIRS.items():
        assert distances[name].shape == (2, 3)
        for a, b in itertools.product(range(2), range(3)):
            expected = np.sqrt(np.sum((meshes[a, b, i] - meshes[a, b, j]) ** 2))
            assert distances[name][a, b] == pytest.approx(expected, rel=1e-12)


def test_stretching_x_changes_each_ratio_by_its_closed_form():
    face = random_face(1)
    k = 1.3
    stretched = face * np.array([k, 1.0, 1.0])
    oicd = face[1] - face[0]
    ratios = measurement_ratios(stretched, PAIRS)
    for name in ("ER", "FR", "MR", "CR"):
        i, j = PAIRS[name]
        d = face[i] - face[j]
        expected = np.sqrt((k * d[0]) ** 2 + d[1] ** 2 + d[2] ** 2) / np.sqrt(
            (k * oicd[0]) ** 2 + oicd[1] ** 2 + oicd[2] ** 2)
        assert ratios[name] == pytest.approx(expected, rel=1e-12)
    are = absolute_ratio_error(stretched[None, None], face[None], PAIRS)
    reference = measurement_ratios(face, PAIRS)
    for name in ("ER", "FR", "MR", "CR"):
        assert are.per_ratio[name] == pytest.approx(abs(ratios[name] - reference[name]), rel=1e-12)


def test_missing_measurement_raises():
    with pytest.raises(VoxfaceError, match="OICD"):
        measurement_ratios(random_face(), {k: v for k, v in PAIRS.items() if k != "OICD"})
    with pytest.raises(VoxfaceError, match="vertices"):
        measurement_distances(random_face(), {"OICD": (0, N_VERTICES)})


@pytest.mark.shared_data
def test_ratios_on_the_bfm_mean_face_match_the_published_values():
    bfm = shared_data_dir() / "bfm_topology"
    if not (bfm / "u_shp.npy").is_file():
        pytest.skip(f"BFM topology data not found under {bfm} (set VOXFACE_SHARED_DATA)")
    u_shp = np.load(bfm / "u_shp.npy").reshape(-1, 3)
    u_exp = np.load(bfm / "u_exp.npy").reshape(-1, 3)
    cmp_pairs = {"OICD": (2217, 14607), "ER": (20636, 34153), "FR": (1678, 42117),
                 "CR": (2294, 13635), "MR": (2130, 15003)}
    mean_face = u_shp + u_exp
    assert measurement_distances(mean_face, cmp_pairs)["OICD"] == pytest.approx(93960.6, abs=0.1)
    with_expression = measurement_ratios(mean_face, cmp_pairs)
    shape_only = measurement_ratios(u_shp, cmp_pairs)
    published = {"FR": (1.1594, 1.1587), "CR": (1.0044, 0.9989), "ER": (1.4108, 1.4091),
                 "MR": (1.1104, 1.1095)}
    for name, (on_mean, on_shape) in published.items():
        assert with_expression[name] == pytest.approx(on_mean, abs=6e-5)
        assert shape_only[name] == pytest.approx(on_shape, abs=6e-5)


# ------------------------------------------------------------------------------------ ARE
def test_similar_meshes_have_zero_are():
    face = random_face(2)
    moved = 2.7 * face @ rotation_z(25).T + np.array([3.0, -1.0, 0.5])
    result = absolute_ratio_error(np.stack([face, moved])[None], face[None], PAIRS)
    assert result.mean == pytest.approx(0.0, abs=1e-12)
    assert np.allclose(result.per_identity, 0.0, atol=1e-12)


def with_er_distance_scaled(face: np.ndarray, factor: float) -> np.ndarray:
    """Move the second ER vertex along the ER line so that the ER distance is multiplied by factor."""
    i, j = PAIRS["ER"]
    out = face.copy()
    out[j] = face[i] + factor * (face[j] - face[i])
    return out


def test_are_averages_per_identity_first_with_ragged_utterances():
    faces = [random_face(3), random_face(4)]
    er = [measurement_ratios(f, PAIRS)["ER"] for f in faces]
    preds = [
        np.stack([with_er_distance_scaled(faces[0], 1.2)]),                     # error 0.2 ER0
        np.stack([faces[1], faces[1], with_er_distance_scaled(faces[1], 0.4)]),  # errors 0, 0, 0.6 ER1
    ]
    result = absolute_ratio_error(preds, np.stack(faces), PAIRS)
    identity_errors = [0.2 * er[0], 0.6 * er[1] / 3]
    assert result.per_identity.shape == (2, 4)
    assert result.per_identity[:, 0] == pytest.approx(identity_errors, rel=1e-9)
    assert result.per_ratio["ER"] == pytest.approx(np.mean(identity_errors), rel=1e-9)
    pooled = (0.2 * er[0] + 0.6 * er[1]) / 4
    assert abs(result.per_ratio["ER"] - pooled) > 1e-3
    for name in ("FR", "MR", "CR"):
        assert result.per_ratio[name] == pytest.approx(0.0, abs=1e-12)
    assert result.mean == pytest.approx(np.mean(identity_errors) / 4, rel=1e-9)
    assert result.as_dict() == {**result.per_ratio, "mean": result.mean}


def test_are_array_and_list_inputs_agree():
    rng = np.random.default_rng(5)
    refs = np.stack([random_face(s) for s in range(3)])
    preds = refs[:, None] + 0.05 * rng.normal(size=(3, 2, N_VERTICES, 3))
    as_array = absolute_ratio_error(preds, refs, PAIRS)
    as_list = absolute_ratio_error(list(preds), refs, PAIRS)
    assert np.array_equal(as_array.per_identity, as_list.per_identity)
    with pytest.raises(VoxfaceError, match="identities"):
        absolute_ratio_error(preds[:2], refs, PAIRS)


def test_gain_reproduces_table_1():
    assert round(gain(0.0241, 0.0302), 3) == -0.202   # CMP-supervised vs Base-2
    assert round(gain(0.0251, 0.0302), 3) == -0.169   # CMP-unsupervised vs Base-2
    assert gain(0.0302, 0.0302) == 0.0
    assert gain(0.0311, 0.0302) > 0                    # a worse method has a positive gain
    assert np.allclose(gain(np.array([0.5, 1.5]), 1.0), [-0.5, 0.5])
    with pytest.raises(VoxfaceError):
        gain(0.1, 0.0)


# ------------------------------------------------------------------------------------ NME
def face_sizes(ref: np.ndarray) -> dict[str, float]:
    def size(points):
        width = points[:, 0].max() - points[:, 0].min()
        height = points[:, 1].max() - points[:, 1].min()
        return np.sqrt(width * height)

    return {"mesh": size(ref), "landmarks": size(ref[LANDMARKS])}


@pytest.mark.parametrize("box", ["mesh", "landmarks"])
def test_nme_of_a_translated_mesh_is_the_translation_over_face_size(box):
    ref = random_face(6)
    shift = np.array([0.03, -0.04, 0.12])
    pred = ref + shift  # OICD unchanged, so the scaling is the identity
    size = face_sizes(ref)[box]
    cmp = nme(pred, ref, LANDMARKS, PAIRS["OICD"], "cmp", box=box)
    per_point = nme(pred, ref, LANDMARKS, PAIRS["OICD"], "per_point", box=box)
    assert cmp == pytest.approx(np.sqrt(68) * 0.13 / size, rel=1e-10)
    assert per_point == pytest.approx(0.13 / size, rel=1e-10)


def test_nme_scales_about_the_origin_and_does_not_align():
    ref = random_face(7)
    size = face_sizes(ref)["mesh"]
    assert nme(3.0 * ref, ref, LANDMARKS, PAIRS["OICD"]) == pytest.approx(0.0, abs=1e-12)
    turned = ref @ rotation_z(180).T  # (-x, -y, z): same OICD, landmarks moved by (2x, 2y, 0)
    expected_cmp = 2 * np.sqrt(np.sum(ref[LANDMARKS, :2] ** 2)) / size
    expected_point = np.mean(2 * np.linalg.norm(ref[LANDMARKS, :2], axis=1)) / size
    assert nme(turned, ref, LANDMARKS, PAIRS["OICD"], "cmp") == pytest.approx(expected_cmp, rel=1e-9)
    assert nme(turned, ref, LANDMARKS, PAIRS["OICD"], "per_point") == pytest.approx(expected_point, rel=1e-9)


def test_nme_broadcasts_predictions_against_one_reference():
    ref = random_face(8)
    preds = ref + 0.1 * np.random.default_rng(8).normal(size=(2, 3, N_VERTICES, 3))
    batched = nme(preds, ref, LANDMARKS, PAIRS["OICD"], "per_point")
    assert batched.shape == (2, 3)
    assert batched[1, 2] == pytest.approx(nme(preds[1, 2], ref, LANDMARKS, PAIRS["OICD"], "per_point"))
    scaled = scale_to_reference_oicd(preds, ref, PAIRS["OICD"])
    assert np.allclose(measurement_distances(scaled, PAIRS)["OICD"], np.linalg.norm(ref[0] - ref[1]))
    with pytest.raises(VoxfaceError, match="convention"):
        nme(preds, ref, LANDMARKS, PAIRS["OICD"], "rmse")


# ------------------------------------------------------------------------------------ coherence
def test_coherence_of_identical_and_of_symmetric_offsets():
    face = random_face(9)
    assert coherence(np.stack([face] * 4)) == (0.0, 0.0)
    a = 0.3
    offsets = np.array([[a, 0, 0], [0, 0, 0], [-a, 0, 0]])
    mean, std = coherence(face[None] + offsets[:, None, :])  # distances a, 0, a at every vertex
    assert mean == pytest.approx(2 * a / 3, rel=1e-12)
    assert std == pytest.approx(np.sqrt(2) * a / 3, rel=1e-9)


def test_within_between_distances_closed_form():
    base = random_face(10)
    a, b = 0.2, 0.5
    ex, ey = np.array([a, 0.0, 0.0]), np.array([0.0, b, 0.0])
    preds = np.stack([np.stack([base, base + ex]), np.stack([base + ey, base + ey + ex])])
    within, between = within_between_distances(preds)
    assert within == pytest.approx(a, rel=1e-12)
    assert between == pytest.approx((b + np.hypot(a, b)) / 2, rel=1e-12)


def test_within_between_distances_match_a_brute_force_loop():
    preds = np.random.default_rng(11).normal(size=(3, 4, 25, 3))
    within, between = within_between_distances(preds)
    same, different = [], []
    for (n, u), (m, w) in itertools.combinations(itertools.product(range(3), range(4)), 2):
        d = np.mean([np.linalg.norm(preds[n, u, v] - preds[m, w, v]) for v in range(25)])
        (same if n == m else different).append(d)
    assert within == pytest.approx(np.mean(same), rel=1e-10)
    assert between == pytest.approx(np.mean(different), rel=1e-10)
    with pytest.raises(VoxfaceError):
        within_between_distances(preds[:1])
