"""Similarity transforms of point sets: rotations from Euler angles, application, Umeyama's fit.

Frame (voxface's): x to the subject's left, y up, z out of the face towards a frontal camera.
Every function takes numpy arrays or torch tensors and returns the same kind; all are batched over
leading dimensions.
"""

from __future__ import annotations

from types import ModuleType

import numpy as np


def rotation_matrix(yaw, pitch, roll):
    """Rotation ``R = Rz(roll) @ Rx(pitch) @ Ry(yaw)`` from angles in radians.

    Applied as ``p' = R @ p``: first yaw about the y (up) axis, then pitch about the x axis, then roll
    about the z (viewing) axis, all right-handed about fixed axes. For a face looking along +z:
    positive yaw turns it towards +x (the subject's left), positive pitch tilts the nose down,
    positive roll tilts the top of the head towards -x (the subject's right).

    Args:
        yaw, pitch, roll: floats or arrays/tensors of one common shape (...).

    Returns:
        (..., 3, 3) rotation matrices, float64 for numpy input, the input's dtype for torch.
    """
    xp = _backend(yaw, pitch, roll)
    if xp is np:
        yaw, pitch, roll = (np.asarray(a, dtype=np.float64) for a in (yaw, pitch, roll))
    cy, sy = xp.cos(yaw), xp.sin(yaw)
    cp, sp = xp.cos(pitch), xp.sin(pitch)
    cr, sr = xp.cos(roll), xp.sin(roll)
    one, zero = xp.ones_like(cy), xp.zeros_like(cy)

    def matrix(rows):
        return xp.stack([xp.stack(row, -1) for row in rows], -2)

    ry = matrix([[cy, zero, sy], [zero, one, zero], [-sy, zero, cy]])
    rx = matrix([[one, zero, zero], [zero, cp, -sp], [zero, sp, cp]])
    rz = matrix([[cr, -sr, zero], [sr, cr, zero], [zero, zero, one]])
    return rz @ rx @ ry


def apply_similarity(points, scale, rotation, translation):
    """``scale * R @ p + t`` for every point.

    Args:
        points: (..., N, 3).
        scale: float, or (...) array/tensor, one per batch element.
        rotation: (3, 3) or (..., 3, 3).
        translation: (3,) or (..., 3).

    Returns:
        (..., N, 3), same kind (numpy/torch) as ``points``.
    """
    xp = _backend(points)
    scale = xp.asarray(scale) if xp is np else xp.as_tensor(scale, dtype=points.dtype, device=points.device)
    return (scale[..., None, None] * (points @ rotation.swapaxes(-1, -2))
            + translation[..., None, :])


def split_camera(pose):
    """A 3×4 scaled-orthographic camera (3DDFA / SynergyNet, flattened row-major) -> scale, rows, offset.

    As 3DDFA-V2 splits it: scale ``s = (|P[0, :3]| + |P[1, :3]|) / 2``, ``rotation`` = P[:, :3] with each
    row divided by its own norm (not orthogonalised), ``offset`` = P[:, 3].

    Args:
        pose: (..., 12) numpy array or torch tensor.

    Returns:
        ``(scale (...), rotation (..., 3, 3), offset (..., 3))``, same kind as ``pose``;
        ``apply_similarity(points, 1, rotation, offset)`` draws points as the release's demo does.
    """
    xp = _backend(pose)
    camera = pose.reshape(*pose.shape[:-1], 3, 4)
    rows = camera[..., :3]
    norms = xp.linalg.norm(rows, axis=-1) if xp is np else rows.norm(dim=-1)
    return (norms[..., 0] + norms[..., 1]) / 2, rows / norms[..., None], camera[..., 3]


def umeyama(src, dst, with_scale: bool = True):
    """Least-squares similarity (Umeyama 1991) taking ``src`` onto ``dst``.

    Minimises ``sum_i |dst_i - (s R src_i + t)|^2`` over rotations R (det +1), translations t and,
    if ``with_scale``, scales s > 0 (else s = 1).

    Args:
        src: (..., N, 3) points, N >= 3 not all collinear.
        dst: (..., N, 3) corresponding points.
        with_scale: fit the scale too.

    Returns:
        ``(scale, R, t)``: (...) scales, (..., 3, 3) rotations, (..., 3) translations; numpy float64
        for numpy input, the input's dtype for torch. ``apply_similarity(src, scale, R, t) ~= dst``.
    """
    xp = _backend(src, dst)
    if xp is np:
        src, dst = np.asarray(src, dtype=np.float64), np.asarray(dst, dtype=np.float64)
    mu_src, mu_dst = src.mean(-2), dst.mean(-2)
    a, b = src - mu_src[..., None, :], dst - mu_dst[..., None, :]
    n = src.shape[-2]
    covariance = b.swapaxes(-1, -2) @ a / n  # (..., 3, 3)
    u, d, vt = xp.linalg.svd(covariance)
    sign = xp.sign(xp.linalg.det(u) * xp.linalg.det(vt))
    sign = xp.where(sign == 0, xp.ones_like(sign), sign)
    correction = xp.stack([xp.ones_like(sign), xp.ones_like(sign), sign], -1)  # (..., 3)
    rotation = (u * correction[..., None, :]) @ vt
    if with_scale:
        scale = (d * correction).sum(-1) / (a * a).sum((-2, -1)) * n
    else:
        scale = xp.ones_like(sign)
    translation = mu_dst - scale[..., None] * (rotation @ mu_src[..., None])[..., 0]
    return scale, rotation, translation


def _backend(*arrays) -> ModuleType:
    """``torch`` if any argument is a torch tensor, else ``numpy``."""
    if any(type(a).__module__.startswith("torch") for a in arrays):
        import torch

        return torch
    return np
