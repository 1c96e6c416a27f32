"""BFM loaders: the 3DDFA mean face against CMP's published ratios; bases, BFM 2009 and the
no-neck layout on small files written here in the original formats."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from voxface.errors import VoxfaceError
from voxface.face3d.bfm import CMP_MEASUREMENTS, load_3ddfa, load_bfm2009
from voxface.face3d.loading import load_morphable_model

CMP_RATIOS = {  # ../shared/data/README.md: ratio to OICD on u_shp + u_exp, and on u_shp alone
    "FR": (1.1594, 1.1587), "CR": (1.0044, 0.9989), "ER": (1.4108, 1.4091), "MR": (1.1104, 1.1095)}
TOPOLOGY_FILES = ("u_shp.npy", "u_exp.npy", "keypoints_sim.npy", "tri_53215.mat")
STATS = "param_mean_std_62d_120x120.pkl"


@pytest.fixture(scope="module")
def topology(shared_data) -> Path:
    folder = (shared_data / "bfm_topology").resolve()
    if not all((folder / f).is_file() for f in TOPOLOGY_FILES):
        pytest.skip(f"the 3DDFA BFM files {TOPOLOGY_FILES} are not in {folder}")
    return folder


@pytest.fixture(scope="module")
def mean_only(topology):
    return load_3ddfa(topology)


def u_of(topology: Path, expression: bool = True) -> np.ndarray:
    u = np.load(topology / "u_shp.npy") + (np.load(topology / "u_exp.npy") if expression else 0)
    return u.reshape(-1, 3).astype(np.float64)


def ratios(vertices: np.ndarray, pairs: dict) -> dict[str, float]:
    length = {k: np.linalg.norm(vertices[i] - vertices[j]) for k, (i, j) in pairs.items()}
    return {k: round(float(length[k] / length["OICD"]), 4) for k in CMP_RATIOS}


def faces_camera(vertices: np.ndarray, triangles: np.ndarray) -> bool:
    a, b, c = (vertices[triangles[:, k]].astype(np.float64) for k in range(3))
    return np.cross(b - a, c - a)[:, 2].sum() > 0


def orthonormal(rows: int, columns: int, seed: int) -> np.ndarray:
    return np.linalg.qr(np.random.default_rng(seed).normal(size=(rows, columns)))[0].astype(np.float32)


# --------------------------------------------------------------------------- the real mean face
@pytest.mark.shared_data
def test_mean_face_reproduces_cmp_ratios(mean_only, topology):
    oicd = np.linalg.norm(np.subtract(*mean_only.mean[list(mean_only.measurements["OICD"])]))
    assert oicd == pytest.approx(93960.6, abs=0.05)
    assert mean_only.measurements == CMP_MEASUREMENTS
    assert ratios(mean_only.mean, mean_only.measurements) == {k: v[0] for k, v in CMP_RATIOS.items()}
    shape_only = u_of(topology, expression=False)
    assert ratios(shape_only, CMP_MEASUREMENTS) == {k: v[1] for k, v in CMP_RATIOS.items()}


@pytest.mark.shared_data
def test_mean_face_landmarks_triangles_and_regions(mean_only, topology):
    assert mean_only.landmarks68.tolist() == (np.load(topology / "keypoints_sim.npy")[::3] // 3).tolist()
    assert mean_only.landmarks68[:4].tolist() == [21873, 22149, 21653, 21036]
    assert (mean_only.n_vertices, mean_only.n_shape, mean_only.n_expression) == (53215, 0, 0)
    original = scipy.io.loadmat(topology / "tri_53215.mat")["tri"].T - 1
    assert mean_only.triangles.shape == original.shape == (105840, 3)
    np.testing.assert_array_equal(np.sort(mean_only.triangles, 1), np.sort(original, 1))
    assert faces_camera(mean_only.mean, mean_only.triangles) and not faces_camera(mean_only.mean, original)
    every = np.concatenate(list(mean_only.regions.values()))
    assert len(every) == len(np.unique(every)) and all(len(r) > 500 for r in mean_only.regions.values())


@pytest.mark.shared_data
def test_specs_reach_the_topology_folder(mean_only, topology):
    for spec in ("bfm-topology", f"bfm-topology:{topology}", f"3ddfa:{topology}"):
        np.testing.assert_array_equal(load_morphable_model(spec).mean, mean_only.mean)


# --------------------------------------------------------------------------- 3DDFA bases
def write_3ddfa_folder(folder: Path, topology: Path, basis_names, stats_name, stats: bool = True):
    folder.mkdir()
    for name in TOPOLOGY_FILES:
        (folder / name).symlink_to(topology / name)
    n = 3 * 53215
    np.save(folder / basis_names[0], orthonormal(n, 3, seed=1))
    np.save(folder / basis_names[1], orthonormal(n, 2, seed=2))
    if stats:
        with open(topology / STATS, "rb") as f:
            table = pickle.load(f)
        keys = ("mean", "std") if stats_name == STATS else ("param_mean", "param_std")
        with open(folder / stats_name, "wb") as f:
            pickle.dump(dict(zip(keys, (table["mean"], table["std"]))), f)
    return folder


@pytest.mark.shared_data
@pytest.mark.parametrize("basis_names, stats_name", [
    (("w_shp_sim.npy", "w_exp_sim.npy"), STATS), (("w_shp.npy", "w_exp.npy"), "param_whitening.pkl")])
def test_3ddfa_coefficients_are_the_whitened_parameters(tmp_path, topology, basis_names, stats_name):
    folder = write_3ddfa_folder(tmp_path / "3ddfa", topology, basis_names, stats_name)
    model = load_3ddfa(folder)
    assert (model.n_shape, model.n_expression) == (3, 2)
    with open(topology / STATS, "rb") as f:
        table = pickle.load(f)
    mean, std = table["mean"].astype(np.float64), table["std"].astype(np.float64)
    z, e = np.array([0.5, -1.0, 2.0]), np.array([1.0, -0.5])
    alpha_shp, alpha_exp = z * std[12:15] + mean[12:15], e * std[52:54] + mean[52:54]
    w_shp, w_exp = (np.load(folder / name).astype(np.float64) for name in basis_names)
    expected = u_of(topology).ravel() + w_shp @ alpha_shp + w_exp @ alpha_exp  # 3DDFA's own formula
    np.testing.assert_allclose(model.reconstruct(z, e), expected.reshape(-1, 3), rtol=1e-5, atol=1.0)


@pytest.mark.shared_data
def test_3ddfa_basis_without_statistics_is_refused(tmp_path, topology):
    folder = write_3ddfa_folder(tmp_path / "3ddfa", topology, ("w_shp.npy", "w_exp.npy"), STATS, stats=False)
    with pytest.raises(VoxfaceError, match="param_mean_std_62d_120x120.pkl"):
        load_3ddfa(folder)


@pytest.mark.shared_data
def test_noneck_layout_carries_cmp_pairs_over(tmp_path, topology):
    if not (topology / "noneck_indices_38365.npy").is_file():
        pytest.skip("no noneck_indices_38365.npy in the shared data")
    subset = np.load(topology / "noneck_indices_38365.npy").astype(np.int64)
    position = {int(v): i for i, v in enumerate(subset)}
    landmarks = np.load(topology / "keypoints_sim.npy")[::3] // 3
    keypoints = (3 * np.array([position[int(v)] for v in landmarks])[:, None] + np.arange(3)).ravel()
    n = 3 * len(subset)
    table = {"u": u_of(topology)[subset].reshape(-1, 1).astype(np.float32), "w_shp": orthonormal(n, 3, 3),
             "w_exp": orthonormal(n, 2, 4), "keypoints": keypoints, "tri": np.zeros((3, 1), np.int32)}
    folder = tmp_path / "v2"
    folder.mkdir()
    with open(folder / "bfm_noneck_v3.pkl", "wb") as f:
        pickle.dump(table, f)
    for name in ("tri_38365.pkl", "noneck_indices_38365.npy", STATS):
        (folder / name).symlink_to(topology / name)

    model = load_3ddfa(folder)
    assert (model.name, model.n_vertices, model.n_shape, model.n_expression) == ("bfm-noneck", 38365, 3, 2)
    np.testing.assert_array_equal(subset[model.landmarks68], landmarks)
    for name, (i, j) in CMP_MEASUREMENTS.items():
        mapped = tuple(int(v) for v in subset[list(model.measurements[name])])
        if name == "ER":  # CMP's left-ear vertex 34153 is not in the subset: its mirror partner stands in
            assert mapped[0] == i and mapped[1] != j
        else:
            assert mapped == (i, j)
    assert ratios(model.mean, model.measurements)["ER"] == pytest.approx(CMP_RATIOS["ER"][0], abs=0.01)


def test_3ddfa_folder_without_files_is_refused(tmp_path):
    with pytest.raises(VoxfaceError, match="u_shp.npy.*bfm_noneck_v3.pkl"):
        load_3ddfa(tmp_path)


# --------------------------------------------------------------------------- BFM 2009
@pytest.fixture(scope="module")
def fake_bfm2009(tmp_path_factory, topology):
    """A 01_MorphableModel.mat holding the 3DDFA mean at shuffled places among 275 extra vertices,
    2 components and the 3DDFA triangles (re-indexed, clockwise as in the file)."""
    rng = np.random.default_rng(5)
    u_shp = np.load(topology / "u_shp.npy").reshape(-1, 3).astype(np.float64)
    place = rng.permutation(53490)
    mean = np.empty((53490, 3))
    mean[place[:53215]] = u_shp
    mean[place[53215:]] = rng.uniform(-1, 1, size=(275, 3)) * 1e4 + [3e5, 0, 0]  # far from the face
    tl = place[scipy.io.loadmat(topology / "tri_53215.mat")["tri"].T - 1] + 1
    fields = {"shapeMU": mean.reshape(-1, 1), "shapePC": orthonormal(3 * 53490, 2, 6).astype(np.float64),
              "shapeEV": np.array([[3e5], [1e5]]), "tl": tl.astype(np.float64)}
    path = tmp_path_factory.mktemp("bfm2009") / "01_MorphableModel.mat"
    scipy.io.savemat(path, fields)
    return path, place, fields


@pytest.mark.shared_data
def test_bfm2009_loads_and_takes_annotations_from_the_3ddfa_topology(fake_bfm2009, topology):
    path, place, fields = fake_bfm2009
    model = load_bfm2009(path, topology=topology)
    assert (model.name, model.n_vertices, model.n_shape, model.units) == ("bfm2009", 53490, 2, "um")
    keypoints = np.load(topology / "keypoints_sim.npy")[::3] // 3
    np.testing.assert_array_equal(model.landmarks68, place[keypoints])
    assert model.measurements == {k: (int(place[i]), int(place[j])) for k, (i, j) in CMP_MEASUREMENTS.items()}
    assert ratios(model.mean, model.measurements) == {k: v[1] for k, v in CMP_RATIOS.items()}
    z = np.array([1.5, -0.5])
    expected = fields["shapeMU"].ravel() + fields["shapePC"] @ (z * fields["shapeEV"].ravel())
    np.testing.assert_allclose(model.reconstruct(z), expected.reshape(-1, 3), rtol=1e-6, atol=0.5)
    assert faces_camera(model.mean, model.triangles)
    default = load_morphable_model(f"bfm2009:{path}")  # finds ../shared/data/bfm_topology by itself
    np.testing.assert_array_equal(default.landmarks68, model.landmarks68)


@pytest.mark.shared_data
def test_bfm2009_refuses_a_topology_that_does_not_match(fake_bfm2009, topology, tmp_path):
    (tmp_path / "keypoints_sim.npy").symlink_to(topology / "keypoints_sim.npy")
    np.save(tmp_path / "u_shp.npy", np.load(topology / "u_shp.npy") + 10.0)
    with pytest.raises(VoxfaceError, match="not part of the BFM 2009 mean"):
        load_bfm2009(fake_bfm2009[0], topology=tmp_path)
    with pytest.raises(VoxfaceError, match="topology=FOLDER"):
        load_bfm2009(fake_bfm2009[0], topology=tmp_path / "empty")


def test_bfm2009_file_errors_are_clear(tmp_path):
    # a v7.3 header: 116 bytes of text, 8 of subsystem offset, version 0x0200, endianness "IM"
    header = b"MATLAB 7.3 MAT-file, HDF5 schema 1.00 .".ljust(116) + bytes(8) + b"\x00\x02IM"
    (tmp_path / "v73.mat").write_bytes(header + bytes(512))
    with pytest.raises(VoxfaceError, match="v7.3"):
        load_bfm2009(tmp_path / "v73.mat")
    partial = {"shapeMU": np.zeros((9, 1)), "shapePC": np.zeros((9, 1)), "tl": np.ones((1, 3))}
    scipy.io.savemat(tmp_path / "partial.mat", partial)
    with pytest.raises(VoxfaceError, match="shapeEV"):
        load_bfm2009(tmp_path / "partial.mat")
    (tmp_path / "text.mat").write_text("not a matlab file")
    with pytest.raises(VoxfaceError, match="text.mat"):
        load_bfm2009(tmp_path / "text.mat")
    with pytest.raises(VoxfaceError, match="not found"):
        load_bfm2009(tmp_path / "absent.mat")


@pytest.mark.parametrize("spec", ["bfm2017:x.h5", "bfm2009", "3ddfa", "builtin:extra", ""])
def test_unknown_specs_list_the_accepted_forms(spec):
    with pytest.raises(VoxfaceError, match="accepted forms: builtin, sfm, sfm:PATH, bfm2009:PATH"):
        load_morphable_model(spec)


def test_missing_spec_paths_name_the_spec(tmp_path):
    with pytest.raises(VoxfaceError, match=r"'3ddfa:.*absent'.*accepted forms"):
        load_morphable_model(f"3ddfa:{tmp_path / 'absent'}")
