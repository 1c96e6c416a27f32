"""``voxface features``: audio files -> CMP's log-mel features, in the layout of the released feature banks."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..audio.features import cmp_logmel
from ..audio.voice import prepare_voice
from ..errors import VoxfaceError
from ..runs import atomic
from .predict import Outcome, unique_stem


def write_cmp_features(sources: list[str], out_dir: str | Path) -> list[Outcome]:
    """``OUT/<stem>.npy`` float32 (T >= 1000, 64) per file (stems made unique: ``x``, ``x_2``, ...);
    a file that cannot be used is reported in its :class:`Outcome` and the others still run."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise VoxfaceError(f"--out {out} is a file; give a folder")
    outcomes, used = [], set()
    for source in sources:
        try:
            features = cmp_logmel(prepare_voice(source)).astype(np.float32)
        except VoxfaceError as e:
            outcomes.append(Outcome(source, [], str(e)))
            continue
        path = out / f"{unique_stem(Path(source).stem, used)}.npy"
        atomic.write_npy(path, features)
        outcomes.append(Outcome(source, [str(path)]))
    return outcomes
