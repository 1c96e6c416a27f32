"""Synthetic face photographs of a 3DMM identity: random appearance, then a headless render.

An :class:`Appearance` is everything about a photo that is *not* identity: skin tone, lighting,
a small head pose, the background and a mild expression. :func:`render_face_image` renders an
identity's shape under an appearance as an aligned face crop: the face is framed by its 68
landmarks the way aligned VGGFace / 3DDFA crops are (the landmarks' extent fills ``_FILL`` of
the frame, whatever the head size), so every image of every identity has the same framing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from ..errors import VoxfaceError
from ..face3d.morphable_model import MorphableModel
from ..face3d.render import Camera, Light, project, render_mesh

_FILL = 0.68
"""Fraction of the crop side taken by the larger extent of the (frontal) 68 landmarks."""
_SHIFT_DOWN = 0.04
"""Downward shift of the landmarks' centre from the crop centre, as a fraction of the side."""
_UNIFORM_SKIN = (0.86, 0.68, 0.57)
"""Skin colour used for models without an albedo template (e.g. the Surrey Face Model)."""

_LIGHT_SKIN = np.array([1.10, 1.06, 1.04])
_DARK_SKIN = np.array([0.40, 0.31, 0.26])
"""Skin-tone multipliers of the albedo at the light and dark ends of the sampled range."""

BACKGROUNDS = ("solid", "gradient", "noise")


@dataclass(frozen=True)
class Appearance:
    """What a photo adds to an identity.

    Attributes:
        skin_tone: (3,) RGB multiplier of the albedo (about 1.1 = light skin, 0.4 = dark skin).
        light_direction: (3,) direction towards the light in camera coordinates (x right, y up,
            z towards the camera).
        light_intensity: strength of the directional light.
        ambient: strength of the ambient light.
        yaw, pitch, roll: head pose in degrees (positive yaw turns the face towards the
            subject's left, positive pitch tips the chin down, positive roll tilts the head
            towards the subject's right shoulder).
        background: one of ``BACKGROUNDS``.
        background_colors: two (3,) uint8 colours (the second is used by gradients and noise).
        background_seed: seed of the noise texture and the gradient's direction.
        expression: (E,) standardised expression coefficients (may be empty).
    """

    skin_tone: tuple[float, float, float] = (1.0, 1.0, 1.0)
    light_direction: tuple[float, float, float] = (0.3, 0.4, 1.0)
    light_intensity: float = 0.75
    ambient: float = 0.35
    yaw: float = 0.0
    pitch: float = 0.0
    roll: float = 0.0
    background: str = "solid"
    background_colors: tuple[tuple[int, int, int], tuple[int, int, int]] = (
        (110, 120, 130), (60, 60, 70))
    background_seed: int = 0
    expression: tuple[float, ...] = field(default_factory=tuple)

    def rotation(self) -> np.ndarray:
        """(3, 3) head rotation: roll about z, then pitch about x, then yaw about y."""
        return _rotation(self.yaw, self.pitch, self.roll)


MILD_EXPRESSION = 0.13
"""Largest vertex displacement of a fully active expression component, as a fraction of the OICD."""


def mild_expression_limits(model: MorphableModel) -> np.ndarray:
    """(E,) largest coefficient per expression component that keeps it mild.

    A component whose coefficient 1.0 moves some vertex by more than ``MILD_EXPRESSION`` times the
    outer-interocular distance is capped so that it does not (the Surrey model's blendshapes are
    full expressions at 1.0; the built-in model's are mild already and keep a limit of 1.0).
    """
    i, j = model.measurements["OICD"]
    oicd = float(np.linalg.norm(model.mean[i] - model.mean[j]))
    if model.n_expression == 0:
        return np.zeros(0)
    reach = np.abs(model.expression_basis * model.expression_std).reshape(model.n_vertices, 3, -1)
    largest = np.linalg.norm(reach, axis=1).max(axis=0)
    return np.minimum(1.0, MILD_EXPRESSION * oicd / np.maximum(largest, 1e-12))


