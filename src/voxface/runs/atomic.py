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
import re
import shutil
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
        fd, tmp = tempfile.mkstemp(prefix=_temporary_prefix(path.stem), suffix=f"{TEMPORARY_MARKER}{path.suffix}",
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


@contextlib.contextmanager
def atomic_folder(path: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty temporary folder beside ``path``; on success it replaces ``path`` (and what was there).

    A folder of several files (a report) then appears whole or not at all; a killed writer leaves
    only the temporary folder, which :func:`remove_stale_temporaries` sweeps.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=_temporary_prefix(path.name), suffix=TEMPORARY_MARKER, dir=path.parent))
    except OSError as e:
        raise _as_write_error(e, path) from None
    try:
        yield staging
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=_temporary_prefix(path.name), suffix=TEMPORARY_MARKER, dir=path.parent))
            os.replace(path, old / path.name)
            os.replace(staging, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(staging, path)
    except OSError as e:
        raise _as_write_error(e, path) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _temporary_prefix(name: str) -> str:
    """``.<name>.<pid>-``: a temporary says which process writes it, so a sweep can tell a dead writer's."""
    return f".{name}.{os.getpid()}-"


_WRITER = re.compile(r"\.(\d+)-[^.]*" + re.escape(TEMPORARY_MARKER))


def remove_stale_temporaries(root: str | os.PathLike, recursive: bool = True) -> int:
    """Delete the temporary files and folders that killed writers left under ``root``; return how many.

    A temporary of :func:`atomic_path` or :func:`atomic_folder` names its writer's pid; it is removed
    when that process no longer runs (so a sweep never takes the file of a writer still at work), as
    is a file without a pid (an older voxface's). A SIGKILL leaves such a temporary behind, never the
    final name. ``recursive``: also look in the folders below ``root``.
    """
    root = Path(root)
    if not root.is_dir():
        return 0
    pattern = f".*{TEMPORARY_MARKER}*"
    removed = 0
    for path in list(root.rglob(pattern) if recursive else root.glob(pattern)):
        writer = _WRITER.search(path.name)
        if writer is not None and process_running(int(writer.group(1))):
            continue
        if path.is_dir() and writer is not None:
            shutil.rmtree(path, ignore_errors=True)
        elif path.is_file():
            path.unlink(missing_ok=True)
        else:
            continue
        removed += 1
    return removed


def process_running(pid: int) -> bool:
    """Whether process ``pid`` exists (on this machine)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


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
