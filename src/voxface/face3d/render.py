"""Headless rendering of meshes to images (pyrender over EGL) and the matching camera projection.

The camera is orthographic (weak perspective): a model point ``v`` lands on pixel
``(u, v) = center + scale * ((R v)_x, -(R v)_y)``, with pixel ``(i, j)`` meaning the *centre* of
column ``i`` and row ``j`` (the convention of numpy indexing and of dlib's landmarks).
:func:`project` and :func:`render_mesh` share this camera, so projected landmarks sit exactly
where the rendered surface shows them.

Rendering uses one pyrender ``OffscreenRenderer`` per image size and process, created on first
use and reused (an EGL context costs ~0.4 s to create; a forked worker makes its own), each on a
thread of its own, so that any thread may render and renders of different sizes do not wait for
each other.
``PYOPENGL_PLATFORM`` defaults to ``egl``; it must be set before anything imports PyOpenGL.
"""

from __future__ import annotations

import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import VoxfaceError
from ..runs.atomic import atomic_path

logger = logging.getLogger(__name__)

RENDER_FILL = 0.9
"""The share of the image's shorter side a mesh's largest extent spans when :func:`render_mesh` frames it."""


@dataclass(frozen=True)
class Camera:
    """An orthographic camera looking down the model's -z axis after ``rotation``.

    Attributes:
        rotation: (3, 3) rotation applied to model points before projecting (head pose).
        scale: pixels per model unit.
        center: (u, v) pixel position of the model origin.
        size: (height, width) of the image in pixels.
    """

    rotation: np.ndarray
    scale: float
    center: tuple[float, float]
    size: tuple[int, int]


@dataclass(frozen=True)
class Light:
    """A directional light plus ambient light, both white.

    Attributes:
        direction: (3,) direction *towards* the light in camera coordinates (x right, y up,
            z towards the viewer); normalised on use.
        intensity: strength of the directional light; a surface facing the light gets
            ``albedo * (ambient + intensity)`` (clipped to 1).
        ambient: strength of the ambient light, in the same units.
    """

    direction: tuple[float, float, float] = (0.3, 0.4, 1.0)
    intensity: float = 0.75
    ambient: float = 0.35


def project(vertices: np.ndarray, camera: Camera) -> np.ndarray:
    """Pixel coordinates of model points.

    Args:
        vertices: (..., V, 3) model points.
        camera: the camera of the render.

    Returns:
        (..., V, 2) float64 pixel coordinates (u = column, v = row; pixel centres at integers).
    """
    rotated = np.asarray(vertices, dtype=np.float64) @ np.asarray(camera.rotation, np.float64).T
    u = camera.center[0] + camera.scale * rotated[..., 0]
    v = camera.center[1] - camera.scale * rotated[..., 1]
    return np.stack([u, v], axis=-1)


def framing_camera(points: np.ndarray, size: int | tuple[int, int], fill: float = 0.9,
                   rotation: np.ndarray | None = None,
                   shift: tuple[float, float] = (0.0, 0.0)) -> Camera:
    """A camera that frames ``points`` (after ``rotation``) in the middle of the image.

    Args:
        points: (N, 3) model points to frame (a whole mesh, or its landmarks).
        size: image side in pixels, or (height, width).
        fill: fraction of the image's smaller side taken by the larger extent of the points.
        rotation: (3, 3) head rotation; identity (frontal) when None.
        shift: (du, dv) displacement of the points' box centre from the image centre, as a
            fraction of the image's smaller side (positive dv moves the face down).

    Returns:
        The camera.
    """
    height, width = _size_hw(size)
    rotation = np.eye(3) if rotation is None else np.asarray(rotation, dtype=np.float64)
    rotated = np.asarray(points, dtype=np.float64) @ rotation.T
    low, high = rotated[:, :2].min(axis=0), rotated[:, :2].max(axis=0)
    extent = float(np.max(high - low))
    if extent <= 0:
        raise VoxfaceError("cannot frame a single point: give at least two distinct points")
    side = min(height, width)
    scale = fill * side / extent
    mid = (low + high) / 2.0
    center = ((width - 1) / 2.0 + shift[0] * side - scale * mid[0],
              (height - 1) / 2.0 + shift[1] * side + scale * mid[1])
    return Camera(rotation=rotation, scale=scale, center=center, size=(height, width))


