"""Source-filter voice synthesiser of the synthetic corpus and its geometry-free population prior.

A speaker is a :class:`VoiceParams` (voice-production parameters with units); an utterance is a
:class:`UtteranceConditions` (what is said and how it is recorded). :func:`synthesize` turns the two
into a 16 kHz waveform in the manner of a cascade formant synthesiser (Klatt 1980):

- glottal source: Rosenberg (1971) flow-derivative pulses at F0 with per-period jitter and shimmer,
  an open quotient, an extra spectral tilt and pitch-synchronous aspiration noise (breathiness);
- vocal tract: a nasal pole/zero pair and five formant resonators (second-order IIR) whose
  coefficients are updated every 5 ms with their state carried over; vowel targets are the
  adult-male means of Peterson & Barney (1952), scaled by ``17.5 / vtl_cm``, consonant targets are
  place-of-articulation loci, and targets are smoothed in time so that formants glide between phones;
- fricatives and plosive bursts: band-pass-filtered noise grains added in parallel;
- recording: speech level, coloured background noise at an SNR, light reverberation and a channel
  (high-pass, low-pass, low and high shelves).

Everything random inside :func:`synthesize` is drawn from ``conditions.seed``, so the output is a
deterministic function of its inputs.
"""

from __future__ import annotations

import math
from dataclasses import astuple, dataclass, fields
from typing import Mapping

import numba
import numpy as np
from scipy.fft import next_fast_len
from scipy.signal import resample_poly, sosfilt

from ..errors import VoxfaceError

REFERENCE_VTL_CM = 17.5
"""Vocal-tract length (cm) of the adult-male formant tables; formants scale with ``17.5 / vtl_cm``."""

FRAME_RATE_HZ = 200
"""Parameter update rate of the vocal-tract filter: one coefficient set every 5 ms."""

_SOURCE_OVERSAMPLING = 4  # the glottal pulses are computed at 4 x sr, then decimated
_ACCENT_WIDTH_S = 0.25  # duration of one pitch-accent rise and fall
_CLOSURE_FRACTION = 0.55  # share of a plosive spent in closure; the burst comes at its end
_BREATH_NOISE_GAIN = 0.6  # aspiration noise (RMS) per unit breathiness, re unit-RMS voiced pulses
_ASPIRATION_GAIN = 0.5  # aspiration noise (RMS) of /h/ and of voiceless plosive releases


@dataclass(frozen=True)
class VoiceParams:
    """Per-speaker voice-production parameters (all floats; units below).

    Attributes:
        f0_hz: mean fundamental frequency (Hz).
        f0_range_st: peak-to-peak span of the intonation contour (semitones).
        vtl_cm: vocal-tract length (cm); every formant scales with ``17.5 / vtl_cm``.
        jitter: relative standard deviation of the glottal period, period to period (0.005 = 0.5 %).
        shimmer: relative standard deviation of the glottal pulse amplitude, period to period.
        breathiness: aspiration-noise level mixed into the voiced source (0 = none, 1 = very breathy).
        spectral_tilt_db: extra source tilt above 300 Hz (dB per octave; negative = darker voice).
        open_quotient: fraction of the glottal period with the glottis open (0.3-0.9).
        formant_bandwidth_scale: multiplier of the formant bandwidths (1.0 = nominal).
        speaking_rate: multiplier of the articulation rate (1.2 = 20 % faster than nominal).
        nasality: velopharyngeal coupling on vowels and glides (0 = oral, 1 = strongly nasal).
        oral_ratio: front/back cavity ratio; multiplies F2 relative to F1 (about 1.0).
        vowel_space_scale: dispersion of vowel formants around the neutral vowel (log-frequency
            exponent; 1.0 = the reference speaker, < 1 = centralised, mumbled articulation).
        laryngeal_ratio: multiplier of F4 and F5 relative to the VTL prediction (the speaker-specific
            hypopharyngeal resonances; about 1.0).
    """

    f0_hz: float
    f0_range_st: float
    vtl_cm: float
    jitter: float
    shimmer: float
    breathiness: float
    spectral_tilt_db: float
    open_quotient: float
    formant_bandwidth_scale: float
    speaking_rate: float
    nasality: float
    oral_ratio: float
    vowel_space_scale: float
    laryngeal_ratio: float

    def to_vector(self) -> np.ndarray:
        """The fields in ``FIELD_NAMES`` order: (14,) float64."""
        return np.array(astuple(self), dtype=np.float64)

    @classmethod
    def from_vector(cls, vector: np.ndarray) -> "VoiceParams":
        """Inverse of :meth:`to_vector`: ``vector`` is (14,) in ``FIELD_NAMES`` order."""
        v = np.asarray(vector, dtype=np.float64).reshape(-1)
        if v.shape[0] != len(FIELD_NAMES):
            raise VoxfaceError(
                f"VoiceParams.from_vector needs {len(FIELD_NAMES)} values ({', '.join(FIELD_NAMES)}), "
                f"got {v.shape[0]}"
            )
        return cls(*(float(x) for x in v))


FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in fields(VoiceParams))
"""Names of the :class:`VoiceParams` fields, in vector order."""

_SHARED_PRIOR: dict[str, tuple[float, float]] = {
    "formant_bandwidth_scale": (1.0, 0.30),
    "speaking_rate": (1.0, 0.12),
    "nasality": (0.25, 0.20),
    "oral_ratio": (1.0, 0.06),
    "vowel_space_scale": (1.0, 0.20),
    "laryngeal_ratio": (1.0, 0.10),
}

