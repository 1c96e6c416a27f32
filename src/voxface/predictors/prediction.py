"""One voice's predicted face as a value: what ``voxface predict``, the web page and the Python API read.

A :class:`Prediction` is made by :meth:`voxface.predictors.voice_to_3d.VoiceTo3D.predict` (the
imported CMP release is a ``VoiceTo3D`` too) and holds everything said about the face: its
parameters and mesh, how typical the voice is for the model (the in-distribution score,
:mod:`voxface.evaluate.in_distribution`), how unsure the model is (:class:`Uncertainty`), where the
face lies in the training population, and what the model was trained on with the warning that
follows (:mod:`voxface.predictors.provenance`). Files are written from it
(:func:`voxface.workflows.predict.write_prediction`); nothing reads them back.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..evaluate.in_distribution import WARN_BELOW
from ..face3d import MorphableModel
from .provenance import trained_on, voice_warning

CONVENTION = "standardised coefficients (z-scores of the model prior); mesh = scale * face"


@dataclass(frozen=True)
class Uncertainty:
    """How unsure a probabilistic regressor is about one face.

    Attributes:
        vertex_std: (V,) float64 standard deviation of each vertex's position, in the model's units.
        coefficient_std: (K,) float64 standard deviation of each standardised shape coefficient.
        length_scale: the factor the head's spread was multiplied by for the seconds of speech heard
            (the predictor's length calibration, :mod:`voxface.evaluate.length_calibration`), or
            None when the predictor has none (the head's own spread).
    """

    vertex_std: np.ndarray
    coefficient_std: np.ndarray
    length_scale: float | None = None

    def summary(self, units: str) -> dict:
        """The JSON summary: mean and largest per-vertex standard deviation, each coefficient's, and
        the length calibration's factor."""
        return {"vertex_std_mean": float(self.vertex_std.mean()), "vertex_std_max": float(self.vertex_std.max()),
                "units": units, "coefficient_std": self.coefficient_std.tolist(), "length_scale": self.length_scale}


@dataclass(frozen=True)
class Prediction:
    """The face predicted from one voice.

    Attributes:
        parameters: ``scale`` () float32 (1 for voxface's own regressors), ``shape`` (K,) and
            ``expression`` (E,) float32 standardised coefficients (E = 0 for voxface's own regressors).
        mesh: (V, 3) float vertices, ``scale · reconstruct(shape, expression)``, in the model's units.
        model: the morphable model of the coefficients (its triangles, name and units).
        backbone: the voice encoder that heard the voice (``"cmp"`` or ``"resemblyzer"``).
        speech_seconds: the length of the speech after silence removal.
        in_distribution: the voice's in-distribution score in [0, 1], or None without a voice reference.
        reference: what the voice reference was fitted on, or None without one.
        uncertainty: how unsure the model is, or None for a point regressor (the paper's).
        face: where the face lies in the training population (ratios with intervals, face type,
            gender; :meth:`voxface.evaluate.population.FacePopulation.describe`, plus ``probabilistic``),
            or None when the predictor carries no population.
        provenance: ``trained_on`` and ``synthetic`` of the predictor's training voices.
    """

    parameters: dict[str, np.ndarray]
    mesh: np.ndarray
    model: MorphableModel
    backbone: str
    speech_seconds: float
    in_distribution: float | None
    reference: str | None
    uncertainty: Uncertainty | None
    face: dict | None
    provenance: dict

    @property
    def warning(self) -> str | None:
        """What to warn beside this face (a voice unlike the training voices, or a synthetic-trained
        model; :func:`voxface.predictors.provenance.voice_warning`), or None."""
        return voice_warning(self.provenance, self.in_distribution)

    @property
    def trained_on(self) -> str:
        """The sentence saying what the model was trained on."""
        return trained_on(self.provenance)

    def voice(self) -> dict:
        """What the JSON says about the voice: the training voices, its score, the warning."""
        score = self.in_distribution
        return {"trained_on": self.trained_on, "synthetic_training_voices": self.provenance.get("synthetic"),
                "in_distribution_score": None if score is None else round(score, 4), "reference": self.reference,
                "warn_below": WARN_BELOW, "warning": self.warning}

    def record(self, source: str) -> dict:
        """The parameters JSON of ``voxface predict`` and the page; ``source``: how it names the recording.
        The scale is left out when it is 1 and the expression when it is empty."""
        record = {"source": source, "backbone": self.backbone, "morphable_model": self.model.name,
                  "units": self.model.units, "speech_seconds": round(self.speech_seconds, 3),
                  **{k: v.tolist() for k, v in self.parameters.items() if v.size and not (k == "scale" and v == 1)},
                  "convention": CONVENTION, "voice": self.voice(), "face": self.face}
        if self.uncertainty is not None:
            record["uncertainty"] = self.uncertainty.summary(self.model.units)
        return record
