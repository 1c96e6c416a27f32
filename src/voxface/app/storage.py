"""Where ``voxface serve`` writes the files of each request, and how long they stay.

Each request gets a folder under one root that belongs to this server process
(``$TMPDIR/voxface-serve-<pid>-*``; ``voxface serve`` also puts Gradio's cache there, in ``gradio/``). Gradio copies what the page shows into its own cache (aged
out by its ``delete_cache`` setting), so a request's folder is needed only until its answer has
been sent: :class:`RequestFolders` keeps the newest few and removes older ones as new requests
come, removes the whole root when the server stops, and :func:`sweep_abandoned` removes the roots
of servers that were killed before they could.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import time
import uuid
from pathlib import Path

from ..runs.atomic import process_running

log = logging.getLogger(__name__)

ROOT_PREFIX = "voxface-serve-"
CACHE_MAX_BYTES = 256 * 2**20
"""Most bytes of answers kept downloadable at once (about 280 answers of 0.9 MB); the oldest go first."""
KEEP_REQUESTS = 16
"""Request folders kept besides the newest (the page answers from Gradio's copies)."""
GRACE_S = 10.0
"""A request folder younger than this is never removed: Gradio copies an answer's files into its
cache right after the handler returns (milliseconds), and at most ``CONCURRENCY`` requests are in
the handler at once, so the newest folders beyond :data:`KEEP_REQUESTS` are long copied."""


class RequestFolders:
    """One new folder per request under ``root``; at most ``keep`` old ones are kept.

    Args:
        root: the folder to hold them (made if missing).
        keep: request folders kept once older than :data:`GRACE_S`.
        owned: remove ``root`` itself in :meth:`close` (True for a root this server made).
    """

    def __init__(self, root: str | os.PathLike, keep: int = KEEP_REQUESTS, owned: bool = False):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.keep, self.owned = keep, owned

    @classmethod
    def for_this_process(cls, keep: int = KEEP_REQUESTS) -> "RequestFolders":
        """A fresh root ``$TMPDIR/voxface-serve-<pid>-*`` that :meth:`close` removes."""
        root = tempfile.mkdtemp(prefix=f"{ROOT_PREFIX}{os.getpid()}-")
        return cls(root, keep, owned=True)

    def new(self) -> Path:
        """A new, empty folder for one request (older folders beyond ``keep`` are removed first)."""
        self.prune()
        folder = self.root / uuid.uuid4().hex
        folder.mkdir()
        return folder

    def prune(self, now: float | None = None) -> int:
        """Remove the request folders beyond the newest ``keep`` that are older than :data:`GRACE_S`;
        return how many were removed."""
        now = time.time() if now is None else now
        folders = sorted((p for p in self.root.iterdir() if _is_request(p)), key=_mtime, reverse=True)
        removed = 0
        for folder in folders[self.keep:]:
            if now - _mtime(folder) > GRACE_S:
                shutil.rmtree(folder, ignore_errors=True)
                removed += 1
        return removed

    def close(self) -> None:
        """Remove every request folder (and the root, if this server made it)."""
        if self.owned:
            shutil.rmtree(self.root, ignore_errors=True)
        elif self.root.is_dir():
            for folder in filter(_is_request, self.root.iterdir()):
                shutil.rmtree(folder, ignore_errors=True)


def expire_cached(file_sets: list[set], max_age_s: float, max_bytes: int = CACHE_MAX_BYTES,
                  now: float | None = None) -> int:
    """Delete the files in ``file_sets`` (a Gradio page's ``temp_file_sets``) created more than
    ``max_age_s`` ago, then the oldest others while together they hold more than ``max_bytes``, and
    their folders once empty; return how many files went.

    Gradio's own ``delete_cache`` task does the same on a timer, but it stops for good when a request
    adds a file while it iterates (a RuntimeError in its loop), so the page also calls this on each
    request; a round that meets a set being changed leaves the rest to the next one.
    """
    now = time.time() if now is None else now
    kept = []  # (created, size, name, its set), of the files young enough to stay
    removed = 0
    for files in file_sets:
        try:
            candidates = list(files)
        except RuntimeError:  # changed while copied: the next request tries again
            continue
        for name in candidates:
            try:
                status = Path(name).lstat()
            except FileNotFoundError:
                files.discard(name)
                continue
            except OSError:
                continue
            created = status.st_ctime
            if now - created <= max_age_s:
                kept.append((created, status.st_size, name, files))
            elif _remove_cached(name, files):
                removed += 1
    total = sum(size for _, size, _, _ in kept)
    for _, size, name, files in sorted(kept, key=lambda k: k[0]):
        if total <= max_bytes:
            break
        if _remove_cached(name, files):
            removed += 1
            total -= size
    return removed


def _remove_cached(name: str, files: set) -> bool:
    """Delete one cached file (and its folder once empty), forgetting it in ``files``; False if it stays."""
    path = Path(name)
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    except OSError:
        return False
    files.discard(name)
    with contextlib.suppress(OSError):
        path.parent.rmdir()
    return True


def sweep_abandoned(temp_dir: str | os.PathLike | None = None) -> int:
    """Remove the request roots of ``voxface serve`` processes of this user that no longer run
    (killed before they could clean up); return how many were removed."""
    removed = 0
    for root in Path(temp_dir or tempfile.gettempdir()).glob(f"{ROOT_PREFIX}*"):
        pid = root.name[len(ROOT_PREFIX):].split("-")[0]
        try:
            mine = root.is_dir() and root.stat().st_uid == os.getuid()
        except OSError:
            continue
        if mine and pid.isdigit() and not process_running(int(pid)):
            shutil.rmtree(root, ignore_errors=True)
            removed += 1
    if removed:
        log.info("removed %d folder(s) of voxface serve processes that were killed", removed)
    return removed


def _is_request(path: Path) -> bool:
    """A request folder: named by a uuid4 hex (other folders under the root are left alone)."""
    return len(path.name) == 32 and all(c in "0123456789abcdef" for c in path.name) and path.is_dir()


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0