VOICE_PRIOR: dict[str, dict[str, tuple[float, float]]] = {
    "male": {
        "f0_hz": (120.0, 20.0),
        "f0_range_st": (6.0, 2.0),
        "vtl_cm": (17.5, 0.8),
        "jitter": (0.006, 0.002),
        "shimmer": (0.035, 0.010),
        "breathiness": (0.15, 0.10),
        "spectral_tilt_db": (-1.5, 3.0),
        "open_quotient": (0.55, 0.10),
        **_SHARED_PRIOR,
    },
    "female": {
        "f0_hz": (210.0, 25.0),
        "f0_range_st": (7.0, 2.0),
        "vtl_cm": (15.0, 0.8),
        "jitter": (0.005, 0.002),
        "shimmer": (0.030, 0.010),
        "breathiness": (0.30, 0.12),
        "spectral_tilt_db": (-3.0, 3.0),
        "open_quotient": (0.65, 0.10),
        **_SHARED_PRIOR,
    },
}
"""Population prior per gender: field -> (mean, standard deviation), independent Gaussians.

Sources: F0 of adult speech, men about 120 Hz and women about 210 Hz (Titze 1994, *Principles of
Voice Production*; Hillenbrand et al. 1995, JASA 97:3099, report 131 / 220 Hz in /hVd/ words);
vocal-tract length from MRI, adult men about 17 cm and women about 15 cm (Fitch & Giedd 1999, JASA
106:1511); vowel formants of men versus women differ by the VTL ratio of about 15-20 %
(Peterson & Barney 1952; Hillenbrand et al. 1995); intonation spans of a few semitones, somewhat
wider in women (Traunmüller & Eriksson 1995); local jitter below 1 % and shimmer about 3-4 % in
healthy voices (the usual clinical norms, e.g. Baken & Orlikoff 2000); women's voices breathier,
with a larger open quotient and a steeper source tilt (Holmberg et al. 1988, JASA 84:511; Klatt &
Klatt 1990, JASA 87:820; Hanson 1997, JASA 101:466); between-speaker spread of articulation rate
about 10 % (Jacewicz et al. 2009); speaker-specific F4/F5 from the hypopharyngeal cavities
(Kitamura et al. 2005, Acoust. Sci. Tech. 26:16). Fields without a sex difference in these sources
share one prior.

The literature fixes the means and the F0 and VTL spreads. The spreads of the voice-quality and
articulation fields (tilt, open quotient, bandwidths, nasality, F2, vowel-space and F4/F5 scales)
are set towards the wide end of their plausible ranges: with narrower ones a real pretrained speaker
encoder (Resemblyzer) cannot tell synthetic speakers of one gender apart under the recording
variation of :func:`sample_conditions` (``bench/check_voice_realism.py`` measures this).
"""

VOICE_BOUNDS: dict[str, tuple[float, float]] = {
    "f0_hz": (60.0, 400.0),
    "f0_range_st": (1.0, 14.0),
    "vtl_cm": (12.0, 21.0),
    "jitter": (0.0, 0.03),
    "shimmer": (0.0, 0.12),
    "breathiness": (0.0, 1.0),
    "spectral_tilt_db": (-12.0, 6.0),
    "open_quotient": (0.3, 0.9),
    "formant_bandwidth_scale": (0.5, 2.0),
    "speaking_rate": (0.6, 1.6),
    "nasality": (0.0, 1.0),
    "oral_ratio": (0.85, 1.15),
    "vowel_space_scale": (0.6, 1.4),
    "laryngeal_ratio": (0.75, 1.25),
}
"""Physiologically plausible range of each field; :func:`voice_params_from_z` clips to it."""

_GENDER_ALIASES = {"male": "male", "m": "male", "female": "female", "f": "female"}


def canonical_gender(gender: str) -> str:
    """``"male"`` or ``"female"`` for ``gender`` in {male, m, female, f} (any case)."""
    key = _GENDER_ALIASES.get(str(gender).strip().lower())
    if key is None:
        raise VoxfaceError(f"unknown gender {gender!r}: use 'male'/'m' or 'female'/'f'")
    return key


def voice_params_from_z(z: np.ndarray, gender: str) -> VoiceParams:
    """Voice parameters at standard scores ``z`` of the ``gender`` prior, clipped to ``VOICE_BOUNDS``.

    Args:
        z: (14,) standard scores in ``FIELD_NAMES`` order (0 = the population mean).
        gender: ``"male"``/``"m"`` or ``"female"``/``"f"``.
    """
    prior = VOICE_PRIOR[canonical_gender(gender)]
    z = np.asarray(z, dtype=np.float64).reshape(-1)
    if z.shape[0] != len(FIELD_NAMES) or not np.all(np.isfinite(z)):
        raise VoxfaceError(f"voice standard scores must be {len(FIELD_NAMES)} finite values, got {z}")
    values = []
    for name, score in zip(FIELD_NAMES, z):
        mean, sd = prior[name]
        lo, hi = VOICE_BOUNDS[name]
        values.append(min(max(mean + sd * score, lo), hi))
    return VoiceParams(*values)


def sample_voice_params(rng: np.random.Generator, gender: str) -> VoiceParams:
    """Draw one speaker from the geometry-free population prior ``VOICE_PRIOR[gender]``.

    Each field is an independent Gaussian (mean, SD from ``VOICE_PRIOR``; sources there) clipped to
    ``VOICE_BOUNDS``. Draws exactly 14 standard normals from ``rng``.
    """
    return voice_params_from_z(rng.standard_normal(len(FIELD_NAMES)), gender)


# --------------------------------------------------------------------------------------------
# Phone inventory (adult-male reference values, scaled per speaker by 17.5 / vtl_cm).


@dataclass(frozen=True)
class _Phone:
    kind: str  # vowel, approximant, nasal, fricative, plosive, aspirate, pause
    formants: tuple[float, float, float] | None  # F1-F3 target or locus (Hz); None = next phone's
    voiced: bool = True
    noise: tuple[float, float, float] | None = None  # fricative/burst band: centre Hz, width Hz, level
    nasal_zero_hz: float = 0.0  # antiresonance of the closed oral cavity (nasal murmur)


