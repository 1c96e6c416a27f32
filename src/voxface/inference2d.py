"""A trained voice -> 2D face image model as one file: the speaker CNN and a 2D generator.

``voice_to_image.pt`` (written by ``voxface train gan2d``) holds what the web page needs to turn a
recording into a face image (biometric-matching paper, SPEC.md §B): the 60×41 mel+delta patches of
the speech, the speaker CNN's 128-d embedding of each patch, their mean as the voice's embedding,
and the VAE / C-GAN / RC-GAN generator's 64×64 image of it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from . import atomic
from .checkpoints import load_tagged, reads_saved_file
from .models.generators2d import ConditionalGenerator, VoiceVAE
from .models.speaker_cnn import SpeakerCNN

FORMAT = "voxface-voice-to-image"
BUNDLE_FILE = "voice_to_image.pt"


def speech_patches(audio: str | os.PathLike | np.ndarray) -> np.ndarray:
    """An audio file (or a 16 kHz waveform) -> (W, 2, 60, 41) float32 mel+delta patches of its speech
    (after silence removal); VoxfaceError naming the file for unusable audio."""
    from .audio.features import mel_delta
    from .audio.voice import prepare_voice

    return np.ascontiguousarray(np.moveaxis(mel_delta(prepare_voice(audio)), -1, 1))


def generator_from_saved(saved: dict) -> torch.nn.Module:
    """A 2D generator from its saved settings ``generator`` (vae|cgan|rcgan), ``width``, ``latent_dim``
    and ``state_dict``; in eval mode with gradients off."""
    if saved["generator"] == "vae":
        net = VoiceVAE(latent_dim=saved["latent_dim"], width=saved["width"])
    else:
        net = ConditionalGenerator(width=saved["width"])
    net.load_state_dict(saved["state_dict"])
    return net.eval().requires_grad_(False)


@dataclass
class VoiceToImage:
    """Speech -> (64, 64, 3) uint8 face image.

    Attributes:
        speaker_cnn: the voice embedder (its classifier head is not used).
        generator: a 2D generator with ``generate((B, 128)) -> (B, 3, 64, 64)`` in [0, 1].
        settings: the generator's saved settings (``generator``, ``width``, ``latent_dim``).
    """

    speaker_cnn: SpeakerCNN
    generator: torch.nn.Module
    settings: dict

    def __post_init__(self):
        for net in (self.speaker_cnn, self.generator):
            net.eval().requires_grad_(False)

    def embedding(self, audio: str | os.PathLike | np.ndarray) -> torch.Tensor:
        """An audio file (or a 16 kHz waveform) -> (128,) mean of its patches' embeddings.

        Raises VoxfaceError (naming the file) for unusable audio, as ``voxface predict`` does.
        """
        with torch.no_grad():
            return self.speaker_cnn.embed(torch.from_numpy(speech_patches(audio))).mean(0)

    def image(self, audio: str | os.PathLike | np.ndarray) -> np.ndarray:
        """An audio file (or a 16 kHz waveform) -> (64, 64, 3) uint8 generated face."""
        with torch.no_grad():
            face = self.generator.generate(self.embedding(audio)[None])[0]
        return (face.clamp(0, 1).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)

    def save(self, path: str | Path) -> None:
        bundle = {"format": FORMAT,
                  "speaker_cnn": {"n_classes": self.speaker_cnn.n_classes, "channels": self.speaker_cnn.channels,
                                  "state_dict": self.speaker_cnn.state_dict()},
                  "generator": {**self.settings, "state_dict": self.generator.state_dict()}}
        with atomic.atomic_path(Path(path)) as tmp:
            torch.save(bundle, tmp)

    @classmethod
    @reads_saved_file
    def load(cls, run_or_file: str | Path) -> "VoiceToImage":
        """From a run folder of ``voxface train gan2d`` or its ``voice_to_image.pt``."""
        bundle, _ = load_tagged(run_or_file, BUNDLE_FILE, FORMAT, "voice-to-image model",
                                "train one with `voxface train gan2d` (rerunning a finished run writes the file)")
        cnn = bundle["speaker_cnn"]
        speaker_cnn = SpeakerCNN(cnn["n_classes"], channels=cnn["channels"])
        speaker_cnn.load_state_dict(cnn["state_dict"])
        settings = {k: v for k, v in bundle["generator"].items() if k != "state_dict"}
        return cls(speaker_cnn, generator_from_saved(bundle["generator"]), settings)
