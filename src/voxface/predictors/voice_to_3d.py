"""A trained voice -> 3D face predictor as one file: backbone, regressor, and the morphable model.

Its file (:data:`BUNDLE_FILE` in a run folder) bundles everything ``voxface predict`` needs, so a
prediction never silently uses another morphable model than the one the regressor was trained for.
:meth:`VoiceTo3D.predict` turns one voice into a :class:`~voxface.predictors.prediction.Prediction`.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..errors import VoxfaceError
from ..evaluate.in_distribution import VoiceReference
from ..evaluate.length_calibration import LENGTHS_S, LengthCalibration, crops_of_length
from ..evaluate.population import FacePopulation
from ..evaluate.uncertainty import CoefficientDistribution, vertex_std
from ..face3d import MorphableModel
from ..models.voice_encoders import CMPVoiceEncoder
from ..runs.checkpoints import reads_saved_file
from .bundle import FILES, read_bundle, write_bundle
from .prediction import Prediction, Uncertainty

KIND = "voice-to-3d"
BUNDLE_FILE = FILES[KIND]
BACKBONES = ("cmp", "resemblyzer")
FEATURES = {"cmp": "cmp_logmel", "resemblyzer": "resemblyzer"}
"""The cached corpus feature (``corpus.features``) each backbone reads."""
DESCRIPTORS = {"cmp": "cmp-first-block", "resemblyzer": "resemblyzer-embedding"}
"""The per-utterance descriptor each backbone's voice reference is fitted on (see ``descriptors``)."""