def vertex_normals(vertices: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """Area-weighted unit vertex normals of a triangle mesh.

    Args:
        vertices: (V, 3) positions.
        triangles: (F, 3) vertex indices, counter-clockwise seen from outside.

    Returns:
        (V, 3) float32 unit normals pointing outside (zero for unused vertices).
    """
    v = np.asarray(vertices, dtype=np.float64)
    t = np.asarray(triangles)
    face = np.cross(v[t[:, 1]] - v[t[:, 0]], v[t[:, 2]] - v[t[:, 0]])
    normals = np.zeros_like(v)
    for corner in range(3):
        for axis in range(3):
            normals[:, axis] += np.bincount(t[:, corner], weights=face[:, axis], minlength=len(v))
    length = np.linalg.norm(normals, axis=1, keepdims=True)
    return (normals / np.maximum(length, 1e-12)).astype(np.float32)


def render_mesh(vertices: np.ndarray, triangles: np.ndarray, colors: np.ndarray | None = None,
                size: int | tuple[int, int] = 256, camera: Camera | None = None,
                light: Light = Light(), background: np.ndarray | tuple = (0, 0, 0)) -> np.ndarray:
    """Shaded render of a mesh: Lambert diffuse + ambient, per vertex (Gouraud), 4x multisampled.

    Args:
        vertices: (V, 3) model points.
        triangles: (F, 3) int vertex indices, counter-clockwise seen from outside (triangles
            seen clockwise face away from the camera and are not drawn).
        colors: (V, 3) per-vertex albedo in [0, 1] (display colours), or None for light grey.
        size: image side in pixels, or (height, width); ignored when ``camera`` is given.
        camera: the camera; None frames the whole mesh frontally with a 5% margin.
        light: the lighting.
        background: (3,) uint8 colour, or an (H, W, 3) uint8 image to composite the face over.

    Returns:
        (H, W, 3) uint8 image.
    """
    if camera is None:
        camera = framing_camera(vertices, size, fill=RENDER_FILL)
    rgba = _render_rgba(vertices, triangles, colors, camera, light)
    return _composite(rgba, _background_image(background, camera.size))


def render_overlay(image: np.ndarray, vertices: np.ndarray, triangles: np.ndarray, camera: Camera,
                   alpha: float = 0.5, color: tuple[float, float, float] = (0.55, 0.75, 1.0)
                   ) -> np.ndarray:
    """Draw a shaded mesh over an image (e.g. a fitted 3DMM over the photo it was fitted to).

    Args:
        image: (H, W, 3) uint8 image; H, W must equal ``camera.size``.
        vertices: (V, 3) model points.
        triangles: (F, 3) vertex indices.
        camera: the camera that maps the model onto ``image``.
        alpha: opacity of the mesh, in [0, 1].
        color: (3,) mesh colour in [0, 1].

    Returns:
        (H, W, 3) uint8 image; pixels the mesh does not cover are unchanged.
    """
    image = np.asarray(image)
    if image.shape != (*camera.size, 3) or image.dtype != np.uint8:
        raise VoxfaceError(f"overlay image must be uint8 of shape {(*camera.size, 3)}, "
                           f"got {image.dtype} {image.shape}")
    if not 0.0 <= alpha <= 1.0:
        raise VoxfaceError(f"overlay alpha must lie in [0, 1], got {alpha}")
    colors = np.broadcast_to(np.asarray(color, dtype=np.float32), (len(vertices), 3))
    rgba = _render_rgba(vertices, triangles, colors, camera, Light())
    weight = alpha * rgba[..., 3:].astype(np.float32) / 255.0
    out = image.astype(np.float32) * (1.0 - weight) + rgba[..., :3].astype(np.float32) * weight
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def save_png(path: str | os.PathLike, image: np.ndarray) -> Path:
    """Write an (H, W, 3) or (H, W) uint8 image as PNG, atomically. Returns the path."""
    from PIL import Image

    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim not in (2, 3):
        raise VoxfaceError(f"save_png needs an (H, W[, 3]) uint8 image, got {image.dtype} "
                           f"{image.shape}; convert with np.clip(x, 0, 255).astype(np.uint8)")
    path = Path(path)
    with atomic_path(path) as tmp:
        Image.fromarray(image).save(tmp, format="PNG")
    return path


# --------------------------------------------------------------------------------- internals
def _size_hw(size: int | tuple[int, int]) -> tuple[int, int]:
    if isinstance(size, (int, np.integer)):
        size = (int(size), int(size))
    height, width = (int(s) for s in size)
    if height < 1 or width < 1:
        raise VoxfaceError(f"image size must be positive, got {size}")
    return height, width


def _background_image(background, size: tuple[int, int]) -> np.ndarray:
    """(H, W, 3) uint8 background from a colour or an image."""
    background = np.asarray(background)
    if background.ndim == 1:
        return np.broadcast_to(background.astype(np.uint8), (*size, 3))
    if background.shape != (*size, 3):
        raise VoxfaceError(f"background image has shape {background.shape}, expected {(*size, 3)}")
    return background.astype(np.uint8)


def _composite(rgba: np.ndarray, background: np.ndarray) -> np.ndarray:
    weight = rgba[..., 3:].astype(np.float32) / 255.0
    out = rgba[..., :3].astype(np.float32) * weight + background.astype(np.float32) * (1 - weight)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _render_rgba(vertices, triangles, colors, camera: Camera, light: Light) -> np.ndarray:
    """(H, W, 4) uint8 render; alpha is the mesh's (anti-aliased) coverage."""
    vertices = np.asarray(vertices, dtype=np.float64)
    triangles = np.asarray(triangles)
    if vertices.ndim != 2 or vertices.shape[1] != 3:
        raise VoxfaceError(f"vertices must have shape (V, 3), got {vertices.shape}")
    if triangles.ndim != 2 or triangles.shape[1] != 3 or len(triangles) == 0:
        raise VoxfaceError(f"triangles must have shape (F, 3) with F > 0, got {triangles.shape}")
    if colors is None:
        colors = np.full((len(vertices), 3), 0.8, dtype=np.float32)
    colors = np.asarray(colors, dtype=np.float32)
    if colors.shape != (len(vertices), 3):
        raise VoxfaceError(f"colors must have shape {(len(vertices), 3)}, got {colors.shape}")
    height, width = camera.size
    rotated = vertices @ np.asarray(camera.rotation, dtype=np.float64).T
    # Camera space of an orthographic pyrender camera at the origin with xmag = W/2: window
    # column = X + W/2, and pixel centre u sits at window u + 0.5 (rows likewise, y up).
    cam = np.empty_like(rotated)
    cam[:, 0] = camera.center[0] + camera.scale * rotated[:, 0] + 0.5 - width / 2.0
    cam[:, 1] = height / 2.0 - 0.5 - camera.center[1] + camera.scale * rotated[:, 1]
    depth = camera.scale * rotated[:, 2]
    cam[:, 2] = depth - depth.max() - 1.0
    brightness = _shading(vertex_normals(rotated, triangles), light)
    shaded = np.clip(colors, 0.0, 1.0) * brightness[:, None]
    renderer = _renderer_for((height, width))
    return renderer.render(cam.astype(np.float32), np.clip(shaded, 0.0, 1.0).astype(np.float32),
                           triangles.astype(np.uint32), far=float(depth.max() - depth.min()) + 2.0)


def _shading(normals: np.ndarray, light: Light) -> np.ndarray:
    """(V,) brightness ``ambient + intensity * max(0, n.l)`` of unit normals in camera space."""
    direction = np.asarray(light.direction, dtype=np.float64)
    direction = direction / np.linalg.norm(direction)
    return light.ambient + light.intensity * np.clip(normals @ direction, 0.0, None)


class _SceneRenderer:
    """One EGL context, scene and camera for one image size; meshes are swapped in and out.

    pyrender's EGL context stays current in the thread that last drew with it (its EGL
    ``make_uncurrent`` does nothing), so each renderer owns one thread that creates and uses its
    context; :meth:`render` may be called from any thread and waits for that one. Shading is
    computed per vertex in numpy and drawn unlit (pyrender's FLAT mode), which is about three times
    faster on a software (llvmpipe) renderer than pyrender's PBR shader.
    """

    def __init__(self, size: tuple[int, int]):
        height, width = size
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"voxface-render-{height}x{width}")
        self._thread.submit(self._open, size).result()

    def _open(self, size: tuple[int, int]) -> None:
        pyrender = _pyrender()
        height, width = size
        try:
            self._offscreen = pyrender.OffscreenRenderer(width, height)
        except Exception as exc:  # EGL/driver failures surface as many exception types
            raise VoxfaceError(
                f"headless OpenGL rendering failed ({exc}); voxface renders with pyrender over "
                "EGL: install libEGL/Mesa (e.g. apt-get install libegl1 libgl1-mesa-dri) and keep "
                "PYOPENGL_PLATFORM=egl") from exc
        self._pyrender = pyrender
        self._scene = pyrender.Scene(bg_color=[0.0, 0.0, 0.0, 0.0])
        self._camera = pyrender.OrthographicCamera(xmag=width / 2.0, ymag=height / 2.0,
                                                   znear=0.5, zfar=1000.0)
        self._scene.add(self._camera, pose=np.eye(4))
        self._material = pyrender.MetallicRoughnessMaterial(baseColorFactor=[1.0, 1.0, 1.0, 1.0])
        self._flags = pyrender.RenderFlags.RGBA | pyrender.RenderFlags.FLAT

    def render(self, positions, colors, triangles, far: float) -> np.ndarray:
        """(H, W, 4) uint8 image of camera-space ``positions`` (V, 3) with ``colors`` (V, 3)."""
        return self._thread.submit(self._draw, positions, colors, triangles, far).result()

    def _draw(self, positions, colors, triangles, far: float) -> np.ndarray:
        pyrender = self._pyrender
        primitive = pyrender.Primitive(positions=positions, color_0=colors, indices=triangles,
                                       material=self._material)
        self._camera.zfar = far + 1.0
        node = self._scene.add(pyrender.Mesh([primitive]))
        try:
            color, _ = self._offscreen.render(self._scene, flags=self._flags)
        finally:
            self._scene.remove_node(node)
        return np.array(color)


_RENDERERS: dict[tuple[int, int, int], _SceneRenderer] = {}
_RENDERERS_LOCK = threading.Lock()


def _renderer_for(size: tuple[int, int]) -> _SceneRenderer:
    key = (os.getpid(), *size)  # a GL context does not survive fork()
    with _RENDERERS_LOCK:
        if key not in _RENDERERS:
            logger.debug("creating an offscreen renderer of size %s", size)
            _RENDERERS[key] = _SceneRenderer(size)
        return _RENDERERS[key]


def _pyrender():
    os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
    import pyrender

    return pyrender
