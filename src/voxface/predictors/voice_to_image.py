"""A trained voice -> 2D face image model as one file: a voice embedder and a face generator.

``voice_to_image.pt`` holds what the web page needs to turn a recording into a face image. Two kinds:

- written by ``voxface train gan2d`` (biometric-matching paper, Sec. III-A, IV-A): the 60×41 mel+delta
  patches of the speech, the speaker CNN's 128-d embedding of each patch, their mean as the voice's
  embedding, and the VAE / C-GAN / RC-GAN generator's 64×64 image of it, in [0, 1];
- imported from Wen et al. (2019) by ``voxface import wen-release``: CMP's log-mel front end, the
  voice encoder's L2-normalised 64-d embedding and their generator; the image is shown as their
  ``gan_test.py`` saves it (clamped to [-1, 1], then stretched to its own minimum and maximum).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..models.speaker_cnn import SpeakerCNN
from ..models.voice_encoders import CMPVoiceEncoder
from ..runs.checkpoints import reads_saved_file
from .bundle import FILES, read_bundle, write_bundle

KIND = "voice-to-image"
BUNDLE_FILE = FILES[KIND]
GENERATOR = "generator-2d"
"""The kind of a gan2d run's generator file (``generator.pt``, :mod:`.bundle`): the generator alone."""
WEN_2019 = "wen2019"
"""``settings["generator"]`` of an imported Wen et al. model (CMP encoder + their generator)."""


def speech_patches(audio: str | os.PathLike | np.ndarray) -> np.ndarray:
    """An audio file (or a 16 kHz waveform) -> (W, 2, 60, 41) float32 mel+delta patches of its speech
    (after silence removal); VoxfaceError naming the file for unusable audio."""
    from ..audio.features import mel_delta
    from ..audio.voice import prepare_voice

    return np.ascontiguousarray(np.moveaxis(mel_delta(prepare_voice(audio)), -1, 1))


@dataclass
class VoiceToImage:
    """Speech -> (64, 64, 3) uint8 face image.

    Attributes:
        encoder: the voice embedder: a :class:`SpeakerCNN` (its classifier head is not used) or,
            for Wen et al.'s model, a :class:`CMPVoiceEncoder`.
        generator: a 2D generator with ``generate((B, 128)) -> (B, 3, 64, 64)`` in [0, 1], or Wen et
            al.'s :class:`FaceGenerator` ((B, 64) -> raw (B, 3, 64, 64)).
        settings: the generator's saved settings (``generator``, and its sizes).
        provenance: ``trained_on`` (a sentence for users) and ``synthetic`` (whether its training
            voices were synthetic); empty for a bundle that does not say.
    """

    encoder: SpeakerCNN | CMPVoiceEncoder
    generator: torch.nn.Module
    settings: dict
    provenance: dict = field(default_factory=dict)

    def __post_init__(self):
        for net in (self.encoder, self.generator):
            net.eval().requires_grad_(False)

    def embedding(self, audio: str | os.PathLike | np.ndarray) -> torch.Tensor:
        """An audio file (or a 16 kHz waveform) -> (D,) voice embedding.

        Raises VoxfaceError (naming the file) for unusable audio, as ``voxface predict`` does.
        """
        with torch.no_grad():
            if self.settings["generator"] == WEN_2019:
                from ..audio.features import cmp_logmel
                from ..audio.voice import prepare_voice

                return self.encoder(torch.from_numpy(cmp_logmel(prepare_voice(audio)).T[None].copy()))[0]
            return self.encoder.embed(torch.from_numpy(speech_patches(audio))).mean(0)

    def images_from_embeddings(self, embeddings: torch.Tensor) -> np.ndarray:
        """(B, D) voice embeddings -> (B, 64, 64, 3) float32 faces in [0, 1]."""
        with torch.no_grad():
            if self.settings["generator"] != WEN_2019:
                return self.generator.generate(embeddings).clamp(0, 1).permute(0, 2, 3, 1).numpy()
            faces = self.generator(embeddings).clamp(-1, 1)
        low = faces.amin(dim=(1, 2, 3), keepdim=True)
        high = faces.amax(dim=(1, 2, 3), keepdim=True)
        return ((faces - low) / (high - low).clamp_min(1e-5)).permute(0, 2, 3, 1).numpy()

    def image(self, audio: str | os.PathLike | np.ndarray) -> np.ndarray:
        """An audio file (or a 16 kHz waveform) -> (64, 64, 3) uint8 generated face."""
        face = self.images_from_embeddings(self.embedding(audio)[None])[0]
        return (face * 255).round().astype(np.uint8)

    def save(self, path: str | Path) -> None:
        write_bundle(path, KIND, {"encoder": self.encoder, "generator": self.generator}, settings=self.settings,
                     provenance=self.provenance)

    @classmethod
    @reads_saved_file
    def load(cls, run_or_file: str | Path) -> "VoiceToImage":
        """From a run folder of ``voxface train gan2d`` / ``import wen-release`` or its ``voice_to_image.pt``."""
        networks, values = read_bundle(run_or_file, KIND)
        return cls(networks["encoder"], networks["generator"], values["settings"], values.get("provenance", {}))
