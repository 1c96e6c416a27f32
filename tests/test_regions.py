"""Face regions from landmarks, on a hand-drawn synthetic face whose geometry is known exactly."""

from __future__ import annotations

import numpy as np
import pytest

from voxface.errors import VoxfaceError
from voxface.face3d import REGIONS
from voxface.face3d.regions import (
    FEATURE_MARGIN,
    front_surface_mask,
    regions_from_landmarks,
    signed_distance_to_polygon,
)

GRID_STEP = 2.0


def cartoon_landmarks() -> np.ndarray:
    """(68, 2) an iBUG-68 layout drawn with simple curves, in mm; x = subject's left; eyes on the grid."""
    k = np.arange(17)
    jaw = np.stack([-72 * np.cos(np.pi * k / 16), 15 - 100 * np.sin(np.pi * k / 16)], 1)
    brows = [(x, 45.0) for x in np.linspace(-58, -18, 5)] + [(x, 45.0) for x in np.linspace(18, 58, 5)]
    nose = [(0, 28), (0, 18), (0, 8), (0, -2), (-12, -15), (-6, -17), (0, -18), (6, -17), (12, -15)]
    right_eye = [(-46, 28), (-38, 32), (-26, 32), (-18, 28), (-26, 24), (-38, 24)]
    left_eye = [(18, 28), (26, 32), (38, 32), (46, 28), (38, 24), (26, 24)]
    angles = np.pi - np.arange(12) * np.pi / 6
    outer_lip = np.stack([24 * np.cos(angles), -40 + 9 * np.sin(angles)], 1)
    inner_lip = [(-20, -40), (-8, -38), (0, -37.5), (8, -38), (20, -40), (8, -42), (0, -42.5), (-8, -42)]
    return np.vstack([jaw, brows, nose, right_eye, left_eye, outer_lip, inner_lip]).astype(np.float64)


def cartoon_face() -> tuple[np.ndarray, np.ndarray]:
    """(V, 3) a dome-shaped grid of vertices every 2 mm and (68,) its landmark vertices."""
    xs, ys = np.meshgrid(np.arange(-80, 81, GRID_STEP), np.arange(-100, 71, GRID_STEP))
    xy = np.stack([xs.ravel(), ys.ravel()], 1)
    z = 100 * np.sqrt(np.clip(1 - (xy[:, 0] / 95) ** 2 - ((xy[:, 1] + 15) / 130) ** 2, 0, None))
    vertices = np.column_stack([xy, z])
    d2 = ((cartoon_landmarks()[:, None, :] - xy[None]) ** 2).sum(-1)
    return vertices, d2.argmin(1)


def vertex_at(vertices: np.ndarray, x: float, y: float) -> int:
    hits = np.flatnonzero((vertices[:, 0] == x) & (vertices[:, 1] == y))
    return int(hits[np.argmax(vertices[hits, 2])])


@pytest.fixture(scope="module")
def face():
    vertices, landmarks = cartoon_face()
    return vertices, landmarks, regions_from_landmarks(vertices, landmarks)


def test_regions_are_named_disjoint_and_non_empty(face):
    _, _, regions = face
    assert list(regions) == list(REGIONS)
    every = np.concatenate(list(regions.values()))
    assert len(every) == len(np.unique(every))
    assert all(len(ix) > 0 and ix.dtype == np.int64 for ix in regions.values())


def test_left_and_right_are_the_subjects_own(face):
    vertices, _, regions = face
    for side, sign in (("left", 1), ("right", -1)):
        assert (np.sign(vertices[regions[f"{side}_eye"], 0]) == sign).all()
        assert (np.sign(vertices[regions[f"{side}_cheek"], 0]) == sign).all()


@pytest.mark.parametrize("x, y, region", [
    (-32, 28, "right_eye"), (32, 28, "left_eye"), (0, 10, "nose"), (0, -40, "mouth"),
    (-50, -10, "right_cheek"), (50, -10, "left_cheek"), (0, 60, None), (0, -70, None),
])
def test_known_points_fall_in_the_right_region(face, x, y, region):
    vertices, _, regions = face
    owner = [name for name, ix in regions.items() if vertex_at(vertices, x, y) in ix]
    assert owner == ([region] if region else [])


def test_eye_reaches_exactly_its_margin(face):
    # The eye's top edge runs at y = 32 for -38 <= x <= -26; the margin is 0.08 of the outer-eye-corner
    # distance (92 mm) = 7.36 mm, so y = 38 is in reach and y = 40 is not (that is forehead).
    vertices, _, regions = face
    assert FEATURE_MARGIN["right_eye"] * 92 == pytest.approx(7.36)
    assert vertex_at(vertices, -32, 38) in regions["right_eye"]
    assert vertex_at(vertices, -32, 40) not in np.concatenate(list(regions.values()))


def test_a_hidden_surface_joins_no_region():
    vertices, landmarks = cartoon_face()
    cheek = vertex_at(vertices, -50, -10)
    behind = vertices[cheek] - [0, 0, 30]
    regions = regions_from_landmarks(np.vstack([vertices, behind]), landmarks)
    assert len(vertices) not in np.concatenate(list(regions.values()))
    assert cheek in regions["right_cheek"]


def test_mirrored_landmarks_are_refused():
    vertices, landmarks = cartoon_face()
    with pytest.raises(VoxfaceError, match="left eye"):
        regions_from_landmarks(vertices * [-1, 1, 1], landmarks)


def test_signed_distance_to_a_square_and_an_l_shape():
    square = np.array([[0, 0], [1, 0], [1, 1], [0, 1]], float)
    points = np.array([[0.5, 0.5], [2, 0.5], [2, 2], [0.5, 0.9]])
    expected = [-0.5, 1, np.sqrt(2), -0.1]
    assert signed_distance_to_polygon(points, square) == pytest.approx(expected)
    l_shape = np.array([[0, 0], [2, 0], [2, 1], [1, 1], [1, 2], [0, 2]], float)
    notch_and_arm = np.array([[1.5, 1.5], [0.5, 1.5]])
    assert signed_distance_to_polygon(notch_and_arm, l_shape) == pytest.approx([0.5, -0.5])


def test_front_surface_keeps_the_front_layer_only():
    xy = np.stack(np.meshgrid(np.arange(5.0), np.arange(5.0)), -1).reshape(-1, 2) + 0.5
    front, back = np.column_stack([xy, np.zeros(25)]), np.column_stack([xy, np.full(25, -3.0)])
    mask = front_surface_mask(np.vstack([front, back]), cell=1.0, depth=1.0)
    assert mask[:25].all() and not mask[25:].any()
    assert front_surface_mask(np.vstack([front, back]), cell=1.0, depth=5.0).all()
