"""A trained voice -> face image -> 3D face predictor (CMP unsupervised) as one file.

``unsupervised.pt`` holds the frozen voice encoder, the generator φg, the image-to-3D student (None
for a GAN-only run) and, for the CMP release, the SynergyNet expert whose camera draws the mesh over
the generated image; plus the morphable model of the student's coefficients.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import VoxfaceError
from ..face3d import MorphableModel
from ..face3d.transforms import split_camera
from ..models.cmp_gan import FaceGenerator, noisy_voice_embedding
from ..models.image_to_3d import ImageTo3D
from ..models.voice_encoders import CMPVoiceEncoder
from ..runs.checkpoints import reads_saved_file
from .bundle import FILES, read_bundle, write_bundle

KIND = "voice-image-3d"
BUNDLE_FILE = FILES[KIND]


@dataclass
class VoiceToImageTo3D:
    """Voice features -> embedding -> generated face -> (student) 3DMM shape.

    Attributes:
        encoder: the frozen CMP voice encoder.
        generator: φg.
        student: the image-to-3D student, or None for a GAN-only run.
        model: the morphable model of the student's coefficients.
        mesh_convention: what :meth:`meshes` returns: ``"neutral"`` (voxface's: the student's shape
            alone) or ``"cmp-release"`` (the release's demo: scale from the student's camera times
            shape and expression).
        expert: an image-to-3D network whose camera places the mesh over the image (:meth:`poses`),
            or None (the CMP release carries SynergyNet for it).
    """

    encoder: CMPVoiceEncoder
    generator: FaceGenerator
    student: ImageTo3D | None
    model: MorphableModel
    mesh_convention: str = "neutral"
    expert: ImageTo3D | None = None

    MESH_CONVENTIONS = ("neutral", "cmp-release")

    def __post_init__(self):
        if self.mesh_convention not in self.MESH_CONVENTIONS:
            raise VoxfaceError(f"unknown mesh convention {self.mesh_convention!r}; one of {self.MESH_CONVENTIONS}")
        for net in (self.encoder, self.generator, self.student, self.expert):
            if net is not None:
                net.eval().requires_grad_(False)

    def embed(self, features: list[np.ndarray]) -> torch.Tensor:
        """Per utterance (T, 64) log-mel -> (B, D) embeddings."""
        with torch.no_grad():
            return torch.cat([self.encoder(torch.from_numpy(f.T[None].copy())) for f in features])

    def faces(self, embeddings: torch.Tensor) -> torch.Tensor:
        """(B, D) -> (B, 3, 64, 64) faces in [-1, 1] (no noise: the normalised embedding)."""
        with torch.no_grad():
            return self.generator(noisy_voice_embedding(embeddings, 0.0))

    def shapes(self, faces: torch.Tensor) -> np.ndarray:
        """(B, 3, 64, 64) -> (B, K) the student's standardised shape coefficients."""
        if self.student is None:
            raise VoxfaceError("this run has no student (a GAN-only run); pass a run of `train unsupervised` "
                               "with student: true")
        with torch.no_grad():
            return self.student(faces)["shape"].numpy()

    def meshes(self, faces: torch.Tensor) -> np.ndarray:
        """(B, 3, 64, 64) -> (B, V, 3) the student's faces in ``mesh_convention``."""
        if self.mesh_convention == "neutral":
            return self.model.reconstruct(self.shapes(faces))
        with torch.no_grad():
            out = self.student(faces)
        scale = split_camera(out["pose"])[0].numpy()
        return scale[:, None, None] * self.model.reconstruct(out["shape"].numpy(), out["expression"].numpy())

    def poses(self, faces: torch.Tensor) -> np.ndarray:
        """(B, 3, 64, 64) -> (B, 12) the expert's camera of each face (see ``split_camera``)."""
        if self.expert is None:
            raise VoxfaceError("this bundle has no expert to place meshes over the images")
        with torch.no_grad():
            return self.expert(faces)["pose"].numpy()

    def save(self, path: str | Path) -> None:
        write_bundle(path, KIND, {"encoder": self.encoder, "generator": self.generator, "student": self.student,
                                  "expert": self.expert},
                     model=self.model.to_npz_bytes(), mesh_convention=self.mesh_convention)

    @classmethod
    @reads_saved_file
    def load(cls, run_or_file: str | Path) -> "VoiceToImageTo3D":
        """From a run folder of ``voxface train unsupervised`` / ``import cmp-release`` or its ``unsupervised.pt``."""
        networks, values = read_bundle(run_or_file, KIND)
        return cls(networks["encoder"], networks["generator"], networks["student"],
                   MorphableModel.from_npz(io.BytesIO(values["model"])), values["mesh_convention"],
                   networks["expert"])
