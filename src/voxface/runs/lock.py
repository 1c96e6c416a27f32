"""One writer per folder: a run or corpus folder is locked by the process that writes it.

Two ``train`` commands on one ``--run`` would log every metrics row twice and write checkpoints over
each other; two ``synth`` on one ``--out`` would race on the same files. :func:`folder_lock` takes an
exclusive ``flock`` on ``FOLDER/.voxface.lock`` (the kernel releases it when the process ends, even
by SIGKILL, so a killed writer never leaves the folder locked) and writes who holds it into the
file, so that a second command can say so.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import sys
import time
from pathlib import Path
from typing import Iterator

from ..errors import VoxfaceError

LOCK_FILE = ".voxface.lock"


@contextlib.contextmanager
def folder_lock(folder: str | os.PathLike, what: str) -> Iterator[Path]:
    """Hold ``folder`` (created if missing) for this process until the block ends.

    Args:
        folder: the run or corpus folder.
        what: how messages name it ("run folder", "corpus folder").

    Raises:
        VoxfaceError: naming the folder and the process that holds it (pid, host, command, since when).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip() or "another process"
        os.close(fd)
        raise VoxfaceError(f"{what} {folder} is in use by {holder}; wait until it ends, or use another folder") from None
    try:
        command = " ".join([os.path.basename(sys.argv[0]), *sys.argv[1:]])[:200]
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime())
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"process {os.getpid()} on {socket.gethostname()} ({command}), since {since}\n".encode(), 0)
        yield folder
    finally:
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
        os.close(fd)
