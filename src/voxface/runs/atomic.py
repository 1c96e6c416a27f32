"""Atomic file writes: write to a temporary name in the same folder, then rename.

A job killed half-way never leaves a half-written file that later looks complete.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from ..errors import VoxfaceError

TEMPORARY_MARKER = ".tmp"
_CREATE_MODE = 0o666
"""Mode of a new file before the umask, as ``open(path, "w")`` makes it (mkstemp makes 0600)."""


def _umask() -> int:
    """The process's umask: from /proc on Linux (no change to the process), else by setting it and
    setting it back."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it onto ``path``.

    The temporary file keeps ``path``'s suffix so that libraries choosing a format by suffix
    (trimesh, matplotlib, soundfile) still work.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise VoxfaceError(f"cannot write {path}: a file stands where its folder should be; "
                           "choose another output folder") from None
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f"{TEMPORARY_MARKER}{path.suffix}", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    tmp_path.chmod(_CREATE_MODE & ~_umask())
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def remove_stale_temporaries(root: str | os.PathLike) -> int:
    """Delete the temporary files that killed writers left under ``root``; return how many.

    Call it when a job (re)starts on its output folder and no other writer is active there: a
    SIGKILL leaves the in-flight temporary of :func:`atomic_path` behind (never the final name).
    """
    removed = 0
    for path in Path(root).rglob(f".*{TEMPORARY_MARKER}*"):
        if path.is_file():
            path.unlink()
            removed += 1
    return removed


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | os.PathLike, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def write_npy(path: str | os.PathLike, array: np.ndarray) -> None:
    buf = io.BytesIO()
    np.save(buf, np.asarray(array))
    write_bytes(path, buf.getvalue())


def write_npz(path: str | os.PathLike, **arrays: np.ndarray) -> None:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    write_bytes(path, buf.getvalue())


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
