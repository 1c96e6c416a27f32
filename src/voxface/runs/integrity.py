"""Cheap checks that a file a resumed job would skip is still the file it wrote.

A done-record (``.done.json`` of a synthesised identity, ``progress.json`` of a shard pack) lists
the files it vouches for with their sizes; resuming compares them with the disk (one ``stat`` per
file) and redoes the work whose files are missing or changed. A cached ``.npy`` is complete when
its size is what its header promises.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np


def file_sizes(root: str | os.PathLike, relative_paths: list[str]) -> dict[str, int]:
    """``{path relative to root: size in bytes}`` of files that exist now (for a done-record)."""
    root = Path(root)
    return {rel: (root / rel).stat().st_size for rel in relative_paths}


def changed_files(root: str | os.PathLike, sizes: dict[str, int]) -> list[str]:
    """The recorded files (``{relative path: size}``) that are missing or have another size now."""
    root = Path(root)
    changed = []
    for rel, size in sizes.items():
        try:
            if (root / rel).stat().st_size != size:
                changed.append(rel)
        except OSError:
            changed.append(rel)
    return changed


_HEADER_READERS = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}


def npy_problem(path: str | os.PathLike, values: bool = False) -> str | None:
    """None when ``path`` is a complete ``.npy`` file (its size is what its header promises) and, with
    ``values`` (which reads the data), holds no NaN or infinity; else what is wrong with it
    ("missing", "not a .npy file", "truncated: 1200 of 25728 bytes", "holds NaN or infinite values")."""
    path = Path(path)
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            read_header = _HEADER_READERS.get(version)
            if read_header is None:
                return f"a .npy file of unknown version {version}"
            shape, _, dtype = read_header(f)
            header = f.tell()
    except FileNotFoundError:
        return "missing"
    except (OSError, ValueError, SyntaxError, EOFError) as e:
        return f"not a .npy file ({type(e).__name__})"
    if dtype.hasobject:
        return "holds Python objects, not numbers"
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if size != expected:
        return f"truncated or padded: {size} of {expected} bytes"
    if values and np.issubdtype(dtype, np.inexact) and not np.isfinite(np.load(path, mmap_mode="r")).all():
        return "holds NaN or infinite values"
    return None