@dataclass
class VoiceTo3D:
    """Speech -> voice features -> embedding -> standardised coefficients -> mesh (:meth:`predict`).

    Attributes:
        backbone: "cmp" (CMP log-mel + CMP encoder) or "resemblyzer" (pretrained GE2E encoder).
        encoder: the CMP encoder (None for resemblyzer).
        regressor: embedding -> (K,) coefficients: a ParameterRegressor (a point, as the paper), a
            GaussianRegressor or a RegressorEnsemble (a predictive distribution too).
        model: the morphable model the coefficients belong to.
        reference: what the training voices looked like (:mod:`voxface.evaluate.in_distribution`), or None
            when unknown (an imported release, or a run trained before references existed).
        provenance: ``trained_on`` (a sentence for users) and ``synthetic`` (whether its training
            voices were synthetic) — said wherever a prediction is shown.
        population: the training faces' ratio ranges, face types and gender classifier
            (:mod:`voxface.evaluate.population`), or None (an imported release).
        length_calibration: how the head's spread scales with the seconds of speech heard, fitted on
            held-out voices (:mod:`voxface.evaluate.length_calibration`), or None (a point regressor,
            or a head used as it predicts).
    """

    backbone: str
    encoder: CMPVoiceEncoder | None
    regressor: torch.nn.Module
    model: MorphableModel
    reference: VoiceReference | None = None
    provenance: dict = field(default_factory=dict)
    population: FacePopulation | None = None
    length_calibration: LengthCalibration | None = None

    def __post_init__(self):
        self.regressor.eval()
        self._resemblyzer = None

    def voice_features(self, waves: list[np.ndarray]) -> list[np.ndarray]:
        """Speech (N_i,) float32 16 kHz (VAD-trimmed) -> the backbone's input per utterance: (T, 64)
        CMP log-mel, or (256,) Resemblyzer embeddings (the corpus feature kinds of the same names)."""
        if self.backbone == "resemblyzer":
            if self._resemblyzer is None:
                from ..audio.speaker_encoder import ResemblyzerEncoder

                self._resemblyzer = ResemblyzerEncoder()
            return list(self._resemblyzer.embed(waves))
        from ..audio.features import cmp_logmel

        return [cmp_logmel(w) for w in waves]

    def predict(self, speech: np.ndarray) -> Prediction:
        """One voice's face: (N,) float32 16 kHz speech (``voxface.workflows.predict.read_voice`` of a
        file) -> its :class:`Prediction` (parameters, mesh, in-distribution score, uncertainty, face
        summary, provenance)."""
        features = self.voice_features([speech])
        embedding = self.embed(features)
        parameters = self._parameters(embedding)
        seconds = np.array([len(speech) / 16000])
        distribution = self.distribution(embedding, seconds)
        scores = self.in_distribution(features)
        uncertainty = None
        if distribution is not None:
            scale = None if self.length_calibration is None else float(self.length_calibration.at(seconds)[0])
            uncertainty = Uncertainty(vertex_std(self.model, distribution)[0],
                                      np.sqrt(distribution.marginal_variance[0]), scale)
        mesh = self._mesh(parameters)[0]
        if not np.isfinite(mesh).all():
            raise VoxfaceError("the predictor gave a face that is not finite (NaN or infinite vertices); its weights "
                               "are damaged: train or import it again")
        return Prediction({k: v[0] for k, v in parameters.items()}, mesh, self.model,
                          self.backbone, float(seconds[0]), None if scores is None else float(scores[0]),
                          None if self.reference is None else self.reference.source, uncertainty,
                          self._describe(parameters, distribution), self.provenance)

    def embed(self, features: list[np.ndarray]) -> torch.Tensor:
        """``voice_features`` output -> (B, D) embeddings."""
        if self.backbone == "resemblyzer":
            return torch.from_numpy(np.stack(features).astype(np.float32))
        with torch.no_grad():
            return torch.cat([self.encoder(torch.from_numpy(f.T[None].copy())) for f in features])

    def meshes(self, embeddings: torch.Tensor) -> np.ndarray:
        """(B, D) -> (B, V, 3) predicted faces in the model's units (times the predicted scale; neutral
        for voxface's own regressors)."""
        return self._mesh(self._parameters(embeddings))

    def distribution(self, embeddings: torch.Tensor, seconds: np.ndarray | None = None
                     ) -> CoefficientDistribution | None:
        """(B, D) -> the predictive distribution of the (B, K) shape coefficients, or None for a point
        regressor (the paper's). ``seconds`` (B,): the speech each embedding heard; with a
        :attr:`length_calibration` the spread is scaled to it (None: the head's own spread)."""
        if not self.probabilistic:
            return None
        with torch.no_grad():
            members = [CoefficientDistribution(**{k: v.double().numpy() for k, v in d.items()})
                       for d in self.regressor.member_distributions(embeddings)]
        distribution = members[0] if len(members) == 1 else CoefficientDistribution.mixture(members)
        if seconds is None or self.length_calibration is None:
            return distribution
        return self.length_calibration.apply(distribution, seconds)

    def fit_length_calibration(self, speech: list[np.ndarray], truths: np.ndarray, seed: int,
                               lengths=LENGTHS_S, per_utterance: int = 4) -> LengthCalibration:
        """Fit :attr:`length_calibration` on held-out voices: their (N_i,) float32 16 kHz ``speech``
        (after silence removal, as :meth:`predict` takes it) and (N, K') their true standardised
        coefficients, cut to random windows of each of ``lengths`` seconds (``per_utterance`` per
        utterance long enough; a length no utterance reaches is left out)."""
        if not self.probabilistic:
            raise VoxfaceError("a length calibration needs an uncertainty head (train with --set uncertainty=gaussian)")
        rng = np.random.default_rng([seed, 23])
        predicted = {}
        for seconds in lengths:
            windows, source = crops_of_length(speech, seconds, per_utterance, rng)
            if not windows:
                continue
            distribution = self.distribution(self.embed(self.voice_features(windows)))
            predicted[seconds] = distribution, truths[source][:, :distribution.mean.shape[-1]]
        self.length_calibration = LengthCalibration.fit(predicted)
        return self.length_calibration

    def in_distribution(self, features: list[np.ndarray]) -> np.ndarray | None:
        """``voice_features`` output -> (B,) in-distribution scores in [0, 1], or None without a reference."""
        return None if self.reference is None else self.reference.scores(self._descriptors(features))

    def fit_reference(self, features: list[np.ndarray], groups: np.ndarray, source: str) -> VoiceReference:
        """A :class:`VoiceReference` of these voices (``voice_features`` output; (B,) identity of each)."""
        return VoiceReference.fit(self._descriptors(features), groups, DESCRIPTORS[self.backbone], source)

    @property
    def probabilistic(self) -> bool:
        """Whether the regressor predicts a distribution (a Gaussian head or an ensemble of them)."""
        return hasattr(self.regressor, "member_distributions")

    def _descriptors(self, features: list[np.ndarray]) -> np.ndarray:
        """``voice_features`` output -> (B, D') descriptors the voice reference is fitted on: the CMP
        encoder's first-block statistics, or the Resemblyzer embedding."""
        if self.backbone == "resemblyzer":
            return np.stack(features).astype(np.float64)
        with torch.no_grad():
            return torch.cat([self.encoder.frame_statistics(torch.from_numpy(f.T[None].copy()))
                              for f in features]).numpy()

    def _parameters(self, embeddings: torch.Tensor) -> dict[str, np.ndarray]:
        """(B, D) -> ``scale`` (B,), ``shape`` (B, K) and ``expression`` (B, E) float32; the scale is 1
        and E = 0 for voxface's own regressors (the CMP release predicts both)."""
        with torch.no_grad():
            parts = self.regressor.split(self.regressor(embeddings))
        return {k: v.numpy().astype(np.float32) for k, v in parts.items()}

    def _mesh(self, parameters: dict[str, np.ndarray]) -> np.ndarray:
        """``_parameters``' output -> (B, V, 3) faces: scale · reconstruct(shape, expression)."""
        expression = parameters["expression"] if parameters["expression"].shape[-1] else None
        meshes = self.model.reconstruct(parameters["shape"], expression)
        return parameters["scale"][:, None, None] * meshes

    def _describe(self, parameters: dict[str, np.ndarray], distribution: CoefficientDistribution | None) -> dict | None:
        """One voice's parameters (B = 1) and distribution -> where its face lies in the training
        population (:meth:`FacePopulation.describe`), or None without a population."""
        if self.population is None:
            return None
        if distribution is None:  # a point regressor: every sample is the prediction itself
            mean = parameters["shape"].astype(np.float64)
            distribution = CoefficientDistribution.diagonal(mean, np.zeros_like(mean))
        return {**self.population.describe(self.model, distribution[0]), "probabilistic": self.probabilistic}

    def save(self, path: str | Path) -> None:
        write_bundle(path, KIND, {"encoder": self.encoder, "regressor": self.regressor},
                     backbone=self.backbone, model=self.model.to_npz_bytes(),
                     reference=None if self.reference is None else self.reference.to_saved(),
                     provenance=self.provenance,
                     population=None if self.population is None else self.population.to_saved(),
                     length_calibration=None if self.length_calibration is None else self.length_calibration.to_saved())

    @classmethod
    @reads_saved_file
    def load(cls, run_or_file: str | Path) -> "VoiceTo3D":
        """Load :data:`BUNDLE_FILE` from a run folder or a file path; VoxfaceError if it is not one."""
        networks, values = read_bundle(run_or_file, KIND)
        return cls(values["backbone"], networks["encoder"], networks["regressor"],
                   MorphableModel.from_npz(io.BytesIO(values["model"])), VoiceReference.from_saved(values["reference"]),
                   values["provenance"], FacePopulation.from_saved(values["population"]),
                   LengthCalibration.from_saved(values.get("length_calibration")))

    def check_model(self, expected: MorphableModel) -> None:
        """Refuse a predictor trained for another morphable model than ``expected``."""
        if not (self.model.same_as(expected) and expected.n_shape >= self.regressor.n_shape):
            raise VoxfaceError(f"this predictor was trained for morphable model {self.model.name!r} "
                               f"({self.model.n_vertices} vertices), not {expected.name!r} "
                               f"({expected.n_vertices} vertices); use a predictor trained on this model")
