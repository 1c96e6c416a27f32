"""Reading voxface's own saved files: a dict with a ``format`` tag, found in a run folder or given by path."""

from __future__ import annotations

from pathlib import Path

import torch

from .errors import VoxfaceError


def load_tagged(run_or_file: str | Path, default_name: str, fmt: str, what: str, hint: str,
                weights_only: bool = False) -> tuple[dict, Path]:
    """Load a saved dict whose ``format`` is ``fmt``; return it and the file it came from.

    Args:
        run_or_file: a run folder (then ``default_name`` inside it is read) or the file itself.
        default_name: the file's name inside a run folder.
        fmt: the expected ``format`` tag.
        what: what the file is, for messages ("voice-to-3D predictor").
        hint: what the user should do, for messages ("train one with `voxface train supervised`").
        weights_only: torch.load's safe mode, for files that hold only tensors and plain values.

    Raises:
        VoxfaceError: naming the path, if it is missing, unreadable, or a file of another kind.
    """
    path = Path(run_or_file)
    path = path / default_name if path.is_dir() else path
    if not path.is_file():
        raise VoxfaceError(f"no {what} at {path}; {hint}")
    try:
        saved = torch.load(path, map_location="cpu", weights_only=weights_only)
    except Exception as e:  # a truncated or foreign file
        raise VoxfaceError(f"{path} is not a readable {what} ({type(e).__name__}: {e}); {hint}") from e
    if not isinstance(saved, dict) or saved.get("format") != fmt:
        raise VoxfaceError(f"{path} is not a voxface {what} (a file of another kind?); {hint}")
    return saved, path
