"""``voxface features``: audio files -> CMP's log-mel features, in the layout of the released feature banks."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..audio.duration import PREDICT_MAX_MINUTES
from ..audio.features import cmp_logmel
from ..errors import VoxfaceError
from ..paths import output_folder
from ..runs import atomic
from .predict import Outcome, read_voice, unique_stem


def write_cmp_features(sources: list[str], out_dir: str | Path,
                       max_minutes: float | None = PREDICT_MAX_MINUTES) -> list[Outcome]:
    """``OUT/<stem>.npy`` float32 (T >= 1000, 64) per file (stems made unique: ``x``, ``x_2``, ...);
    a file that cannot be used, or is longer than ``max_minutes``, is reported in its :class:`Outcome`
    and the others still run."""
    out = output_folder(out_dir)
    outcomes, used = [], set()
    for source in sources:
        try:
            features = cmp_logmel(read_voice(source, max_minutes)).astype(np.float32)
        except VoxfaceError as e:
            outcomes.append(Outcome(source, [], str(e)))
            continue
        path = out / f"{unique_stem(Path(source).stem, used)}.npy"
        atomic.write_npy(path, features)
        outcomes.append(Outcome(source, [str(path)]))
    return outcomes