_NEUTRAL = (500.0, 1500.0, 2500.0)  # uniform 17.5 cm tube: (2n - 1) c / 4L
_LABIAL, _ALVEOLAR, _VELAR = (250.0, 900.0, 2200.0), (250.0, 1700.0, 2600.0), (250.0, 2000.0, 2300.0)

PHONES: dict[str, _Phone] = {
    # Vowels: Peterson & Barney (1952), men, F1-F3 (Hz).
    "i": _Phone("vowel", (270.0, 2290.0, 3010.0)),
    "I": _Phone("vowel", (390.0, 1990.0, 2550.0)),
    "E": _Phone("vowel", (530.0, 1840.0, 2480.0)),
    "ae": _Phone("vowel", (660.0, 1720.0, 2410.0)),
    "a": _Phone("vowel", (730.0, 1090.0, 2440.0)),
    "O": _Phone("vowel", (570.0, 840.0, 2410.0)),
    "U": _Phone("vowel", (440.0, 1020.0, 2240.0)),
    "u": _Phone("vowel", (300.0, 870.0, 2240.0)),
    "V": _Phone("vowel", (640.0, 1190.0, 2390.0)),
    "3r": _Phone("vowel", (490.0, 1350.0, 1690.0)),
    # Glides and liquids.
    "w": _Phone("approximant", (300.0, 700.0, 2200.0)),
    "j": _Phone("approximant", (280.0, 2200.0, 2900.0)),
    "r": _Phone("approximant", (350.0, 1100.0, 1500.0)),
    "l": _Phone("approximant", (360.0, 1050.0, 2700.0)),
    # Nasals: loci plus the oral-cavity antiresonance.
    "m": _Phone("nasal", _LABIAL, nasal_zero_hz=1000.0),
    "n": _Phone("nasal", _ALVEOLAR, nasal_zero_hz=1600.0),
    "N": _Phone("nasal", _VELAR, nasal_zero_hz=2500.0),
    # Fricatives: loci plus the frication band.
    "f": _Phone("fricative", (300.0, 1100.0, 2300.0), False, (5000.0, 6000.0, 0.10)),
    "v": _Phone("fricative", (300.0, 1100.0, 2300.0), True, (5000.0, 6000.0, 0.08)),
    "T": _Phone("fricative", (300.0, 1500.0, 2600.0), False, (5500.0, 6000.0, 0.08)),
    "s": _Phone("fricative", (300.0, 1700.0, 2600.0), False, (5500.0, 2500.0, 0.25)),
    "z": _Phone("fricative", (300.0, 1700.0, 2600.0), True, (5500.0, 2500.0, 0.18)),
    "S": _Phone("fricative", (300.0, 1900.0, 2400.0), False, (2800.0, 1500.0, 0.25)),
    "h": _Phone("aspirate", None, False),
    # Plosives: loci plus the release burst band.
    "p": _Phone("plosive", _LABIAL, False, (1200.0, 2000.0, 0.25)),
    "b": _Phone("plosive", _LABIAL, True, (1200.0, 2000.0, 0.20)),
    "t": _Phone("plosive", _ALVEOLAR, False, (4500.0, 3000.0, 0.50)),
    "d": _Phone("plosive", _ALVEOLAR, True, (4500.0, 3000.0, 0.40)),
    "k": _Phone("plosive", _VELAR, False, (2300.0, 800.0, 0.45)),
    "g": _Phone("plosive", _VELAR, True, (2300.0, 800.0, 0.35)),
    "_": _Phone("pause", _NEUTRAL, False),
}
"""Phone symbol -> articulatory/acoustic targets (ASCII symbols; ``_`` is a pause)."""

# Relative frequencies in English speech, rounded (after Mines, Hanson & Shoup 1978); "V" stands in
# for the unstressed schwa as well.
_VOWEL_WEIGHTS = {"V": 12, "I": 10, "i": 8, "E": 7, "ae": 6, "a": 5, "u": 4, "O": 3, "3r": 3, "U": 2}
_ONSET_WEIGHTS = {
    "t": 10, "n": 8, "d": 7, "s": 7, "l": 6, "r": 6, "m": 6, "k": 6, "w": 4, "b": 4, "p": 4, "h": 4,
    "f": 3, "z": 2, "v": 2, "g": 2, "j": 2, "S": 1.5, "T": 1,
}
_CODA_WEIGHTS = {
    "n": 10, "t": 10, "s": 7, "d": 6, "z": 5, "k": 5, "m": 4, "N": 2, "p": 2, "v": 2, "f": 1.5,
    "b": 1, "g": 1, "S": 1, "T": 1,
}
_CLUSTER_HEADS = ("p", "b", "t", "d", "k", "g", "f", "s")
_DURATION_RANGE_S = {  # nominal phone durations at speaking rate 1.0
    "vowel": (0.07, 0.16),
    "approximant": (0.05, 0.08),
    "nasal": (0.05, 0.09),
    "fricative": (0.07, 0.13),
    "plosive": (0.07, 0.11),
    "aspirate": (0.05, 0.08),
    "pause": (0.08, 0.30),
}
_MAX_RATE_JITTER = 1.1
_MAX_RATE_FACTOR = VOICE_BOUNDS["speaking_rate"][1] * _MAX_RATE_JITTER  # fastest speaker and utterance


