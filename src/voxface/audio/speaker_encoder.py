"""A pretrained speaker encoder: Resemblyzer's GE2E network (256-d utterance embeddings).

Resemblyzer (Jemine 2019, after Wan et al. 2018, "Generalized end-to-end loss for speaker
verification") ships its weights inside the wheel, so it runs offline on the CPU.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from typing import Any, Sequence

import numpy as np

from ..errors import VoxfaceError

logger = logging.getLogger(__name__)

SAMPLE_RATE = 16000
"""The sample rate (Hz) the encoder expects."""

EMBEDDING_DIM = 256


class ResemblyzerEncoder:
    """Utterance embeddings from Resemblyzer's pretrained ``VoiceEncoder`` (CPU, loaded on first use).

    Each wave goes through Resemblyzer's own ``preprocess_wav`` (volume normalisation to -30 dBFS
    and trimming of long silences by webrtcvad); a wave in which the VAD finds no speech keeps its
    silences rather than being dropped.
    """

    def __init__(self, device: str = "cpu") -> None:
        self._device = device
        self._model: Any = None

    def _encoder(self) -> Any:
        if self._model is None:
            with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
                warnings.simplefilter("ignore")  # webrtcvad imports the deprecated pkg_resources
                from resemblyzer import VoiceEncoder

                self._model = VoiceEncoder(device=self._device, verbose=False)
            logger.debug("loaded Resemblyzer VoiceEncoder on %s", self._device)
        return self._model

    def embed(self, waves: Sequence[np.ndarray]) -> np.ndarray:
        """Embed utterances.

        Args:
            waves: B waveforms, each (N,) float 16 kHz mono in [-1, 1], at least 0.1 s long.

        Returns:
            (B, 256) float32, rows L2-normalised.
        """
        encoder = self._encoder()
        out = np.empty((len(waves), EMBEDDING_DIM), dtype=np.float32)
        for i, wave in enumerate(waves):
            out[i] = encoder.embed_utterance(self._preprocess(wave, i))
        return out / np.linalg.norm(out, axis=1, keepdims=True)

    @staticmethod
    def _preprocess(wave: np.ndarray, index: int) -> np.ndarray:
        """Resemblyzer's normalisation of one wave: (N,) -> (M,) float32, M <= N."""
        from resemblyzer import preprocess_wav
        from resemblyzer.audio import audio_norm_target_dBFS, normalize_volume

        wave = np.asarray(wave, dtype=np.float32)
        if wave.ndim != 1 or wave.shape[0] < SAMPLE_RATE // 10:
            raise VoxfaceError(f"wave {index}: need a 1-D 16 kHz waveform of at least 0.1 s, got shape {wave.shape}")
        if not np.all(np.isfinite(wave)) or not np.any(wave):
            raise VoxfaceError(f"wave {index} is silent or has NaN/inf samples; pass real audio")
        trimmed = preprocess_wav(wave)
        if trimmed.shape[0] < SAMPLE_RATE // 10:
            logger.debug("wave %d: VAD found no speech, keeping its silences", index)
            trimmed = normalize_volume(wave, audio_norm_target_dBFS, increase_only=True)
        return trimmed.astype(np.float32)
