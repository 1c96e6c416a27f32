"""The released CMP preprocessing, run from its own files: the yardstick of :mod:`.features`.

voxface does not ship that code. Benchmarks and tests load it from
:func:`voxface.paths.official_cmp_code_dir` (in development, the copy beside the shared data) and
run it as the release's scripts do: ``get_fbank(rm_sil(wav, webrtcvad.Vad(2)), MFCC(...))``, with
a fresh detector per recording. ``rm_sil`` writes and deletes a ``tmp/`` folder in the working
directory, so each call runs inside a private folder (made once, removed with the function).
"""

from __future__ import annotations

import importlib
import os
import shutil
import sys
import tempfile
import warnings
import weakref
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import VoxfaceError
from ..paths import OFFICIAL_CMP_ENV, official_cmp_code_dir

FILES = ("mfcc.py", "vad.py", "official_preprocess.py")


def official_frontend(code_dir: str | os.PathLike | None = None) -> Callable[[Path], np.ndarray]:
    """``features(wav_path) -> (T, 64) float32`` computed by the released CMP code itself.

    The ``MFCC`` analyser (64 filters, 20–7200 Hz, 1024-point FFT, 25 ms window, as the release
    configures it) is built once and its pre-emphasis prior reset to 0 before each recording,
    which is what a fresh analyser per recording gives.

    Raises:
        VoxfaceError: naming the folder, if it lacks the released files.
    """
    folder = Path(code_dir) if code_dir is not None else official_cmp_code_dir()
    missing = [name for name in FILES if not (folder / name).is_file()]
    if missing:
        raise VoxfaceError(f"the released CMP preprocessing is not in {folder} (missing {', '.join(missing)}); "
                           f"point ${OFFICIAL_CMP_ENV} at a folder holding {', '.join(FILES)}")
    sys.path.insert(0, str(folder))
    try:
        with warnings.catch_warnings():  # webrtcvad imports the deprecated pkg_resources
            warnings.simplefilter("ignore")
            import webrtcvad
            mfcc = importlib.import_module("mfcc")
            preprocess = importlib.import_module("official_preprocess")
    finally:
        sys.path.remove(str(folder))
    analyser = mfcc.MFCC(nfilt=64, lowerf=20.0, upperf=7200.0, samprate=16000, nfft=1024, wlen=0.025)
    workdir = tempfile.mkdtemp(prefix="voxface-official-")

    def features(wav_path: Path) -> np.ndarray:
        analyser.prior = 0
        wav = str(Path(wav_path).resolve())
        previous = os.getcwd()
        os.chdir(workdir)
        try:
            return preprocess.get_fbank(preprocess.rm_sil(wav, webrtcvad.Vad(2)), analyser)
        finally:
            os.chdir(previous)

    weakref.finalize(features, shutil.rmtree, workdir, True)
    return features
