"""The optional parts of voxface (``pip install 'voxface-toolkit[serve]'``, ``[faces]``): importing one
that is not installed is a one-line error naming the extra that brings it."""

from __future__ import annotations

import importlib
from types import ModuleType

from .errors import VoxfaceError

EXTRAS = {"gradio": "serve", "dlib": "faces", "face_recognition_models": "faces", "eos": "faces"}
"""Module -> the extra of pyproject.toml that installs it."""


def optional_module(name: str, what: str) -> ModuleType:
    """Import ``name`` for ``what`` ("the web page", "face detection").

    Raises:
        VoxfaceError: naming the extra to install, when the module is missing or does not import.
    """
    try:
        return importlib.import_module(name)
    except ImportError as e:
        extra = EXTRAS.get(name.split(".")[0], "all")
        raise VoxfaceError(f"{what} needs the package {name!r}, which is not installed or does not import ({e}); "
                           f"install it with `pip install 'voxface-toolkit[{extra}]'`") from None
