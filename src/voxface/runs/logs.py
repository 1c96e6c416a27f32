"""Logging set-up for the command line: a console handler, and optionally a log file inside a run folder."""

from __future__ import annotations

import contextlib
import logging
import warnings
from pathlib import Path
from typing import Iterator

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def setup_logging(verbose: bool = False) -> None:
    """Log INFO (DEBUG with ``verbose``) to stderr."""
    root = logging.getLogger()
    root.setLevel(logging.DEBUG)
    for h in list(root.handlers):
        root.removeHandler(h)
    console = logging.StreamHandler()
    console.setLevel(logging.DEBUG if verbose else logging.INFO)
    console.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    root.addHandler(console)
    for noisy in ("matplotlib", "PIL", "numba", "trimesh", "OpenGL", "pyrender", "lightning", "lightning.pytorch",
                  "lightning.fabric", "lightning_fabric", "fsspec"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*(LeafSpec|litlogger|does not have many workers).*")


@contextlib.contextmanager
def log_file(path: str | Path) -> Iterator[None]:
    """Append every log record to ``path`` (created with its folder) while the block runs."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path)
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter(FORMAT))
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)
        handler.close()