def sample_appearance(rng: np.random.Generator, n_expression: int,
                      expression_limits: np.ndarray | None = None) -> Appearance:
    """A random appearance.

    Skin tone spans light to dark skin (with a little hue jitter), the light comes from the
    front hemisphere (within ~45 deg of the camera axis), pose is uniform within +-15 deg yaw,
    +-10 deg pitch and +-8 deg roll, the background is a random solid colour, gradient or noise
    texture, and each expression coefficient is 0 or, with probability 1/2, uniform in [0, limit]
    (a mild activation; expression blendshapes are not symmetric about zero).

    Args:
        rng: the random generator (the only source of randomness).
        n_expression: number of expression coefficients to draw (0 for none).
        expression_limits: (E,) upper limit of each coefficient (default 1.0; see
            :func:`mild_expression_limits`). It scales the draws without changing the random stream.

    Returns:
        The appearance.
    """
    darkness = rng.uniform(0.0, 1.0)
    tone = _LIGHT_SKIN + darkness * (_DARK_SKIN - _LIGHT_SKIN)
    tone = tone * np.exp(rng.normal(0.0, 0.04, size=3))
    azimuth = rng.uniform(-45.0, 45.0)
    elevation = rng.uniform(-10.0, 45.0)
    a, e = math.radians(azimuth), math.radians(elevation)
    direction = (math.sin(a) * math.cos(e), math.sin(e), math.cos(a) * math.cos(e))
    colors = rng.integers(0, 256, size=(2, 3))
    active = rng.uniform(size=n_expression) < 0.5
    expression = np.where(active, rng.uniform(0.0, 1.0, size=n_expression), 0.0)
    if expression_limits is not None:
        expression = expression * expression_limits
    return Appearance(
        skin_tone=tuple(float(t) for t in tone),
        light_direction=tuple(float(d) for d in direction),
        light_intensity=float(rng.uniform(0.55, 0.9)),
        ambient=float(rng.uniform(0.25, 0.45)),
        yaw=float(rng.uniform(-15.0, 15.0)),
        pitch=float(rng.uniform(-10.0, 10.0)),
        roll=float(rng.uniform(-8.0, 8.0)),
        background=BACKGROUNDS[int(rng.integers(len(BACKGROUNDS)))],
        background_colors=(tuple(int(c) for c in colors[0]), tuple(int(c) for c in colors[1])),
        background_seed=int(rng.integers(2**31)),
        expression=tuple(float(z) for z in expression),
    )


def render_face_image(model: MorphableModel, shape_z: np.ndarray, appearance: Appearance,
                      size: int) -> tuple[np.ndarray, np.ndarray]:
    """Render an identity as an aligned face crop.

    Args:
        model: the morphable model (any units; models without albedo get a uniform skin).
        shape_z: (K',) standardised shape coefficients, K' <= model.n_shape.
        appearance: skin, light, pose, background and expression.
        size: side of the square image in pixels.

    Returns:
        image: (size, size, 3) uint8 RGB.
        landmarks2d: (68, 2) float32 pixel coordinates (column, row) of the model's landmarks.
    """
    vertices = _posed_vertices(model, shape_z, appearance)
    return _render(model, vertices, appearance, size)


