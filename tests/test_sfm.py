"""The Surrey Face Model loader against eos itself and against the files' own annotations."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tomllib

from voxface.errors import VoxfaceError
from voxface.face3d.loading import load_morphable_model
from voxface.face3d.sfm import JAW_TOP_DROP, SFM_MEASUREMENTS, load_sfm
from voxface.face3d.transforms import apply_similarity, umeyama

pytestmark = pytest.mark.shared_data

SFM_FILES = ("sfm_shape_3448.bin", "ibug_to_sfm.txt", "sfm_model_contours.json")
MAPPED = np.r_[8, 17:60, 61:64, 65:68]
"""The 50 landmarks (0-based) that ibug_to_sfm.txt maps: chin, brows, nose, eyes, lips."""


@pytest.fixture(scope="module")
def sfm_dir(shared_data) -> Path:
    folder = (shared_data / "sfm").resolve()
    if not all((folder / f).is_file() for f in SFM_FILES):
        pytest.skip(f"the Surrey Face Model files {SFM_FILES} are not in {folder}")
    return folder


@pytest.fixture(scope="module")
def sfm(sfm_dir):
    return load_sfm(sfm_dir)


def test_sizes(sfm):
    assert (sfm.n_vertices, sfm.n_shape, sfm.n_expression) == (3448, 63, 6)
    assert sfm.triangles.shape == (6736, 3) and sfm.units == "mm"


def test_reconstruction_equals_eos_samples(sfm, sfm_dir):
    import eos

    eos_model = eos.morphablemodel.load_model(str(sfm_dir / "sfm_shape_3448.bin"))
    blendshapes = eos.morphablemodel.load_blendshapes(str(sfm_dir / "expression_blendshapes_3448.bin"))
    rng = np.random.default_rng(0)
    for k in (63, 10):
        z = rng.normal(size=k).astype(np.float32)
        expected = np.asarray(eos_model.get_shape_model().draw_sample(list(z))).reshape(-1, 3)
        np.testing.assert_allclose(sfm.reconstruct(z), expected, atol=1e-3)
    with_expression = eos.morphablemodel.MorphableModel(
        eos_model.get_shape_model(), blendshapes, eos.morphablemodel.PcaModel())
    z, e = rng.normal(size=63).astype(np.float32), np.array([0.5, 0, 0.2, 0, 0, 1], np.float32)
    expected = np.asarray(with_expression.draw_sample(list(z), list(e), []).vertices)
    np.testing.assert_allclose(sfm.reconstruct(z, e), expected, atol=1e-3)


def test_mapped_landmarks_are_the_files_own(sfm, sfm_dir):
    table = tomllib.loads((sfm_dir / "ibug_to_sfm.txt").read_text())["landmark_mappings"]
    assert sorted(int(k) - 1 for k in table) == MAPPED.tolist()
    for ibug, vertex in table.items():
        assert sfm.landmarks68[int(ibug) - 1] == vertex


def test_landmarks_are_anatomically_placed(sfm):
    p = sfm.mean[sfm.landmarks68]
    assert p[36, 0] < p[39, 0] < 0 < p[42, 0] < p[45, 0]  # right eye at -x, left eye at +x
    assert (p[0:8, 0] < 0).all() and (p[9:17, 0] > 0).all()
    # the jaw runs down to the chin (the outline passes 2 mm below the chin landmark, hence 0-7 / 9-16)
    assert (np.diff(p[0:8, 1]) < 0).all() and (np.diff(p[9:17, 1]) > 0).all()
    assert abs(p[7, 1] - p[8, 1]) < 2 and abs(p[9, 1] - p[8, 1]) < 2
    assert np.argmax(p[:, 2]) == 30 and p[30, 2] > sfm.mean[:, 2].max() - 1.0  # nose tip most frontal
    assert p[48, 0] < p[60, 0] < p[62, 0] < p[64, 0] < p[54, 0]  # inner mouth corners inside outer ones
    eye_y, chin_y = p[[36, 45], 1].mean(), p[8, 1]
    top = eye_y - JAW_TOP_DROP * (eye_y - chin_y)
    assert abs(p[0, 1] - top) < 6 and abs(p[16, 1] - top) < 6  # within the contour's vertex spacing


def test_regions_disjoint_non_empty_and_sided(sfm):
    every = np.concatenate(list(sfm.regions.values()))
    assert len(every) == len(np.unique(every)) and all(len(r) for r in sfm.regions.values())
    assert (sfm.mean[sfm.regions["left_eye"], 0] > 0).all()
    assert (sfm.mean[sfm.regions["right_cheek"], 0] < 0).all()


def test_measurement_pairs_follow_the_stated_transfer_rule(sfm, shared_data):
    topology = shared_data / "bfm_topology"
    if not (topology / "u_shp.npy").is_file():
        pytest.skip(f"no 3DDFA BFM mean in {topology} to re-derive the SFM measurement pairs")
    from voxface.face3d.bfm import CMP_MEASUREMENTS

    bfm = (np.load(topology / "u_shp.npy") + np.load(topology / "u_exp.npy")).reshape(-1, 3).astype(float)
    bfm_landmarks = np.load(topology / "keypoints_sim.npy")[::3] // 3
    fit = umeyama(bfm[bfm_landmarks[MAPPED]], sfm.mean[sfm.landmarks68[MAPPED]])
    moved = apply_similarity(bfm, *fit)
    nearest = lambda v: int(np.argmin(np.linalg.norm(sfm.mean - moved[v], axis=1)))  # noqa: E731
    assert {k: (nearest(i), nearest(j)) for k, (i, j) in CMP_MEASUREMENTS.items()} == SFM_MEASUREMENTS
    assert sfm.measurements == SFM_MEASUREMENTS


def test_blendshapes_are_optional(sfm_dir, tmp_path):
    for name in SFM_FILES:
        (tmp_path / name).symlink_to(sfm_dir / name)
    model = load_sfm(tmp_path / "sfm_shape_3448.bin")
    assert model.n_expression == 0 and model.n_shape == 63


def test_missing_files_name_what_is_needed(sfm_dir, tmp_path):
    with pytest.raises(VoxfaceError, match="sfm_shape_3448.bin"):
        load_sfm(tmp_path)
    (tmp_path / "sfm_shape_3448.bin").symlink_to(sfm_dir / "sfm_shape_3448.bin")
    with pytest.raises(VoxfaceError, match="ibug_to_sfm.txt"):
        load_sfm(tmp_path)


def test_specs_load_the_sfm(sfm, sfm_dir):
    model = load_morphable_model(f"sfm:{sfm_dir / 'sfm_shape_3448.bin'}")
    np.testing.assert_array_equal(model.mean, sfm.mean)
    np.testing.assert_array_equal(model.landmarks68, sfm.landmarks68)
    with pytest.raises(VoxfaceError, match="sfm:/no/such/folder.*accepted forms.*bfm2009:PATH"):
        load_morphable_model("sfm:/no/such/folder")
