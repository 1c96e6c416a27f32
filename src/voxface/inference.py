"""A trained voice -> 3D face predictor as one file: backbone, regressor, and the morphable model.

``predictor.pt`` bundles everything ``voxface predict`` needs, so a prediction never silently uses
another morphable model than the one the regressor was trained for.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from . import atomic
from .checkpoints import load_tagged, reads_saved_file
from .errors import VoxfaceError
from .face3d import MorphableModel
from .models.regressor import ParameterRegressor
from .models.voice_encoders import CMPVoiceEncoder

FORMAT = "voxface-voice-to-3d"
BACKBONES = ("cmp", "resemblyzer")


@dataclass
class VoiceTo3D:
    """Waveform -> standardised shape coefficients -> mesh.

    Attributes:
        backbone: "cmp" (CMP log-mel + CMP encoder) or "resemblyzer" (pretrained GE2E encoder).
        encoder: the CMP encoder (None for resemblyzer).
        regressor: embedding -> (K,) coefficients.
        model: the morphable model the coefficients belong to.
    """

    backbone: str
    encoder: CMPVoiceEncoder | None
    regressor: ParameterRegressor
    model: MorphableModel

    def __post_init__(self):
        self.regressor.eval()
        self._resemblyzer = None

    def embed(self, waves: list[np.ndarray]) -> torch.Tensor:
        """Waveforms (N_i,) float32 16 kHz (speech, already VAD-trimmed) -> (B, D) embeddings."""
        if self.backbone == "resemblyzer":
            if self._resemblyzer is None:
                from .audio.speaker_encoder import ResemblyzerEncoder

                self._resemblyzer = ResemblyzerEncoder()
            return torch.from_numpy(self._resemblyzer.embed(waves))
        from .audio.features import cmp_logmel

        with torch.no_grad():
            return torch.cat([self.encoder(torch.from_numpy(cmp_logmel(w).T[None].copy())) for w in waves])

    def coefficients_from_embeddings(self, embeddings: torch.Tensor) -> np.ndarray:
        """(B, D) -> (B, K) float32 standardised shape coefficients."""
        with torch.no_grad():
            return self.regressor(embeddings).numpy().astype(np.float32)

    def coefficients(self, waves: list[np.ndarray]) -> np.ndarray:
        """Waveforms -> (B, K) float32 standardised shape coefficients."""
        return self.coefficients_from_embeddings(self.embed(waves))

    def meshes(self, waves: list[np.ndarray]) -> np.ndarray:
        """Waveforms -> (B, V, 3) predicted neutral faces in the model's units."""
        return self.model.reconstruct(self.coefficients(waves))

    def save(self, path: str | Path) -> None:
        bundle = {
            "format": FORMAT, "backbone": self.backbone,
            "encoder": None if self.encoder is None else {"embed_dim": self.encoder.embed_dim,
                                                           "state_dict": self.encoder.state_dict()},
            "regressor": {"embed_dim": self.regressor.head.in_features, "n_shape": self.regressor.n_shape,
                          "state_dict": self.regressor.state_dict()},
            "model": self.model.to_npz_bytes(),
        }
        with atomic.atomic_path(path) as tmp:
            torch.save(bundle, tmp)

    @classmethod
    @reads_saved_file
    def load(cls, run_or_file: str | Path) -> "VoiceTo3D":
        """Load ``predictor.pt`` from a run folder or a file path; VoxfaceError if it is not one."""
        bundle, _ = load_tagged(run_or_file, "predictor.pt", FORMAT, "voice-to-3D predictor",
                                "train one with `voxface train supervised` or `voxface demo`, and pass its "
                                "run folder or predictor.pt")
        encoder = None
        if bundle["encoder"] is not None:
            encoder = CMPVoiceEncoder(embed_dim=bundle["encoder"]["embed_dim"])
            encoder.load_state_dict(bundle["encoder"]["state_dict"])
            encoder.eval().requires_grad_(False)
        r = bundle["regressor"]
        regressor = ParameterRegressor(r["embed_dim"], r["n_shape"])
        regressor.load_state_dict(r["state_dict"])
        return cls(bundle["backbone"], encoder, regressor, MorphableModel.from_npz(io.BytesIO(bundle["model"])))

    def check_model(self, expected: MorphableModel) -> None:
        """Refuse a predictor trained for another morphable model than ``expected``."""
        same = (self.model.name == expected.name and self.model.n_vertices == expected.n_vertices
                and self.model.n_shape >= self.regressor.n_shape
                and np.allclose(self.model.mean, expected.mean))
        if not same:
            raise VoxfaceError(f"this predictor was trained for morphable model {self.model.name!r} "
                               f"({self.model.n_vertices} vertices), not {expected.name!r} "
                               f"({expected.n_vertices} vertices); use a predictor trained on this model")
