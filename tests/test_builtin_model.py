"""The built-in morphable model: invariants, anthropometric components, landmarks, ratios, regions."""

from __future__ import annotations

import numpy as np
import pytest

from voxface.face3d import MEASUREMENTS, REGIONS, MorphableModel
from voxface.face3d.builtin import IBUG_MIRROR, build_builtin_model
from voxface.face3d.render import vertex_normals
from voxface.paths import shared_data_dir

BFM_RATIOS = {"FR": 1.1594, "CR": 1.0044, "ER": 1.4108, "MR": 1.1104}
"""Ratios to the outer-interocular distance on the 3DDFA BFM mean face (shared/data/README.md)."""


@pytest.fixture(scope="module")
def model() -> MorphableModel:
    return build_builtin_model()


def _distance(vertices, model, a: str, b: str) -> float:
    points = model.meta["points"]
    return float(np.linalg.norm(vertices[points[a]] - vertices[points[b]]))


def _face_normals(vertices, triangles):
    n = np.cross(vertices[triangles[:, 1]] - vertices[triangles[:, 0]],
                 vertices[triangles[:, 2]] - vertices[triangles[:, 0]])
    return n / np.linalg.norm(n, axis=1, keepdims=True)


def test_sizes_types_and_fields(model):
    assert model.name == "builtin" and model.units == "mm"
    assert 3000 <= model.n_vertices <= 6500
    assert model.n_shape >= 20 and model.n_expression >= 4
    assert model.mean.dtype == model.shape_basis.dtype == np.float32
    assert model.albedo.shape == (model.n_vertices, 3)
    assert model.albedo.min() >= 0.0 and model.albedo.max() <= 1.0
    assert model.gender_offset.shape == (model.n_shape,)
    assert np.all(model.shape_std > 0) and np.all(model.expression_std > 0)
    assert set(model.measurements) == set(MEASUREMENTS) and set(model.regions) == set(REGIONS)
    # every vertex is used, no degenerate triangle
    assert np.array_equal(np.unique(model.triangles), np.arange(model.n_vertices))
    areas = np.linalg.norm(np.cross(
        model.mean[model.triangles[:, 1]] - model.mean[model.triangles[:, 0]],
        model.mean[model.triangles[:, 2]] - model.mean[model.triangles[:, 0]]), axis=1) / 2
    assert areas.min() > 1e-3


def test_deterministic(model):
    again = build_builtin_model()
    for key in ("mean", "shape_basis", "shape_std", "triangles", "landmarks68", "albedo",
                "expression_basis", "gender_offset"):
        assert np.array_equal(getattr(model, key), getattr(again, key)), key


def test_roundtrips_through_npz(model, tmp_path):
    path = tmp_path / "builtin.npz"
    path.write_bytes(model.to_npz_bytes())
    loaded = MorphableModel.from_npz(path)
    assert np.array_equal(loaded.shape_basis, model.shape_basis)
    assert loaded.measurements == model.measurements


def test_each_component_changes_its_measurement_by_one_sd(model):
    """Closed form: +1 on coefficient k moves its two anthropometric points apart by SD_k mm."""
    for k, component in enumerate(model.meta["components"]):
        a, b = component["measurement"]
        z = np.zeros(model.n_shape, dtype=np.float32)
        z[k] = 1.0
        change = _distance(model.reconstruct(z), model, a, b) - _distance(model.mean, model, a, b)
        assert change == pytest.approx(model.shape_std[k], abs=2e-3), component["name"]
        assert model.shape_std[k] == pytest.approx(component["sd_mm"])


def test_components_are_smooth(model):
    """+-3 SD of any component folds no triangle over (face normals keep their direction)."""
    before = _face_normals(model.mean, model.triangles)
    for k in range(model.n_shape):
        for z_k in (-3.0, 3.0):
            z = np.zeros(model.n_shape, dtype=np.float32)
            z[k] = z_k
            after = _face_normals(model.reconstruct(z), model.triangles)
            assert (before * after).sum(axis=1).min() > 0.0, model.meta["components"][k]["name"]


def test_gender_offset_makes_men_larger(model):
    names = [c["name"] for c in model.meta["components"]]
    for name in ("head_breadth", "face_width", "face_height", "nose_width", "mouth_width",
                 "mandible_width"):
        assert model.gender_offset[names.index(name)] > 0.5, name
    man = model.reconstruct(model.gender_offset / 2)
    woman = model.reconstruct(-model.gender_offset / 2)
    assert _distance(man, model, "eu_R", "eu_L") > _distance(woman, model, "eu_R", "eu_L") + 5
    assert _distance(man, model, "n", "gn") > _distance(woman, model, "n", "gn") + 5
    # each offset is (male mean - female mean) / mean of the two SDs
    for offset, c in zip(model.gender_offset, model.meta["components"]):
        expected = (c["male"][0] - c["female"][0]) / ((c["male"][1] + c["female"][1]) / 2)
        assert offset == pytest.approx(expected, rel=1e-5)


def test_mean_face_measurements_are_adult_sized(model):
    """Every measurement of the mean face lies within 3 SD of the Farkas sex-averaged mean."""
    for c in model.meta["components"]:
        target = (c["male"][0] + c["female"][0]) / 2
        value = _distance(model.mean, model, *c["measurement"])
        assert abs(value - target) < 3 * c["sd_mm"], (c["name"], value, target)