@dataclass(frozen=True)
class UtteranceConditions:
    """What one utterance says and how it is recorded.

    Attributes:
        duration_s: length of the waveform (s).
        phones: phone symbols (keys of ``PHONES``), syllable-like CV(C) sequences with pauses.
        phone_durations_s: nominal duration of each phone at speaking rate 1.0 (s); the sequence is
            longer than needed and is cut where the utterance ends.
        rate_jitter: utterance-level multiplier of the speaker's rate (about 0.9-1.1).
        lead_silence_s: silence before the first phone (s).
        tail_silence_s: silence after the last phone (s).
        f0_accent_times: (K,) times of the pitch accents as fractions of the speech interval [0, 1].
        f0_accent_heights: (K,) accent heights in [0, 1], in units of the speaker's ``f0_range_st``;
            each accent is a 250 ms raised-cosine rise and fall of F0 on a flat baseline.
        f0_declination_st: F0 fall from the start to the end of the speech (semitones).
        loudness_db: RMS level of the active speech (dBFS).
        snr_db: speech-to-background-noise ratio (dB); ``inf`` for no noise.
        noise_colour: spectral exponent of the background noise (0 white, 1 pink, 2 brown).
        highpass_hz: channel high-pass corner (Hz).
        lowpass_hz: channel low-pass corner (Hz).
        low_shelf_db: channel gain below about 300 Hz (dB).
        high_shelf_db: channel gain above about 3 kHz (dB).
        reverb_rt60_s: reverberation time (s).
        reverb_wet: reverberant-to-direct energy ratio (0 = dry).
        seed: seed of everything random inside :func:`synthesize` (jitter, shimmer, noises).
    """

    duration_s: float
    phones: tuple[str, ...]
    phone_durations_s: tuple[float, ...]
    rate_jitter: float
    lead_silence_s: float
    tail_silence_s: float
    f0_accent_times: tuple[float, ...]
    f0_accent_heights: tuple[float, ...]
    f0_declination_st: float
    loudness_db: float
    snr_db: float
    noise_colour: float
    highpass_hz: float
    lowpass_hz: float
    low_shelf_db: float
    high_shelf_db: float
    reverb_rt60_s: float
    reverb_wet: float
    seed: int


def sample_conditions(
    rng: np.random.Generator, duration_s: tuple[float, float] = (2.5, 4.0)
) -> UtteranceConditions:
    """Draw random utterance content and recording conditions.

    Args:
        rng: the random generator (advanced by this call).
        duration_s: (low, high) range of the utterance length in seconds, drawn uniformly.
    """
    lo, hi = (float(d) for d in duration_s)
    if not 0.5 <= lo <= hi:
        raise VoxfaceError(f"duration_s must be (low, high) with 0.5 <= low <= high seconds, got {duration_s}")
    duration = float(rng.uniform(lo, hi))
    lead, tail = (float(x) for x in rng.uniform(0.1, 0.3, size=2))
    phones, durations = _sample_phone_sequence(rng, (duration - lead - tail) * _MAX_RATE_FACTOR)
    accent_times = _sample_accent_times(rng, duration - lead - tail)
    band_limited = rng.random() < 0.2
    return UtteranceConditions(
        duration_s=duration,
        phones=phones,
        phone_durations_s=durations,
        rate_jitter=float(rng.uniform(2.0 - _MAX_RATE_JITTER, _MAX_RATE_JITTER)),
        lead_silence_s=lead,
        tail_silence_s=tail,
        f0_accent_times=accent_times,
        f0_accent_heights=tuple(float(x) for x in rng.uniform(0.3, 1.0, size=len(accent_times))),
        f0_declination_st=float(rng.uniform(1.0, 4.0)),
        loudness_db=float(rng.uniform(-32.0, -18.0)),
        snr_db=float(rng.uniform(15.0, 40.0)),
        noise_colour=float(rng.uniform(1.0, 2.0)),
        highpass_hz=float(np.exp(rng.uniform(np.log(40.0), np.log(200.0)))),
        lowpass_hz=float(rng.uniform(3400.0, 5000.0) if band_limited else rng.uniform(6000.0, 7800.0)),
        low_shelf_db=float(rng.uniform(-3.0, 3.0)),
        high_shelf_db=float(rng.uniform(-3.0, 3.0)),
        reverb_rt60_s=float(rng.uniform(0.05, 0.3)),
        reverb_wet=float(rng.uniform(0.02, 0.12)),
        seed=int(rng.integers(2**31)),
    )


def _sample_accent_times(rng: np.random.Generator, speech_s: float) -> tuple[float, ...]:
    """Pitch-accent times, one every 0.4-0.9 s, as fractions of a ``speech_s``-second interval."""
    times = []
    t = float(rng.uniform(0.1, 0.6))
    while t < speech_s:
        times.append(t / speech_s)
        t += float(rng.uniform(0.4, 0.9))
    return tuple(times)


def _sample_phone_sequence(rng: np.random.Generator, min_total_s: float) -> tuple[tuple[str, ...], tuple[float, ...]]:
    """Words of 1-3 CV(C) syllables (optional C+glide onsets), pauses between some words."""
    phones: list[str] = []
    total = 0.0
    while total < min_total_s:
        word: list[str] = []
        for _ in range(int(rng.choice([1, 2, 3], p=[0.45, 0.40, 0.15]))):
            if rng.random() < 0.8:
                onset = _weighted_choice(rng, _ONSET_WEIGHTS)
                word.append(onset)
                if onset in _CLUSTER_HEADS and rng.random() < 0.2:
                    word.append(str(rng.choice(("r", "l", "w"))))
            word.append(_weighted_choice(rng, _VOWEL_WEIGHTS))
            if rng.random() < 0.4:
                word.append(_weighted_choice(rng, _CODA_WEIGHTS))
        if rng.random() < 0.3:
            word.append("_")
        phones.extend(word)
        total += sum(_DURATION_RANGE_S[PHONES[p].kind][1] for p in word)
    durations = [float(rng.uniform(*_DURATION_RANGE_S[PHONES[p].kind])) for p in phones]
    return tuple(phones), tuple(durations)


