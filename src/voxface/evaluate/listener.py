"""What a perfect listener could know about a synthetic corpus's faces: the truth an uncertainty
estimate is checked against.

The synthetic corpus draws each voice from the face (``corpus/link.py``). A listener who recovered
the synthesiser's voice parameters exactly, and predicted the face from them as well as a linear
model can, would still be unsure by the residual: this module measures it on a large sample of the
generative model itself (not the corpus's 100 identities) — faces and voices only, no audio —, a
ridge regression fitted on 3/4 of the sample and scored on the rest. From it:

- ``floor_variance`` (K,): no model of these voices can be surer about coefficient k than this;
- ``explained`` per ratio and region: 1 − residual variance / population variance, the share of the
  population's variance the voice removes — the "what the voice tells" truth for a link strength.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.linear_model import RidgeCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ..corpus.link import VoiceFaceLink, sample_shape
from ..face3d.morphable_model import MorphableModel
from .uncertainty import CoefficientDistribution, explained_by_group, ratio_samples, vertex_std

SAMPLE = 4000
FIT_SHARE = 0.75


@dataclass(frozen=True)
class PerfectListener:
    """The residual uncertainty of a linear perfect listener (module docstring)."""

    floor_variance: np.ndarray
    explained: dict
    link_strength: float
    n: int

    def as_dict(self) -> dict:
        return {"floor_variance": self.floor_variance.tolist(), "explained": self.explained,
                "link_strength": self.link_strength, "n_simulated": self.n}


def perfect_listener(model: MorphableModel, link_strength: float, seed: int = 0, n: int = SAMPLE) -> PerfectListener:
    """Simulate ``n`` identities of the synthetic generative model (``link_strength``, ``seed``) and
    measure what their voice parameters leave unknown about their faces."""
    link = VoiceFaceLink.calibrate(model, link_strength, seed=seed)
    rng = np.random.default_rng([seed, 8011])
    genders = rng.choice(["m", "f"], n)
    shapes = np.stack([sample_shape(model, rng, g) for g in genders]).astype(np.float64)
    voices = np.stack([link.voice_for_face(model, model.reconstruct(s), g, rng).to_vector()
                       for s, g in zip(shapes, genders)])
    fit = int(FIT_SHARE * n)
    ratios = ratio_samples(model, shapes)
    residual_shapes = shapes[fit:] - _ridge(voices[:fit], shapes[:fit], voices[fit:])
    residual_ratios = ratios[fit:] - _ridge(voices[:fit], ratios[:fit], voices[fit:])
    covariance = residual_shapes.T @ residual_shapes / len(residual_shapes)
    posterior = _gaussian(covariance)
    prior = _gaussian(np.cov(shapes.T))
    prior_vertex, posterior_vertex = vertex_std(model, prior)[0] ** 2, vertex_std(model, posterior)[0] ** 2
    explained = explained_by_group(model, ratios[fit:].var(0), residual_ratios.var(0), prior_vertex, posterior_vertex)
    return PerfectListener(np.diag(covariance).copy(), explained, float(link_strength), n)


def _ridge(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray) -> np.ndarray:
    model = make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-3, 3, 13)))
    return model.fit(train_x, train_y).predict(test_x)


def _gaussian(covariance: np.ndarray) -> CoefficientDistribution:
    values, vectors = np.linalg.eigh(covariance)
    factor = vectors * np.sqrt(np.clip(values, 0, None))
    k = len(covariance)
    return CoefficientDistribution(np.zeros((1, k)), np.full((1, k), 1e-12), factor[None])