def test_landmarks_are_mirror_symmetric_and_anatomical(model):
    marks = model.mean[model.landmarks68]
    assert len(set(model.landmarks68.tolist())) == 68
    mirrored = marks[IBUG_MIRROR] * np.array([-1.0, 1.0, 1.0])
    assert np.allclose(mirrored, marks, atol=1e-3)
    assert np.all(marks[36:42, 0] < 0) and np.all(marks[42:48, 0] > 0)  # 36-41: subject's right
    assert np.all(marks[0:8, 0] < 0) and np.all(marks[17:22, 0] < 0)
    assert np.argmax(marks[:, 2]) == 30  # nose tip is the most forward landmark
    assert np.argmin(marks[:, 1]) == 8  # chin is the lowest
    assert marks[17:27, 1].min() > marks[36:48, 1].max()  # brows above eyes
    assert marks[27, 1] > marks[30, 1] > marks[33, 1] > marks[51, 1] > marks[57, 1]
    assert model.measurements["OICD"] == (model.landmarks68[36], model.landmarks68[45])


def test_measurement_ratios_match_the_bfm_mean(model):
    pairs = {k: model.mean[list(v)] for k, v in model.measurements.items()}
    oicd = np.linalg.norm(np.subtract(*pairs["OICD"]))
    for name, bfm in BFM_RATIOS.items():
        ratio = np.linalg.norm(np.subtract(*pairs[name])) / oicd
        assert abs(ratio / bfm - 1) < 0.10, (name, ratio, bfm)


def test_bfm_reference_ratios_from_shared_data():
    """The reference ratios above are what the real BFM mean gives (skips without shared data)."""
    folder = shared_data_dir() / "bfm_topology"
    if not (folder / "u_shp.npy").is_file():
        pytest.skip(f"no BFM mean face under {folder}")
    mean = (np.load(folder / "u_shp.npy") + np.load(folder / "u_exp.npy")).reshape(-1, 3)
    pairs = {"OICD": (2217, 14607), "ER": (20636, 34153), "FR": (1678, 42117),
             "CR": (2294, 13635), "MR": (2130, 15003)}
    dist = {k: np.linalg.norm(mean[i] - mean[j]) for k, (i, j) in pairs.items()}
    for name, expected in BFM_RATIOS.items():
        assert dist[name] / dist["OICD"] == pytest.approx(expected, abs=1e-3)


def test_regions_are_disjoint_nonempty_and_in_place(model):
    marks = model.mean[model.landmarks68]
    all_ix = np.concatenate(list(model.regions.values()))
    assert len(all_ix) == len(np.unique(all_ix))
    centre = {name: model.mean[ix].mean(axis=0) for name, ix in model.regions.items()}
    assert all(len(ix) > 50 for ix in model.regions.values())
    assert np.linalg.norm(centre["left_eye"][:2] - marks[42:48, :2].mean(0)) < 6
    assert np.linalg.norm(centre["right_eye"][:2] - marks[36:42, :2].mean(0)) < 6
    assert np.linalg.norm(centre["mouth"][:2] - marks[48:68, :2].mean(0)) < 6
    assert abs(centre["nose"][0]) < 1 and marks[33, 1] < centre["nose"][1] < marks[27, 1]
    for side, sign in (("left", 1), ("right", -1)):
        cheek = centre[f"{side}_cheek"]
        assert sign * cheek[0] > sign * marks[33 + 2 * sign, 0]  # lateral to the nostrils
        assert marks[57, 1] < cheek[1] < marks[40, 1]  # between lower lip and eyes


def test_triangles_face_outwards(model):
    normals = vertex_normals(model.mean, model.triangles)
    points = model.meta["points"]
    assert normals[points["prn"], 2] > 0.8
    assert normals[points["g"], 2] > 0.8
    assert normals[points["t_L"], 0] > 0.5 and normals[points["t_R"], 0] < -0.5
    assert normals[points["eu_L"], 0] > 0.5


def test_expressions_move_the_right_parts(model):
    names = model.meta["expressions"]
    points = model.meta["points"]
    zero = np.zeros(model.n_shape, dtype=np.float32)

    def moved(name, point):
        z = np.zeros(model.n_expression, dtype=np.float32)
        z[names.index(name)] = 1.0
        return model.reconstruct(zero, z)[points[point]] - model.mean[points[point]]

    jaw_std = model.expression_std[names.index("jaw_open")]
    assert np.linalg.norm(moved("jaw_open", "gn")) == pytest.approx(jaw_std, rel=1e-4)
    assert moved("jaw_open", "gn")[1] < -0.8 * jaw_std  # the chin drops
    assert np.linalg.norm(moved("jaw_open", "sto")) < 0.02 * jaw_std  # the upper lip stays
    assert moved("smile", "ch_L")[1] > 1.0 and moved("smile", "ch_L")[0] > 1.0
    assert moved("brow_raise", "brow24_L")[1] > 3.0
    assert np.linalg.norm(moved("brow_raise", "en_L")) < 0.1
    assert moved("lip_pucker", "ch_L")[0] < -3.0
