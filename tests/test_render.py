"""Headless rendering: the camera model, where things land, shading, depth, overlay and PNG output."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image

from voxface.errors import VoxfaceError
from voxface.face3d.render import (
    Camera,
    Light,
    framing_camera,
    project,
    render_mesh,
    render_overlay,
    save_png,
    vertex_normals,
)

SQUARE_TRIANGLES = np.array([[0, 1, 2], [0, 2, 3]])  # counter-clockwise seen from +z
FLAT_WHITE = Light(direction=(0.0, 0.0, 1.0), intensity=0.0, ambient=1.0)


def square(center=(0.0, 0.0, 0.0), half=5.0) -> np.ndarray:
    """(4, 3) corners of an axis-aligned square in a z = const plane, facing +z."""
    c = np.asarray(center, dtype=np.float64)
    return c + np.array([[-half, -half, 0], [half, -half, 0], [half, half, 0], [-half, half, 0]])


def rotation_y(degrees: float) -> np.ndarray:
    a = math.radians(degrees)
    return np.array([[math.cos(a), 0, math.sin(a)], [0, 1, 0], [-math.sin(a), 0, math.cos(a)]])


def coverage(image: np.ndarray) -> np.ndarray:
    """(H, W) fraction of each pixel covered by a white mesh on black."""
    return image[..., 0].astype(np.float64) / 255.0


def test_project_closed_form():
    camera = Camera(rotation=np.eye(3), scale=2.0, center=(10.0, 20.0), size=(40, 50))
    assert np.allclose(project(np.array([[1.0, 2.0, 3.0]]), camera), [[12.0, 16.0]])
    turned = Camera(rotation=rotation_y(90.0), scale=2.0, center=(10.0, 20.0), size=(40, 50))
    # +x (subject's left) turns away from the camera: it lands on the centre column
    assert np.allclose(project(np.array([[1.0, 0.0, 0.0]]), turned), [[10.0, 20.0]])
    batch = np.random.default_rng(0).normal(size=(2, 5, 3))
    assert project(batch, camera).shape == (2, 5, 2)


def test_framing_camera_centres_and_fills():
    points = np.array([[-10.0, -5.0, 0.0], [30.0, 15.0, 4.0]])
    camera = framing_camera(points, (100, 80), fill=0.5)
    uv = project(points, camera)
    assert np.allclose(uv.mean(axis=0), [(80 - 1) / 2, (100 - 1) / 2])
    assert np.ptp(uv[:, 0]) == pytest.approx(0.5 * 80)  # the wider extent fills half the width


def test_render_output_shape_and_dtype():
    camera = Camera(rotation=np.eye(3), scale=2.0, center=(30.0, 20.0), size=(48, 64))
    image = render_mesh(square(), SQUARE_TRIANGLES, camera=camera)
    assert image.shape == (48, 64, 3) and image.dtype == np.uint8
    framed = render_mesh(square(), SQUARE_TRIANGLES, size=32)
    assert framed.shape == (32, 32, 3)


@pytest.mark.parametrize("rotation", [np.eye(3), rotation_y(35.0)])
def test_mesh_appears_where_project_says(rotation):
    """The covered area's centroid and size match the projection of the square's corners."""
    corners = square(center=(3.3, -2.7, 1.0), half=4.0)
    camera = Camera(rotation=rotation, scale=2.5, center=(31.2, 27.9), size=(60, 64))
    image = render_mesh(corners, SQUARE_TRIANGLES, np.ones((4, 3)), camera=camera,
                        light=FLAT_WHITE)
    cover = coverage(image)
    rows, cols = np.indices(cover.shape)
    centroid = np.array([(cols * cover).sum(), (rows * cover).sum()]) / cover.sum()
    uv = project(corners, camera)
    assert np.allclose(centroid, uv.mean(axis=0), atol=0.1)
    projected_area = 0.5 * abs(np.cross(uv[2] - uv[0], uv[3] - uv[1]))
    perimeter = np.linalg.norm(uv - np.roll(uv, 1, axis=0), axis=1).sum()
    # 4x multisampling quantises edge pixels: allow a quarter pixel along the outline
    assert abs(cover.sum() - projected_area) < 0.25 * perimeter


def test_lambert_and_ambient_shading_closed_form():
    albedo = np.tile([0.8, 0.5, 0.2], (4, 1))
    camera = Camera(rotation=np.eye(3), scale=2.0, center=(20.0, 20.0), size=(40, 40))
    for angle in (0.0, 60.0):
        a = math.radians(angle)
        light = Light(direction=(math.sin(a), 0.0, math.cos(a)), intensity=0.5, ambient=0.3)
        image = render_mesh(square(), SQUARE_TRIANGLES, albedo, camera=camera, light=light)
        expected = 255 * albedo[0] * (0.3 + 0.5 * math.cos(a))
        assert np.allclose(image[20, 20], expected, atol=1.0)


def test_nearer_surface_hides_the_farther_one():
    near = square(center=(0.0, 0.0, 5.0), half=3.0)
    far = square(center=(0.0, 0.0, -5.0), half=6.0)
    vertices = np.concatenate([near, far])
    triangles = np.concatenate([SQUARE_TRIANGLES, SQUARE_TRIANGLES + 4])
    colors = np.array([[1.0, 0, 0]] * 4 + [[0, 0, 1.0]] * 4)
    camera = Camera(rotation=np.eye(3), scale=2.0, center=(20.0, 20.0), size=(40, 40))
    image = render_mesh(vertices, triangles, colors, camera=camera, light=FLAT_WHITE)
    assert tuple(image[20, 20]) == (255, 0, 0)  # near square in front
    assert tuple(image[20, 10]) == (0, 0, 255)  # only the far one reaches out there
    assert tuple(image[2, 2]) == (0, 0, 0)  # background


def test_back_faces_are_not_drawn():
    """Triangles must be counter-clockwise seen from outside: a reversed square is culled."""
    camera = Camera(rotation=np.eye(3), scale=2.0, center=(20.0, 20.0), size=(40, 40))
    image = render_mesh(square(), SQUARE_TRIANGLES[:, ::-1], camera=camera, light=FLAT_WHITE)
    assert image.max() == 0


def test_background_colour_and_image():
    camera = Camera(rotation=np.eye(3), scale=1.0, center=(20.0, 20.0), size=(40, 40))
    coloured = render_mesh(square(), SQUARE_TRIANGLES, camera=camera, background=(10, 200, 30))
    assert tuple(coloured[0, 0]) == (10, 200, 30)
    backdrop = np.random.default_rng(1).integers(0, 256, size=(40, 40, 3), dtype=np.uint8)
    over = render_mesh(square(), SQUARE_TRIANGLES, camera=camera, background=backdrop)
    assert np.array_equal(over[:5, :5], backdrop[:5, :5])
    with pytest.raises(VoxfaceError):
        render_mesh(square(), SQUARE_TRIANGLES, camera=camera, background=backdrop[:20])


def test_overlay_blends_only_where_the_mesh_is():
    camera = Camera(rotation=np.eye(3), scale=2.0, center=(20.0, 20.0), size=(40, 40))
    photo = np.full((40, 40, 3), 100, dtype=np.uint8)
    out = render_overlay(photo, square(), SQUARE_TRIANGLES, camera, alpha=0.5)
    assert out.shape == photo.shape and out.dtype == np.uint8
    assert np.array_equal(out[:5, :5], photo[:5, :5])
    mesh_only = render_mesh(square(), SQUARE_TRIANGLES, np.tile([0.55, 0.75, 1.0], (4, 1)),
                            camera=camera)
    assert np.allclose(out[20, 20], 0.5 * 100 + 0.5 * mesh_only[20, 20].astype(float), atol=1.0)
    with pytest.raises(VoxfaceError):
        render_overlay(photo[:30], square(), SQUARE_TRIANGLES, camera)


def test_vertex_normals_of_a_square_and_a_tent():
    assert np.allclose(vertex_normals(square(), SQUARE_TRIANGLES), [0.0, 0.0, 1.0])
    tent = np.array([[-1.0, 0, 0], [0, 0, 1.0], [1.0, 0, 0], [-1.0, 1, 0], [0, 1, 1.0],
                     [1.0, 1, 0]])
    faces = np.array([[0, 1, 4], [0, 4, 3], [1, 2, 4], [2, 5, 4]])
    normals = vertex_normals(tent, faces)
    assert np.allclose(normals[1], [0.0, 0.0, 1.0], atol=1e-6)  # ridge: average of both slopes
    assert np.allclose(normals[0], [-1 / math.sqrt(2), 0.0, 1 / math.sqrt(2)], atol=1e-6)


def test_save_png_roundtrip(tmp_path):
    image = np.random.default_rng(2).integers(0, 256, size=(7, 9, 3), dtype=np.uint8)
    path = save_png(tmp_path / "sub" / "face.png", image)
    assert np.array_equal(np.asarray(Image.open(path)), image)
    assert [p.name for p in path.parent.iterdir()] == ["face.png"]  # no temporary left behind
    with pytest.raises(VoxfaceError):
        save_png(tmp_path / "bad.png", image.astype(np.float32))


def test_bad_mesh_inputs_raise():
    camera = Camera(rotation=np.eye(3), scale=1.0, center=(10.0, 10.0), size=(20, 20))
    with pytest.raises(VoxfaceError):
        render_mesh(square()[:, :2], SQUARE_TRIANGLES, camera=camera)
    with pytest.raises(VoxfaceError):
        render_mesh(square(), SQUARE_TRIANGLES, np.ones((3, 3)), camera=camera)
