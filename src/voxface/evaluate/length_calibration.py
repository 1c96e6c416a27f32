"""How sure, as speech accumulates: an uncertainty head's spread rescaled by how long the voice spoke.

A Gaussian head predicts one spread per voice whatever the length of speech it heard, while its
error grows on short speech (docs/serve.md, "How sure, as speech accumulates"). A
:class:`LengthCalibration` holds, for a few lengths of speech, how much wider the head's intervals
must be at that length than at the longest one, measured on held-out voices cut to each length::

    held_out(L)² = mean over voices and coefficients of (truth − mean)² / marginal variance
    scale(L)     = held_out(L) / held_out(longest L)

Only the trend is kept: the level (``held_out`` at the longest length) comes from a few validation
identities and does not carry to new voices, while the head's own level was trained on every training
identity, so a voice that spoke at least the longest length keeps the head's spread (factor 1).
Between the fitted lengths the factor is interpolated in log-seconds; outside them the nearest
length's factor is kept. The covariance of a voice that spoke for ``s`` seconds is multiplied by
``scale(s)²``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .uncertainty import CoefficientDistribution

LENGTHS_S = (1.0, 2.0, 4.0, 8.0)
"""The lengths of speech (seconds) a calibration is fitted at by default."""


@dataclass
class LengthCalibration:
    """Per-length scale of a head's standard deviations.

    Attributes:
        seconds: (L,) increasing lengths of speech in seconds.
        held_out: (L,) positive factors that would calibrate the held-out crops of each length.
        voices: (L,) held-out voice crops each factor was fitted on.
    """

    seconds: np.ndarray
    held_out: np.ndarray
    voices: np.ndarray

    @property
    def scale(self) -> np.ndarray:
        """(L,) factors of the standard deviations at ``seconds``: the trend, 1 at the longest."""
        return self.held_out / self.held_out[-1]

    def at(self, seconds: np.ndarray) -> np.ndarray:
        """(B,) seconds of speech -> (B,) factors of the standard deviations."""
        log_seconds = np.log(np.clip(np.asarray(seconds, dtype=np.float64), self.seconds[0], self.seconds[-1]))
        return np.interp(log_seconds, np.log(self.seconds), self.scale)

    def apply(self, distribution: CoefficientDistribution, seconds: np.ndarray) -> CoefficientDistribution:
        """The (B, K) ``distribution`` of voices that spoke ``seconds`` (B,), its spread rescaled."""
        scale = self.at(seconds)[:, None]
        return CoefficientDistribution(distribution.mean, distribution.variance * scale ** 2,
                                       distribution.factor * scale[..., None])

    @classmethod
    def fit(cls, predicted: dict[float, tuple[CoefficientDistribution, np.ndarray]]) -> "LengthCalibration":
        """From each length's (N, K) predictive distribution of held-out voice crops and their (N, K)
        true coefficients; lengths without crops are left out.

        Raises:
            ValueError: if no length has a crop.
        """
        rows = [(seconds, cls.scale_for(*predicted[seconds]), len(predicted[seconds][1]))
                for seconds in sorted(predicted) if len(predicted[seconds][1])]
        if not rows:
            raise ValueError("no held-out voice is long enough for any length of the calibration")
        seconds, held_out, voices = (np.array(column, dtype=np.float64) for column in zip(*rows))
        return cls(seconds, held_out, voices.astype(np.int64))

    @staticmethod
    def scale_for(distribution: CoefficientDistribution, truth: np.ndarray) -> float:
        """The factor making the mean squared standardised error of ``truth`` (N, K) under
        ``distribution`` (N, K) one."""
        z2 = np.square(truth - distribution.mean) / distribution.marginal_variance
        return float(np.sqrt(z2.mean()))

    def to_saved(self) -> dict:
        return {"seconds": self.seconds.tolist(), "held_out": self.held_out.tolist(), "voices": self.voices.tolist()}

    @classmethod
    def from_saved(cls, saved: dict | None) -> "LengthCalibration | None":
        if saved is None:
            return None
        seconds, held_out = (np.asarray(saved[k], dtype=np.float64) for k in ("seconds", "held_out"))
        if seconds.ndim != 1 or seconds.shape != held_out.shape or not len(seconds) or np.any(np.diff(seconds) <= 0) \
                or not np.all(np.isfinite(held_out)) or np.any(held_out <= 0) or seconds[0] <= 0:
            raise ValueError("a length calibration needs increasing positive lengths and positive finite scales")
        return cls(seconds, held_out, np.asarray(saved["voices"], dtype=np.int64))


def crops_of_length(speech: list[np.ndarray], seconds: float, per_utterance: int, rng: np.random.Generator,
                    rate: int = 16000) -> tuple[list[np.ndarray], np.ndarray]:
    """Random ``seconds``-long windows of each (N,) speech waveform long enough, ``per_utterance``
    each: the windows and (M,) the index of the utterance each came from. Windows of the speech,
    not of its features: the front end then treats a window as it treats a voice that spoke that
    long (CMP's log-mel repeats short speech to a fixed number of frames)."""
    samples = int(round(seconds * rate))
    windows, source = [], []
    for index, wave in enumerate(speech):
        if len(wave) < samples:
            continue
        for start in rng.integers(0, len(wave) - samples + 1, size=per_utterance):
            windows.append(wave[start:start + samples])
            source.append(index)
    return windows, np.array(source, dtype=np.int64)
