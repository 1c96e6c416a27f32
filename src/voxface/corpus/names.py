"""Invented, pronounceable identity names whose initials cycle through A–Z."""

from __future__ import annotations

import string

import numpy as np

_VOWELS = "aeiou"
_ONSETS = ["b", "d", "f", "g", "h", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "br", "ch", "dr",
           "gr", "st", "th", "tr"]
_CODAS = ["", "", "n", "r", "l", "s", "m", "th", "nd", "rt"]


def invented_name(rng: np.random.Generator, initial: str) -> str:
    """``First_Last`` whose first name starts with ``initial`` (so it sets the A–E / F–Z split)."""
    return f"{_word(rng, initial, 2)}_{_word(rng, rng.choice(list(string.ascii_uppercase)), 3)}"


def identity_names(n: int, rng: np.random.Generator) -> list[str]:
    """``n`` distinct names; the i-th starts with the letter ``i mod 26``, spreading them over A–Z."""
    names: list[str] = []
    while len(names) < n:
        name = invented_name(rng, string.ascii_uppercase[len(names) % 26])
        if name not in names:
            names.append(name)
    return names


def _word(rng: np.random.Generator, initial: str, max_syllables: int) -> str:
    word = initial.upper()
    if initial.lower() not in _VOWELS:
        word += rng.choice(list(_VOWELS))
    for _ in range(int(rng.integers(1, max_syllables + 1))):
        word += rng.choice(_ONSETS) + rng.choice(list(_VOWELS))
    return word + rng.choice(_CODAS)