def render_face_images(model: MorphableModel, shape_z: np.ndarray,
                       appearances: Sequence[Appearance], sizes: Sequence[int] = (64, 120)
                       ) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Render one identity under several appearances at several sizes (same framing at each).

    Args:
        model: the morphable model.
        shape_z: (K',) standardised shape coefficients.
        appearances: N appearances.
        sizes: image sides in pixels.

    Returns:
        size -> (images (N, size, size, 3) uint8, landmarks2d (N, 68, 2) float32).
    """
    out = {s: ([], []) for s in sizes}
    for appearance in appearances:
        vertices = _posed_vertices(model, shape_z, appearance)
        for s in sizes:
            image, landmarks = _render(model, vertices, appearance, s)
            out[s][0].append(image)
            out[s][1].append(landmarks)
    return {s: (np.stack(images) if images else np.zeros((0, s, s, 3), np.uint8),
                np.stack(marks) if marks else np.zeros((0, 68, 2), np.float32))
            for s, (images, marks) in out.items()}


def background_image(appearance: Appearance, size: int) -> np.ndarray:
    """(size, size, 3) uint8 background of an appearance (deterministic)."""
    rng = np.random.default_rng(appearance.background_seed)
    first, second = (np.asarray(c, dtype=np.float32) for c in appearance.background_colors)
    if appearance.background == "solid":
        mix = np.zeros((size, size), dtype=np.float32)
    elif appearance.background == "gradient":
        angle = rng.uniform(0.0, 2 * math.pi)
        coords = (np.arange(size, dtype=np.float32) - (size - 1) / 2) / size
        mix = (math.cos(angle) * coords[None, :] + math.sin(angle) * coords[:, None]) + 0.5
    elif appearance.background == "noise":
        coarse = rng.uniform(0.0, 1.0, size=(6, 6)).astype(np.float32)
        mix = _upsample_bilinear(coarse, size)
        mix = mix + rng.normal(0.0, 0.06, size=(size, size)).astype(np.float32)
    else:
        raise VoxfaceError(f"unknown background {appearance.background!r}; "
                           f"use one of {BACKGROUNDS}")
    mix = np.clip(mix, 0.0, 1.0)[..., None]
    return np.clip(np.rint(first * (1 - mix) + second * mix), 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------------- internals
def _rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    y, p, r = (math.radians(a) for a in (yaw, pitch, roll))
    ry = np.array([[math.cos(y), 0, math.sin(y)], [0, 1, 0], [-math.sin(y), 0, math.cos(y)]])
    rx = np.array([[1, 0, 0], [0, math.cos(p), -math.sin(p)], [0, math.sin(p), math.cos(p)]])
    rz = np.array([[math.cos(r), -math.sin(r), 0], [math.sin(r), math.cos(r), 0], [0, 0, 1]])
    return ry @ rx @ rz


def _posed_vertices(model: MorphableModel, shape_z, appearance: Appearance) -> np.ndarray:
    """(V, 3) vertices of the identity with the appearance's expression (not yet rotated)."""
    shape_z = np.asarray(shape_z, dtype=np.float32)
    if shape_z.ndim != 1:
        raise VoxfaceError(f"shape_z must be one identity's (K,) coefficients, got {shape_z.shape}")
    expression = np.asarray(appearance.expression, dtype=np.float32)[: model.n_expression]
    return model.reconstruct(shape_z, expression if expression.size else None)


def _render(model: MorphableModel, vertices: np.ndarray, appearance: Appearance,
            size: int) -> tuple[np.ndarray, np.ndarray]:
    camera = _aligned_camera(model, vertices, appearance.rotation(), size)
    if model.albedo is not None:
        albedo = model.albedo
    else:
        albedo = np.broadcast_to(np.asarray(_UNIFORM_SKIN, np.float32), vertices.shape)
    colors = np.clip(albedo * np.asarray(appearance.skin_tone, np.float32), 0.0, 1.0)
    light = Light(direction=appearance.light_direction, intensity=appearance.light_intensity,
                  ambient=appearance.ambient)
    image = render_mesh(vertices, model.triangles, colors, camera=camera, light=light,
                        background=background_image(appearance, size))
    landmarks = project(vertices[model.landmarks68], camera).astype(np.float32)
    return image, landmarks


def _aligned_camera(model: MorphableModel, vertices: np.ndarray, rotation: np.ndarray,
                    size: int) -> Camera:
    """Camera of an aligned crop: scale from the unposed landmarks, centre from the posed ones."""
    landmarks = vertices[model.landmarks68].astype(np.float64)
    extent = float(np.max(landmarks[:, :2].max(axis=0) - landmarks[:, :2].min(axis=0)))
    if extent <= 0:
        raise VoxfaceError(f"model {model.name!r} has degenerate landmarks; cannot frame a face")
    scale = _FILL * size / extent
    posed = landmarks @ rotation.T
    mid = (posed[:, :2].min(axis=0) + posed[:, :2].max(axis=0)) / 2.0
    center = ((size - 1) / 2.0 - scale * mid[0],
              (size - 1) / 2.0 + _SHIFT_DOWN * size + scale * mid[1])
    return Camera(rotation=rotation, scale=scale, center=center, size=(size, size))


def _upsample_bilinear(grid: np.ndarray, size: int) -> np.ndarray:
    """(size, size) bilinear up-sampling of a small (h, w) grid spanning the whole image."""
    h, w = grid.shape
    rows = np.linspace(0, h - 1, size)
    cols = np.linspace(0, w - 1, size)
    r0 = np.clip(np.floor(rows).astype(int), 0, h - 2)
    c0 = np.clip(np.floor(cols).astype(int), 0, w - 2)
    fr = (rows - r0)[:, None]
    fc = (cols - c0)[None, :]
    top = grid[r0][:, c0] * (1 - fc) + grid[r0][:, c0 + 1] * fc
    bottom = grid[r0 + 1][:, c0] * (1 - fc) + grid[r0 + 1][:, c0 + 1] * fc
    return (top * (1 - fr) + bottom * fr).astype(np.float32)
