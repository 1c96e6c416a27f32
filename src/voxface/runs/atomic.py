"""Atomic file writes: write to a temporary name in the same folder, then rename.

A job killed half-way never leaves a half-written file that later looks complete. A folder that
cannot take the file (read-only, full, not permitted) is a :class:`WriteError` naming the folder
and the cause; :func:`recording` lists what a batch wrote before such an error stopped it.
"""

from __future__ import annotations

import contextlib
import contextvars
import errno
import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from ..errors import VoxfaceError

TEMPORARY_MARKER = ".tmp"
WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EPERM, errno.EDQUOT, errno.EFBIG})
"""Causes of a failed write that are the folder's, not voxface's: the user must free or change it."""
_RECORDERS: contextvars.ContextVar[tuple[list, ...]] = contextvars.ContextVar("atomic_recorders", default=())


class WriteError(VoxfaceError):
    """A file could not be written where the user asked (read-only, full, not permitted)."""


def write_failure(error: OSError, path: str | os.PathLike | None = None) -> WriteError:
    """The one-line :class:`WriteError` for ``error`` (an OSError whose errno is in :data:`WRITE_ERRNOS`)
    on ``path`` (default: the file the error names)."""
    path = Path(path if path is not None else error.filename or ".")
    cause = error.strerror or os.strerror(error.errno)
    return WriteError(f"cannot write {path.name} in {path.parent}: {cause}; free space there or choose another folder")


@contextlib.contextmanager
def recording() -> Iterator[list[Path]]:
    """Collect, in order, the paths the atomic writes of this block complete (this thread only); a
    :class:`WriteError` leaving the block says how many were written and which, before it stopped."""
    written: list[Path] = []
    token = _RECORDERS.set(_RECORDERS.get() + (written,))
    try:
        yield written
    except WriteError as e:
        if not written:
            raise WriteError(f"{e}; nothing was written") from None
        folders = {p.parent for p in written}
        where = f" to {next(iter(folders))}" if len(folders) == 1 else ""
        names = ", ".join(p.name if where else str(p) for p in written)
        raise WriteError(f"{e}; before it stopped, {len(written)} file(s) were written{where}: {names}") from None
    finally:
        _RECORDERS.reset(token)

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
    except OSError as e:
        raise _as_write_error(e, path) from None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f"{TEMPORARY_MARKER}{path.suffix}",
                                   dir=path.parent)
    except OSError as e:
        raise _as_write_error(e, path) from None
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        tmp_path.chmod(_CREATE_MODE & ~_umask())
        yield tmp_path
        os.replace(tmp_path, path)
    except OSError as e:
        raise _as_write_error(e, path) from None
    finally:
        with contextlib.suppress(OSError):
            tmp_path.unlink()
    for written in _RECORDERS.get():
        written.append(path)


def _as_write_error(error: OSError, path: Path) -> OSError | WriteError:
    """``error`` as a :class:`WriteError` when the folder is to blame, else ``error`` itself."""
    return write_failure(error, path) if error.errno in WRITE_ERRNOS else error


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
