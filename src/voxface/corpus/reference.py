"""Choosing one identity's reference face among its image fits, by a stated rule.

The rule (the papers picked by hand): among the fits that are near-frontal (|yaw| and |pitch| at most
``MAX_ANGLE_DEG``) and neutral (the Euclidean norm of the standardised expression coefficients at
most ``MAX_EXPRESSION``), take the one with the lowest landmark residual (mean reprojection error
divided by the inter-ocular distance). When no fit qualifies, take the fit with the lowest residual
plus a penalty of ``PENALTY_PER_RADIAN`` per radian of |yaw| + |pitch|, and report that the rule's
conditions were not met. Ties go to the earlier face id, so the choice is deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MAX_ANGLE_DEG = 15.0
MAX_EXPRESSION = 1.0
PENALTY_PER_RADIAN = 0.5
"""Residual units (fraction of the inter-ocular distance) added per radian of |yaw| + |pitch|."""


@dataclass(frozen=True)
class Reference:
    """The chosen fit: its position in the input and whether it met the near-frontal neutral rule."""

    index: int
    qualified: bool


def choose_reference(poses: np.ndarray, expressions: np.ndarray, residuals: np.ndarray) -> Reference:
    """Apply the rule to one identity's fits.

    Args:
        poses: (M, 3) yaw, pitch, roll in radians.
        expressions: (M, E) standardised expression coefficients (E may be 0).
        residuals: (M,) landmark residuals (fraction of the inter-ocular distance).

    Returns:
        the :class:`Reference` (M >= 1).
    """
    poses, residuals = np.asarray(poses, np.float64), np.asarray(residuals, np.float64)
    if len(residuals) == 0:
        raise ValueError("choose_reference needs at least one fit")
    limit = np.deg2rad(MAX_ANGLE_DEG)
    frontal = (np.abs(poses[:, 0]) <= limit) & (np.abs(poses[:, 1]) <= limit)
    neutral = np.linalg.norm(np.asarray(expressions, np.float64).reshape(len(residuals), -1), axis=1) <= MAX_EXPRESSION
    qualified = frontal & neutral
    if qualified.any():
        score = np.where(qualified, residuals, np.inf)
    else:
        score = residuals + PENALTY_PER_RADIAN * (np.abs(poses[:, 0]) + np.abs(poses[:, 1]))
    index = int(np.argmin(score))  # first minimum: the earliest face id among ties
    return Reference(index, bool(qualified[index]))
