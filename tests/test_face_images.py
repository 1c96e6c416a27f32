"""Synthetic face photos: appearance sampling, aligned rendering, the dlib wrapper, realism."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from voxface.corpus.face_images import (
    BACKGROUNDS,
    Appearance,
    background_image,
    render_face_image,
    render_face_images,
    sample_appearance,
)
from voxface.errors import VoxfaceError
from voxface.face3d.builtin import IBUG_MIRROR, build_builtin_model
from voxface.vision.agreement import dlib_agreement
from voxface.vision.dlib_faces import detect_faces, landmarks68


@pytest.fixture(scope="module")
def model():
    return build_builtin_model()


def identity(model, rng) -> np.ndarray:
    """(K,) z-scores of a random man or woman, as the corpus draws them."""
    sign = 1.0 if rng.uniform() < 0.5 else -1.0
    return rng.normal(size=model.n_shape) + sign * model.gender_offset / 2


def test_sample_appearance_ranges_and_determinism():
    draws = [sample_appearance(np.random.default_rng(seed), 4) for seed in range(300)]
    assert sample_appearance(np.random.default_rng(7), 4) == draws[7]
    assert all(abs(a.yaw) <= 15 and abs(a.pitch) <= 10 and abs(a.roll) <= 8 for a in draws)
    assert all(len(a.expression) == 4 and all(0 <= z <= 1 for z in a.expression) for a in draws)
    assert {a.background for a in draws} == set(BACKGROUNDS)
    brightness = np.array([np.mean(a.skin_tone) for a in draws])
    assert brightness.min() < 0.5 and brightness.max() > 0.95  # light to dark skin
    assert all(np.linalg.norm(a.light_direction) == pytest.approx(1.0) for a in draws)
    assert all(a.light_direction[2] > 0.5 for a in draws)  # lit from the camera's side
    assert len(sample_appearance(np.random.default_rng(0), 0).expression) == 0


def test_rotation_follows_the_documented_pose_convention():
    forward = np.array([0.0, 0.0, 1.0])
    assert (Appearance(yaw=20).rotation() @ forward)[0] > 0.3  # face turns to the subject's left
    assert (Appearance(pitch=20).rotation() @ forward)[1] < -0.3  # chin down
    left = np.array([1.0, 0.0, 0.0])
    assert (Appearance(roll=20).rotation() @ left)[1] > 0.3  # left side up: right shoulder
    r = Appearance(yaw=12, pitch=-7, roll=5).rotation()
    assert np.allclose(r @ r.T, np.eye(3)) and np.linalg.det(r) == pytest.approx(1.0)


@pytest.mark.parametrize("kind", BACKGROUNDS)
def test_backgrounds_are_deterministic(kind):
    appearance = Appearance(background=kind, background_colors=((0, 0, 0), (255, 255, 255)),
                            background_seed=3)
    image = background_image(appearance, 32)
    assert image.shape == (32, 32, 3) and image.dtype == np.uint8
    assert np.array_equal(image, background_image(appearance, 32))
    assert (image.std() == 0) == (kind == "solid")
    with pytest.raises(VoxfaceError):
        background_image(dataclasses.replace(appearance, background="plaid"), 32)


def test_frontal_render_is_an_aligned_symmetric_crop(model):
    image, marks = render_face_image(model, np.zeros(model.n_shape), Appearance(), 120)
    assert image.shape == (120, 120, 3) and image.dtype == np.uint8
    assert marks.shape == (68, 2) and marks.dtype == np.float32
    assert marks.min() > 0 and marks.max() < 119
    # frontal and unposed: mirror landmarks are mirror images about the centre column
    mirrored = marks[IBUG_MIRROR] * np.array([-1.0, 1.0]) + np.array([119.0, 0.0])
    assert np.allclose(mirrored, marks, atol=1e-3)
    assert np.ptp(marks, axis=0).max() == pytest.approx(0.68 * 120, rel=1e-4)
    # the face differs from the background under the nose tip and not in the corner
    u, v = np.rint(marks[30]).astype(int)
    assert np.abs(image[v, u].astype(int) - [110, 120, 130]).sum() > 30
    assert tuple(image[0, 0]) == (110, 120, 130)


def test_landmarks_follow_head_pose(model):
    z = np.zeros(model.n_shape)
    _, frontal = render_face_image(model, z, Appearance(), 120)
    _, turned = render_face_image(model, z, Appearance(yaw=15), 120)
    # turning towards the subject's left (image right) moves the nose tip right, turns the
    # left cheek (jaw point 16) away and the right cheek (jaw point 0) towards the camera
    assert turned[30, 0] > frontal[30, 0] + 5
    assert turned[16, 0] - turned[30, 0] < frontal[16, 0] - frontal[30, 0] - 5
    assert turned[30, 0] - turned[0, 0] > frontal[30, 0] - frontal[0, 0] + 5


def test_batched_rendering_matches_single_renders(model):
    rng = np.random.default_rng(5)
    z = identity(model, rng)
    appearances = [sample_appearance(rng, model.n_expression) for _ in range(2)]
    batch = render_face_images(model, z, appearances, sizes=(64, 120))
    for size in (64, 120):
        images, marks = batch[size]
        assert images.shape == (2, size, size, 3) and marks.shape == (2, 68, 2)
        single_image, single_marks = render_face_image(model, z, appearances[1], size)
        assert np.array_equal(images[1], single_image)
        assert np.allclose(marks[1], single_marks)
    assert np.allclose(batch[64][1] * 120 / 64, batch[120][1], atol=1.0)  # same framing


def test_model_without_albedo_renders_uniform_skin(model):
    bare = dataclasses.replace(model, albedo=None)
    image, marks = render_face_image(bare, np.zeros(model.n_shape),
                                     Appearance(light_intensity=0.0, ambient=1.0), 64)
    u, v = np.rint(marks[30]).astype(int)  # nose tip: skin colour, flat light
    assert np.allclose(image[v, u], np.array([0.86, 0.68, 0.57]) * 255, atol=2)


def test_render_rejects_a_batch_of_identities(model):
    with pytest.raises(VoxfaceError):
        render_face_image(model, np.zeros((2, model.n_shape)), Appearance(), 64)


def test_dlib_finds_a_real_face():
    skimage_data = pytest.importorskip("skimage.data")
    photo = skimage_data.astronaut()
    boxes = detect_faces(photo, upsample=0)
    assert len(boxes) == 1
    left, top, right, bottom = boxes[0]
    marks = landmarks68(photo, boxes[0])
    assert marks.shape == (68, 2) and marks.dtype == np.float32
    assert np.all((marks[:, 0] > left - 20) & (marks[:, 0] < right + 20))
    assert marks[36:48, 1].mean() < marks[30, 1] < marks[48:68, 1].mean()  # eyes, nose, mouth
    assert marks[36:42, 0].mean() < marks[42:48, 0].mean()  # iBUG 36-41 on the image's left
    with pytest.raises(VoxfaceError):
        detect_faces(photo.astype(np.float32))
    with pytest.raises(VoxfaceError):
        landmarks68(photo, (10, 10, 5, 20))


def test_dlib_sees_the_synthetic_faces_where_the_model_put_them(model):
    """The realism check on a fixed sample (bench/check_render_realism.py runs it on more)."""
    rng = np.random.default_rng(2024)
    for size, upsample, n in ((120, 0, 40), (64, 1, 16)):
        cases = (render_face_image(model, identity(model, rng), sample_appearance(rng, model.n_expression), size)
                 for _ in range(n))
        agreement = dlib_agreement(cases, upsample=upsample)
        assert agreement.n == n
        assert agreement.detection_rate >= 0.9, size
        assert agreement.landmark_error <= 0.10, size


def test_mild_expression_limits_cap_strong_blendshapes(model, shared_data):
    from voxface.corpus.face_images import MILD_EXPRESSION, mild_expression_limits
    from voxface.face3d.loading import load_morphable_model

    assert np.all(mild_expression_limits(model) == 1.0)  # the built-in expressions are mild already
    sfm = load_morphable_model(f"sfm:{shared_data / 'sfm'}")
    limits = mild_expression_limits(sfm)
    i, j = sfm.measurements["OICD"]
    oicd = np.linalg.norm(sfm.mean[i] - sfm.mean[j])
    for k, limit in enumerate(limits):
        z = np.zeros(sfm.n_expression, np.float32)
        z[k] = limit
        moved = np.linalg.norm(sfm.reconstruct(np.zeros(sfm.n_shape), z) - sfm.mean, axis=1).max()
        assert moved <= MILD_EXPRESSION * oicd * (1 + 1e-4)
        if limit < 1.0:  # capped components reach the limit exactly
            assert moved == pytest.approx(MILD_EXPRESSION * oicd, rel=1e-3)
    assert limits.min() < 0.5
