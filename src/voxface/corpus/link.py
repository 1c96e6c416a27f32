"""The documented, tunable link between face geometry and voice in the synthetic corpus.

Each identity's neutral face yields a few *geometry descriptors* (log-ratios of anthropometric
distances, and overall size). Some voice-production parameters are then drawn as

    value = clip(prior_mean[g] + prior_sd[g] * (sqrt(s) * geometry_score + sqrt(1 - s) * noise))

where ``g`` is the gender, ``s`` is ``link_strength`` in [0, 1], ``geometry_score`` is a fixed
linear combination of descriptors standardised to zero mean and unit variance within the gender,
and ``noise`` is standard normal. The other voice parameters are drawn from the prior alone
(nuisance). So ``link_strength`` is exactly the fraction of each linked parameter's within-gender
variance that geometry explains: a perfect listener who knew the voice parameters could recover
each geometry score with R^2 = s, and nothing else about the face beyond gender.

The choice of which descriptor drives which voice parameter is a design decision, loosely
inspired by reported correlations (vocal-tract length with body and head size, Fitch & Giedd 1999;
lower F0 with larger larynx and body, Titze 1994); it is not an empirical model of real people.
See docs/synthetic_corpus.md for the formulas and their rationale.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..audio.synth import FIELD_NAMES, VoiceParams, voice_params_from_z
from ..errors import VoxfaceError
from ..face3d import MorphableModel

DESCRIPTORS = ("size", "MR", "ER", "CR", "FR", "nose", "mouth")
"""log OICD; log of midline, ear, cheek, forehead distance / OICD; log nose and mouth width / OICD."""

LINK_WEIGHTS: dict[str, dict[str, float]] = {
    "vtl_cm": {"size": 0.6, "MR": 0.8},          # a longer face and larger head: a longer vocal tract
    "f0_hz": {"size": -0.6, "ER": -0.8},          # a broader head (larger larynx proxy): a lower voice
    "oral_ratio": {"CR": 1.0, "mouth": 0.5},      # wider cheeks and mouth: a shifted F2/F1 balance
    "nasality": {"nose": 1.0},                    # a wider nose: more nasal resonance
    "formant_bandwidth_scale": {"FR": 1.0},       # a wider forehead: broader formant bandwidths
}
"""Voice parameter -> weights on the standardised geometry descriptors (before re-standardising)."""

_CALIBRATION_SAMPLES = 4000


def geometry_descriptors(model: MorphableModel, vertices: np.ndarray) -> np.ndarray:
    """Descriptors of ``DESCRIPTORS`` for neutral faces.

    Args:
        model: the morphable model (for measurement and landmark vertices).
        vertices: (..., V, 3) neutral face vertices.

    Returns:
        (..., len(DESCRIPTORS)) float64.
    """
    def dist(i: int, j: int) -> np.ndarray:
        return np.linalg.norm(vertices[..., i, :] - vertices[..., j, :], axis=-1).astype(np.float64)

    oicd = dist(*model.measurements["OICD"])
    lm = model.landmarks68
    columns = [np.log(oicd)]
    columns += [np.log(dist(*model.measurements[r]) / oicd) for r in ("MR", "ER", "CR", "FR")]
    columns += [np.log(dist(lm[31], lm[35]) / oicd), np.log(dist(lm[48], lm[54]) / oicd)]
    return np.stack(columns, axis=-1)


def sample_shape(model: MorphableModel, rng: np.random.Generator, gender: str, n: int | None = None):
    """Standardised shape coefficients from the model prior with its gender-dependent mean.

    Returns (K,) or (n, K) float32; the mean is +gender_offset/2 for men, -gender_offset/2 for women.
    """
    offset = np.zeros(model.n_shape) if model.gender_offset is None else model.gender_offset
    mean = offset / 2 if gender == "m" else -offset / 2
    size = (model.n_shape,) if n is None else (n, model.n_shape)
    return (mean + rng.standard_normal(size)).astype(np.float32)


@dataclass(frozen=True)
class VoiceFaceLink:
    """Maps a neutral face to voice parameters; build with :meth:`calibrate`.

    Attributes:
        link_strength: s in [0, 1], the share of each linked parameter's variance due to geometry.
        descriptor_mean: gender -> (D,) mean of the descriptors in the population.
        descriptor_std: gender -> (D,) their standard deviation.
        score_std: gender -> {parameter: std of its raw weighted score}, to make scores unit-variance.
    """

    link_strength: float
    descriptor_mean: dict[str, np.ndarray]
    descriptor_std: dict[str, np.ndarray]
    score_std: dict[str, dict[str, float]]

    @classmethod
    def calibrate(cls, model: MorphableModel, link_strength: float, seed: int = 0) -> "VoiceFaceLink":
        """Estimate the descriptors' population statistics per gender by sampling the model prior."""
        if not 0.0 <= link_strength <= 1.0:
            raise VoxfaceError(f"link_strength must lie in [0, 1], got {link_strength}")
        rng = np.random.default_rng([seed, 7919])
        mean, std, score_std = {}, {}, {}
        for gender in ("m", "f"):
            z = sample_shape(model, rng, gender, _CALIBRATION_SAMPLES)
            d = geometry_descriptors(model, model.reconstruct(z))
            mean[gender], std[gender] = d.mean(0), d.std(0) + 1e-12
            standardised = (d - mean[gender]) / std[gender]
            score_std[gender] = {p: float(_raw_scores(standardised, w).std() + 1e-12)
                                 for p, w in LINK_WEIGHTS.items()}
        return cls(link_strength, mean, std, score_std)

    def geometry_scores(self, model: MorphableModel, vertices: np.ndarray, gender: str) -> dict[str, float]:
        """Unit-variance geometry score of each linked voice parameter for one neutral face (V, 3)."""
        d = (geometry_descriptors(model, vertices) - self.descriptor_mean[gender]) / self.descriptor_std[gender]
        return {p: float(_raw_scores(d, w) / self.score_std[gender][p]) for p, w in LINK_WEIGHTS.items()}

    def voice_for_face(self, model: MorphableModel, vertices: np.ndarray, gender: str,
                       rng: np.random.Generator) -> VoiceParams:
        """Voice parameters of a speaker with this neutral face (V, 3) and gender ("m" | "f").

        Every field starts as a standard score drawn from the prior (nuisance); each linked field's
        score is replaced by ``sqrt(s) * geometry_score + sqrt(1 - s) * noise``. The prior's gender
        mean and SD turn scores into values (clipped to plausible bounds by the synthesiser).
        """
        z = rng.standard_normal(len(FIELD_NAMES))
        s = self.link_strength
        for param, score in self.geometry_scores(model, vertices, gender).items():
            k = FIELD_NAMES.index(param)
            z[k] = np.sqrt(s) * score + np.sqrt(1.0 - s) * z[k]
        return voice_params_from_z(z, gender)


def _raw_scores(standardised: np.ndarray, weights: dict[str, float]) -> np.ndarray:
    return sum(w * standardised[..., DESCRIPTORS.index(name)] for name, w in weights.items())