def _weighted_choice(rng: np.random.Generator, weights: Mapping[str, float]) -> str:
    """One key of ``weights`` drawn with probability proportional to its value."""
    keys = list(weights)
    p = np.array([weights[k] for k in keys], dtype=np.float64)
    return keys[int(rng.choice(len(keys), p=p / p.sum()))]


# --------------------------------------------------------------------------------------------
# Synthesis.


def synthesize(voice: VoiceParams, conditions: UtteranceConditions, sr: int = 16000) -> np.ndarray:
    """Render one utterance of ``voice`` under ``conditions``.

    Args:
        voice: the speaker.
        conditions: the utterance content and recording conditions.
        sr: sample rate (Hz), a multiple of 200 from 8000 on.

    Returns:
        (N,) float32 waveform in [-1, 1], ``N = round(conditions.duration_s * sr)``.
    """
    _check_inputs(voice, conditions, sr)
    rng = np.random.default_rng(conditions.seed)
    n_samples = int(round(conditions.duration_s * sr))
    hop = sr // FRAME_RATE_HZ
    n_frames = -(-n_samples // hop) + 1
    tracks = _articulation_tracks(voice, conditions, n_frames)
    sample_frames = np.arange(n_samples) / hop

    def per_sample(track: np.ndarray) -> np.ndarray:
        return np.interp(sample_frames, np.arange(n_frames), track)

    voicing, aspiration = per_sample(tracks["voicing"]), per_sample(tracks["aspiration"])
    pulses, open_phase = _glottal_source(voice, _f0_track(voice, conditions, n_frames), n_samples, sr, rng)
    excitation = pulses * voicing
    glottal_noise = _BREATH_NOISE_GAIN * voice.breathiness * voicing * (0.3 + 0.7 * open_phase)
    glottal_noise += _ASPIRATION_GAIN * aspiration
    excitation += rng.standard_normal(n_samples) * glottal_noise
    speech = _vocal_tract(excitation, _tract_sections(voice, tracks, sr), hop)
    voiced_rms = _rms(speech[voicing > 0.5]) if np.any(voicing > 0.5) else _rms(speech)
    speech += voiced_rms * _noise_grains(voice, conditions, tracks["bounds"], n_samples, sr, rng)
    return _record(speech, conditions, sr, rng)


def _check_inputs(voice: VoiceParams, conditions: UtteranceConditions, sr: int) -> None:
    if sr < 8000 or sr % FRAME_RATE_HZ:
        raise VoxfaceError(f"sample rate must be a multiple of {FRAME_RATE_HZ} Hz from 8000 Hz on, got {sr}")
    for name, value in zip(FIELD_NAMES, astuple(voice)):
        lo, hi = VOICE_BOUNDS[name]
        if not lo <= value <= hi:
            raise VoxfaceError(f"VoiceParams.{name} = {value} is outside its range [{lo}, {hi}]")
    unknown = sorted(set(conditions.phones) - set(PHONES))
    if unknown:
        raise VoxfaceError(f"unknown phone symbols {unknown}; use the keys of voxface.audio.synth.PHONES")
    if len(conditions.phones) != len(conditions.phone_durations_s) or not conditions.phones:
        raise VoxfaceError("UtteranceConditions needs one duration per phone and at least one phone")
    if min(conditions.phone_durations_s) <= 0 or conditions.duration_s <= 0:
        raise VoxfaceError("UtteranceConditions durations must be positive")
    if len(conditions.f0_accent_times) != len(conditions.f0_accent_heights):
        raise VoxfaceError("UtteranceConditions needs one height per F0 accent time")
    if conditions.lead_silence_s + conditions.tail_silence_s >= conditions.duration_s:
        raise VoxfaceError("UtteranceConditions silences leave no time for speech; shorten them")


def _articulation_tracks(voice: VoiceParams, conditions: UtteranceConditions, n_frames: int) -> dict:
    """Frame-wise (every 5 ms) articulation targets, smoothed so that formants glide between phones.

    Returns a dict of (n_frames,) float64 tracks ``voicing``, ``aspiration``, ``nasal_coupling``,
    ``nasal_zero_hz``, ``murmur``, (n_frames, 3) ``formants_hz`` (male reference F1-F3), and
    ``bounds``: a list of (phone, start_s, end_s) for the phones that are spoken.
    """
    frame_s = 1.0 / FRAME_RATE_HZ
    formants = np.tile(_NEUTRAL, (n_frames, 1))
    voicing, aspiration, coupling, zero, murmur = (np.zeros(n_frames) for _ in range(5))
    zero[:] = 700.0
    speech_end = conditions.duration_s - conditions.tail_silence_s
    time_scale = 1.0 / (voice.speaking_rate * conditions.rate_jitter)
    t = conditions.lead_silence_s
    bounds = []
    phones = conditions.phones
    for i, (symbol, nominal) in enumerate(zip(phones, conditions.phone_durations_s)):
        if t >= speech_end:
            break
        end = min(t + nominal * time_scale, speech_end)
        phone = PHONES[symbol]
        a, b = int(round(t / frame_s)), max(int(round(end / frame_s)), int(round(t / frame_s)) + 1)
        bounds.append((symbol, t, end))
        target = phone.formants
        if target is None:  # /h/ takes the configuration of the following sound
            target = PHONES[phones[i + 1]].formants if i + 1 < len(phones) else None
            target = target or _NEUTRAL
        formants[a:b] = target
        if phone.kind in ("vowel", "approximant"):
            voicing[a:b] = 1.0 if phone.kind == "vowel" else 0.8
            coupling[a:b] = 0.7 * voice.nasality
        elif phone.kind == "nasal":
            voicing[a:b], coupling[a:b], zero[a:b], murmur[a:b] = 0.7, 1.0, phone.nasal_zero_hz, 1.0
        elif phone.kind == "fricative":
            voicing[a:b] = 0.35 if phone.voiced else 0.0
        elif phone.kind == "aspirate":
            aspiration[a:b] = 1.0
        elif phone.kind == "plosive":
            closure_end = min(a + int(round(_CLOSURE_FRACTION * (b - a))), b - 1)
            voicing[a:closure_end] = 0.12 if phone.voiced else 0.0  # voice bar
            formants[a:closure_end, 0] = 200.0
            if phone.voiced:
                voicing[closure_end:b] = 0.8
            else:
                aspiration[closure_end:b] = 0.8
        t = end
    return {
        "formants_hz": np.exp(_smooth(np.log(formants), 9)),
        "voicing": _smooth(voicing, 3),
        "aspiration": _smooth(aspiration, 3),
        "nasal_coupling": _smooth(coupling, 5),
        "nasal_zero_hz": _smooth(zero, 5),
        "murmur": _smooth(murmur, 5),
        "bounds": bounds,
    }


def _smooth(track: np.ndarray, width: int) -> np.ndarray:
    """Hann-window moving average along axis 0 with edge padding; same shape as ``track``."""
    window = np.hanning(width + 2)[1:-1]
    window /= window.sum()
    pad = width // 2
    padded = np.pad(track, [(pad, width - 1 - pad)] + [(0, 0)] * (track.ndim - 1), mode="edge")
    if track.ndim == 1:
        return np.convolve(padded, window, mode="valid")
    return np.stack([np.convolve(padded[:, j], window, mode="valid") for j in range(track.shape[1])], axis=1)


def _f0_track(voice: VoiceParams, conditions: UtteranceConditions, n_frames: int) -> np.ndarray:
    """(n_frames,) F0 in Hz: pitch accents on a flat baseline plus declination.

    The log-F0 mean over the speech interval is ``log(voice.f0_hz)``; accents of height 1 span
    ``voice.f0_range_st`` semitones (after Pierrehumbert 1980 and Fujisaki's accent commands).
    """
    times = np.arange(n_frames) / FRAME_RATE_HZ
    start = conditions.lead_silence_s
    span = max(conditions.duration_s - conditions.tail_silence_s - start, 1e-3)
    rel = (times - start) / span
    centres = start + span * np.asarray(conditions.f0_accent_times, dtype=np.float64)
    offsets = (times[None, :] - centres[:, None]) / _ACCENT_WIDTH_S
    bumps = np.where(np.abs(offsets) < 0.5, 0.5 + 0.5 * np.cos(2.0 * np.pi * offsets), 0.0)
    heights = np.asarray(conditions.f0_accent_heights, dtype=np.float64)
    accents = np.max(heights[:, None] * bumps, axis=0, initial=0.0)
    semitones = voice.f0_range_st * accents + conditions.f0_declination_st * (0.5 - np.clip(rel, 0.0, 1.0))
    speaking = (rel >= 0.0) & (rel <= 1.0)
    semitones -= semitones[speaking].mean() if np.any(speaking) else 0.0
    return voice.f0_hz * 2.0 ** (semitones / 12.0)


def _glottal_source(
    voice: VoiceParams, f0_frames: np.ndarray, n_samples: int, sr: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Rosenberg flow-derivative pulse train with jitter, shimmer and spectral tilt.

    The pulses are computed at ``_SOURCE_OVERSAMPLING`` times ``sr`` and decimated, so that the
    closure discontinuity does not alias into the band.

    Args:
        f0_frames: (n_frames,) F0 every 5 ms (Hz).
        n_samples: output length N.

    Returns:
        pulses: (N,) float64, unit RMS; open_phase: (N,) float64, 1 while the glottis is open.
    """
    fine_sr = sr * _SOURCE_OVERSAMPLING
    max_periods = int(np.sum(f0_frames) / FRAME_RATE_HZ * (1.0 + 6.0 * voice.jitter)) + 8
    period_scale = 1.0 + voice.jitter * rng.standard_normal(max_periods)
    amplitude = np.maximum(1.0 + voice.shimmer * rng.standard_normal(max_periods), 0.0)
    pulses, open_phase = _rosenberg_pulse_train(
        f0_frames, FRAME_RATE_HZ / fine_sr, n_samples * _SOURCE_OVERSAMPLING, 1.0 / fine_sr,
        period_scale, amplitude, voice.open_quotient,
    )
    pulses = resample_poly(pulses, 1, _SOURCE_OVERSAMPLING)[:n_samples]
    pulses = _apply_tilt(pulses, voice.spectral_tilt_db, sr)
    return pulses / max(_rms(pulses), 1e-12), open_phase[:: _SOURCE_OVERSAMPLING].astype(np.float64)


@numba.njit(cache=True, nogil=True)
def _rosenberg_pulse_train(
    f0_frames: np.ndarray,
    frames_per_sample: float,
    n_samples: int,
    sample_period_s: float,
    period_scale: np.ndarray,
    amplitude: np.ndarray,
    open_quotient: float,
) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover
    """Derivative of the Rosenberg (1971) glottal flow (opening:closing = 2:1), period by period.

    F0 is linearly interpolated from ``f0_frames``; period k runs at ``F0 * period_scale[k]``
    (jitter) with amplitude ``amplitude[k]`` (shimmer). Returns the (n_samples,) flow derivative per
    unit phase and the (n_samples,) bool open-glottis mask.
    """
    t_open = open_quotient * 2.0 / 3.0
    t_close = open_quotient - t_open
    last_frame = f0_frames.shape[0] - 1
    pulses = np.empty(n_samples)
    is_open = np.empty(n_samples, dtype=np.bool_)
    theta = 0.0
    period = 0
    for i in range(n_samples):
        position = min(i * frames_per_sample, float(last_frame))
        frame = min(int(position), last_frame - 1) if last_frame > 0 else 0
        frac = position - frame
        f0 = f0_frames[frame] if last_frame == 0 else f0_frames[frame] * (1.0 - frac) + f0_frames[frame + 1] * frac
        if theta < t_open:
            value = (np.pi / (2.0 * t_open)) * np.sin(np.pi * theta / t_open)
        elif theta < open_quotient:
            value = -(np.pi / (2.0 * t_close)) * np.sin(np.pi * (theta - t_open) / (2.0 * t_close))
        else:
            value = 0.0
        pulses[i] = value * amplitude[period]
        is_open[i] = theta < open_quotient
        theta += f0 * period_scale[period] * sample_period_s
        if theta >= 1.0:
            theta -= 1.0
            period = min(period + 1, period_scale.shape[0] - 1)
    return pulses, is_open


def _apply_tilt(signal: np.ndarray, tilt_db_per_octave: float, sr: int) -> np.ndarray:
    """Zero-phase spectral tilt: gain ``tilt`` dB per octave above 300 Hz, 0 dB at 1 kHz."""
    n_fft = _fft_length(signal.shape[0])
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sr)
    corner = 300.0**2
    gain = ((freqs**2 + corner) / (1000.0**2 + corner)) ** (tilt_db_per_octave / (2.0 * 20.0 * math.log10(2.0)))
    return np.fft.irfft(np.fft.rfft(signal, n_fft) * gain, n_fft)[: signal.shape[0]]


def _tract_sections(voice: VoiceParams, tracks: Mapping[str, np.ndarray], sr: int) -> np.ndarray:
    """Per-frame second-order sections of the vocal tract: (n_frames, 6, 6) float64.

    Section 0 is the nasal pole/zero pair, sections 1-5 are the formant resonators F1-F5.
    """
    scale = REFERENCE_VTL_CM / voice.vtl_cm
    neutral = np.asarray(_NEUTRAL)
    oral = neutral * (tracks["formants_hz"] / neutral) ** voice.vowel_space_scale
    oral[:, 1] *= voice.oral_ratio
    n_frames = oral.shape[0]
    upper = np.tile(np.array([3500.0, 4500.0]) * voice.laryngeal_ratio, (n_frames, 1))
    freqs = np.concatenate([oral, upper], axis=1) * scale
    for j in range(1, 5):  # keep the formants ordered and apart
        freqs[:, j] = np.maximum(freqs[:, j], freqs[:, j - 1] + 200.0)
    freqs = np.minimum(freqs, 0.46 * sr)
    murmur = tracks["murmur"][:, None]
    bandwidths = np.array([80.0, 100.0, 150.0, 250.0, 350.0]) * voice.formant_bandwidth_scale
    bandwidths = bandwidths * (1.0 + np.concatenate([0.5 * murmur, 1.0 * murmur.repeat(4, 1)], axis=1))
    bandwidths[:, 0] += 100.0 * voice.breathiness
    formant_sos = _resonator_sos(freqs, bandwidths, sr)
    pole_hz = 270.0 * scale
    zero_hz = pole_hz + tracks["nasal_coupling"] * (tracks["nasal_zero_hz"] * scale - pole_hz)
    pole = _resonator_sos(np.full(n_frames, pole_hz), np.full(n_frames, 100.0), sr)
    zero = _resonator_sos(zero_hz, np.full(n_frames, 100.0), sr)
    nasal = np.concatenate([zero[:, 3:] * (pole[:, :1] / zero[:, :1]), pole[:, 3:]], axis=1)  # unit DC gain
    return np.concatenate([nasal[:, None, :], formant_sos], axis=1)


def _resonator_sos(freq_hz: np.ndarray, bandwidth_hz: np.ndarray, sr: int) -> np.ndarray:
    """Klatt (1980) resonators with unit gain at DC as second-order sections.

    Args:
        freq_hz, bandwidth_hz: (...) centre frequencies and bandwidths (Hz).

    Returns:
        (..., 6) float64 ``[b0, b1, b2, 1, a1, a2]``.
    """
    radius = np.exp(-np.pi * bandwidth_hz / sr)
    a1 = -2.0 * radius * np.cos(2.0 * np.pi * freq_hz / sr)
    a2 = radius**2
    b0 = 1.0 + a1 + a2
    zeros = np.zeros_like(b0)
    return np.stack([b0, zeros, zeros, np.ones_like(b0), a1, a2], axis=-1)


def _vocal_tract(excitation: np.ndarray, sections: np.ndarray, hop: int) -> np.ndarray:
    """Filter ``excitation`` (N,) through time-varying sections (n_frames, S, 6), state carried over.

    Frame ``f`` (samples ``f * hop`` to ``(f + 1) * hop``) uses ``sections[f]``; each section is a
    transposed direct-form-II biquad ``[b0, b1, b2, 1, a1, a2]``. Returns (N,) float64.
    """
    return _time_varying_cascade(np.ascontiguousarray(excitation, np.float64), np.ascontiguousarray(sections), hop)


@numba.njit(cache=True, nogil=True)
def _time_varying_cascade(x: np.ndarray, sections: np.ndarray, hop: int) -> np.ndarray:  # pragma: no cover
    n_sections = sections.shape[1]
    state1 = np.zeros(n_sections)
    state2 = np.zeros(n_sections)
    out = np.empty_like(x)
    for i in range(x.shape[0]):
        coeffs = sections[i // hop]
        value = x[i]
        for s in range(n_sections):
            y = coeffs[s, 0] * value + state1[s]
            state1[s] = coeffs[s, 1] * value - coeffs[s, 4] * y + state2[s]
            state2[s] = coeffs[s, 2] * value - coeffs[s, 5] * y
            value = y
        out[i] = value
    return out


def _noise_grains(
    voice: VoiceParams,
    conditions: UtteranceConditions,
    bounds: list,
    n_samples: int,
    sr: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """Frication and release bursts: band-pass noise grains, relative to unit vowel RMS. (N,) float64."""
    out = np.zeros(n_samples)
    scale = REFERENCE_VTL_CM / voice.vtl_cm
    for symbol, start, end in bounds:
        phone = PHONES[symbol]
        if phone.noise is None:
            continue
        centre, width, level = phone.noise
        if phone.kind == "fricative":
            a, b = int(start * sr), int(end * sr)
            envelope = _raised_cosine_envelope(b - a, int(0.015 * sr))
        else:  # release burst at the end of the closure
            a = int((start + _CLOSURE_FRACTION * (end - start)) * sr)
            b = min(a + int(0.02 * sr), n_samples)
            envelope = np.exp(-np.arange(b - a) / (0.004 * sr))
            level *= 3.0
        if b <= a:
            continue
        centre = min(centre * scale, 0.42 * sr)
        sos = np.repeat(_bandpass_sos(centre, width * scale, sr)[None], 2, axis=0)
        grain = sosfilt(sos, rng.standard_normal(b - a))
        out[a:b] += level * envelope * grain / max(_rms(grain), 1e-12)
    return out


def _raised_cosine_envelope(length: int, ramp: int) -> np.ndarray:
    """(length,) envelope rising and falling over ``ramp`` samples (halved for short grains)."""
    ramp = max(1, min(ramp, length // 2))
    env = np.ones(length)
    rise = 0.5 - 0.5 * np.cos(np.pi * np.arange(ramp) / ramp)
    env[:ramp] = rise
    env[length - ramp :] = rise[::-1]
    return env


def _bandpass_sos(centre_hz: float, bandwidth_hz: float, sr: int) -> np.ndarray:
    """Constant-peak-gain band-pass biquad (RBJ cookbook) as one section: (6,) float64."""
    w0 = 2.0 * np.pi * centre_hz / sr
    q = centre_hz / max(bandwidth_hz, 1.0)
    alpha = np.sin(w0) / (2.0 * q)
    a0 = 1.0 + alpha
    return np.array([alpha / a0, 0.0, -alpha / a0, 1.0, -2.0 * np.cos(w0) / a0, (1.0 - alpha) / a0])


def _record(speech: np.ndarray, conditions: UtteranceConditions, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Level, room, background noise and channel: (N,) float64 speech -> (N,) float32 in [-1, 1]."""
    n = speech.shape[0]
    speech = speech * (10.0 ** (conditions.loudness_db / 20.0) / _active_rms(speech, sr // 100))
    impulse = _room_impulse(conditions, sr, rng)
    n_fft = _fft_length(n + impulse.shape[0])
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sr)
    spectrum = np.fft.rfft(speech, n_fft) * np.fft.rfft(impulse, n_fft)
    if np.isfinite(conditions.snr_db):
        noise = np.fft.rfft(rng.standard_normal(n), n_fft) * np.maximum(freqs, 20.0) ** (-conditions.noise_colour / 2)
        noise_rms = _rms(np.fft.irfft(noise, n_fft)[:n])
        target = 10.0 ** ((conditions.loudness_db - conditions.snr_db) / 20.0)
        spectrum += noise * (target / max(noise_rms, 1e-12))
    wave = np.fft.irfft(spectrum * _channel_gain(freqs, conditions), n_fft)[:n]
    peak = np.max(np.abs(wave))
    if peak > 0.99:
        wave *= 0.99 / peak
    return wave.astype(np.float32)


def _active_rms(x: np.ndarray, frame: int) -> float:
    """RMS (> 0) of the ``frame``-sample frames of ``x`` within 30 dB of the loudest one."""
    frames = x[: x.shape[0] - x.shape[0] % frame].reshape(-1, frame) if x.shape[0] >= frame else x[None]
    energy = np.mean(frames**2, axis=1)
    return max(math.sqrt(np.mean(energy[energy >= 1e-3 * energy.max()])), 1e-12)


def _room_impulse(conditions: UtteranceConditions, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Direct path plus an exponentially decaying noise tail: (L,) float64, tail energy = ``reverb_wet``."""
    length = max(int(min(conditions.reverb_rt60_s, 0.6) * sr), 1)
    impulse = np.zeros(length + 1)
    impulse[0] = 1.0
    if conditions.reverb_wet > 0 and conditions.reverb_rt60_s > 0 and length > 1:
        t = np.arange(1, length + 1) / sr
        tail = rng.standard_normal(length) * np.exp(-6.91 * t / conditions.reverb_rt60_s)
        impulse[1:] = tail * math.sqrt(conditions.reverb_wet / np.sum(tail**2))
    return impulse


def _channel_gain(freqs: np.ndarray, conditions: UtteranceConditions) -> np.ndarray:
    """Zero-phase channel magnitude at ``freqs`` (Hz): Butterworth-like band limits and two shelves."""
    f = np.maximum(freqs, 1.0)
    highpass = 1.0 / np.sqrt(1.0 + (conditions.highpass_hz / f) ** 4)
    lowpass = 1.0 / np.sqrt(1.0 + (f / conditions.lowpass_hz) ** 8)
    low_weight = 1.0 / (1.0 + (f / 300.0) ** 2)
    high_weight = (f / 3000.0) ** 2 / (1.0 + (f / 3000.0) ** 2)
    shelves_db = conditions.low_shelf_db * low_weight + conditions.high_shelf_db * high_weight
    return highpass * lowpass * 10.0 ** (shelves_db / 20.0)


def _fft_length(n: int) -> int:
    return next_fast_len(n, real=True)


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x)))) if x.size else 0.0
