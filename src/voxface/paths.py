"""Where voxface finds the optional real reference data (``../shared/data`` in development and CI)."""

from __future__ import annotations

import os
from pathlib import Path

from .errors import VoxfaceError

SHARED_DATA_ENV = "VOXFACE_SHARED_DATA"
OFFICIAL_CMP_ENV = "VOXFACE_CMP_OFFICIAL_CODE"


def shared_data_dir() -> Path:
    """The shared-data folder: ``$VOXFACE_SHARED_DATA``, else ``../shared/data`` from the working dir.

    It may not exist (a user's fresh clone has none); callers check.
    """
    return Path(os.environ.get(SHARED_DATA_ENV, "../shared/data")).expanduser()


def official_cmp_code_dir() -> Path:
    """The released CMP preprocessing (``mfcc.py``, ``vad.py``, ``rm_sil`` / ``get_fbank``), for
    equality checks and benchmarks: ``$VOXFACE_CMP_OFFICIAL_CODE``, else
    ``reference_code/cmp_official`` beside the shared-data folder. It may not exist; callers check.
    """
    default = shared_data_dir().parent / "reference_code" / "cmp_official"
    return Path(os.environ.get(OFFICIAL_CMP_ENV, default)).expanduser()


def output_folder(path: str | os.PathLike, flag: str = "--out") -> Path:
    """``path`` as a Path to write a folder of outputs into: it may exist (as a folder) or not yet.

    Raises:
        VoxfaceError: naming ``path`` and ``flag``, if it (or a folder above it) is an existing file.
    """
    p = Path(path)
    for folder in (p, *p.parents):
        if folder.exists() and not folder.is_dir():
            raise VoxfaceError(f"{flag} {p}: {folder} is a file, not a folder; give a folder path (it is created "
                               "if missing)")
    return p


def require_file(path: str | os.PathLike, what: str, hint: str = "") -> Path:
    """Return ``path`` as a Path if it is an existing file, else raise a VoxfaceError naming it."""
    p = Path(path)
    if not p.is_file():
        msg = f"{what} not found: {p}"
        raise VoxfaceError(msg + (f" ({hint})" if hint else ""))
    return p
