"""Predictions that need no voice model: the mean-face and gender oracles, and the voice ceiling.

All return standardised shape coefficients, so one evaluation code path scores them and the
learned methods alike (paper supplement §F; the ceiling exists only for synthetic corpora, whose
true voice-production parameters are known).
"""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import RidgeCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ..errors import VoxfaceError


def mean_face_oracle(train_shapes: np.ndarray, n_test: int) -> np.ndarray:
    """The training identities' mean shape for every test identity.

    Args:
        train_shapes: (N, K) standardised shape coefficients of the training identities.
        n_test: number of test identities M.

    Returns:
        (M, K) float32.
    """
    return np.repeat(train_shapes.mean(0, keepdims=True), n_test, axis=0).astype(np.float32)


def gender_oracle(train_shapes: np.ndarray, train_genders, test_genders) -> np.ndarray:
    """The mean shape of the training identities of the test identity's own gender.

    Args:
        train_shapes: (N, K); train_genders: (N,) "m"/"f"; test_genders: (M,) "m"/"f".

    Returns:
        (M, K) float32.
    """
    train_genders, test_genders = np.asarray(train_genders), np.asarray(test_genders)
    means = {}
    for g in np.unique(test_genders):
        if not (train_genders == g).any():
            raise VoxfaceError(f"gender oracle: no training identity of gender {g!r}")
        means[g] = train_shapes[train_genders == g].mean(0)
    return np.stack([means[g] for g in test_genders]).astype(np.float32)


def voice_parameter_ceiling(train_voice: np.ndarray, train_shapes: np.ndarray,
                            test_voice: np.ndarray) -> np.ndarray:
    """Ridge regression from the true voice-production parameters to the shape coefficients.

    What a listener who perfectly recovered the synthesiser's parameters could predict linearly:
    the headroom the learned methods compete for. The ridge penalty is chosen by leave-one-out
    cross-validation on the training identities.

    Args:
        train_voice: (N, P) voice parameters; train_shapes: (N, K); test_voice: (M, P).

    Returns:
        (M, K) float32 predicted shape coefficients.
    """
    model = make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-3, 3, 25)))
    model.fit(train_voice, train_shapes)
    return model.predict(test_voice).astype(np.float32)
