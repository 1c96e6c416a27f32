"""Reading files that a user or a download supplied (configs, JSON, arrays, images), refusing damage in one line.

A file from elsewhere may be binary where text is expected, nested a hundred thousand levels deep,
hold a number with thousands of digits, an object array (unpickling it could run code), or an image
header that claims gigapixels. Each reader here bounds what it reads (size, depth, pixels) and turns
every such failure into a :class:`~voxface.errors.VoxfaceError` naming the file and ``what`` it
should be. Torch files are read by :mod:`voxface.runs.checkpoints`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from ..errors import VoxfaceError

MAX_TEXT_BYTES = 1 << 20
"""Largest config or JSON file read (settings, metrics and calibrations are a few kB)."""
MAX_DEPTH = 64
"""Deepest nesting of lists and mappings accepted in YAML or JSON."""
MAX_PIXELS = 64_000_000
"""Largest image decoded (a 8000 x 8000 photo); the header is checked before any pixel is read."""


def read_text(path: str | os.PathLike, what: str, max_bytes: int = MAX_TEXT_BYTES) -> str:
    """The UTF-8 text of ``path``.

    Raises:
        VoxfaceError: naming ``what`` and ``path``, if it is missing, larger than ``max_bytes`` or binary.
    """
    path = Path(path)
    if not path.is_file():
        raise VoxfaceError(f"{what} not found: {path}")
    size = path.stat().st_size
    if size > max_bytes:
        raise VoxfaceError(f"{what} {path} is {size / 2**20:.1f} MB; a {what} is at most {max_bytes / 2**20:g} MB "
                           "(is it the right file?)")
    data = path.read_bytes()
    try:
        if b"\0" in data:
            raise UnicodeDecodeError("utf-8", data, data.index(b"\0"), data.index(b"\0") + 1, "NUL byte")
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise VoxfaceError(f"{what} {path} is binary, not UTF-8 text (is it the right file?)") from None


def read_yaml(path: str | os.PathLike, what: str) -> Any:
    """The value in a YAML file (safe loader: plain values only), bounded in size and nesting.

    Raises:
        VoxfaceError: naming ``what`` and ``path``, if it is missing, too large, binary, invalid YAML,
            nested deeper than :data:`MAX_DEPTH` or holds a number too long to read.
    """
    text = read_text(path, what)
    try:
        _check_depth(yaml.parse(text), path, what)
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise VoxfaceError(f"{what} {path} is not valid YAML: {_first_line(e)}") from None
    except (ValueError, OverflowError) as e:  # a number of thousands of digits
        raise VoxfaceError(f"{what} {path} holds a number that cannot be read ({_first_line(e)})") from None


def read_json(path: str | os.PathLike, what: str) -> Any:
    """The value in a JSON file, bounded in size and nesting.

    Raises:
        VoxfaceError: as :func:`read_yaml`, for JSON.
    """
    text = read_text(path, what)
    try:
        value = json.loads(text)
    except RecursionError:
        raise VoxfaceError(f"{what} {path} is nested too deeply (at most {MAX_DEPTH} levels)") from None
    except ValueError as e:
        raise VoxfaceError(f"{what} {path} is not valid JSON ({_first_line(e)}); is it the right file?") from None
    if _depth(value) > MAX_DEPTH:
        raise VoxfaceError(f"{what} {path} is nested too deeply (at most {MAX_DEPTH} levels)")
    return value


def load_array(path: str | os.PathLike, what: str, finite: bool = False) -> np.ndarray:
    """A ``.npy`` array of numbers (never unpickled); with ``finite``, none of them NaN or infinite.

    Raises:
        VoxfaceError: naming ``what`` and ``path``, if it is missing, holds Python objects, is not a
            readable ``.npy`` file of numbers, or (``finite``) holds NaN or infinite values.
    """
    path = Path(path)
    if not path.is_file():
        raise VoxfaceError(f"{what} not found: {path}")
    try:
        array = np.load(path, allow_pickle=False)
    except ValueError as e:
        if "allow_pickle" in str(e):
            raise VoxfaceError(f"{what} {path} holds Python objects, not numbers, and loading them could run code; "
                               "use the original file") from None
        raise VoxfaceError(f"cannot read {what} {path} ({_first_line(e)})") from None
    except (OSError, EOFError) as e:
        raise VoxfaceError(f"cannot read {what} {path} ({_first_line(e)})") from None
    if not isinstance(array, np.ndarray) or not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        raise VoxfaceError(f"{what} {path} holds {getattr(array, 'dtype', type(array).__name__)} values, not numbers")
    if finite and not np.isfinite(array).all():
        raise VoxfaceError(f"{path} holds NaN or infinite values; it is not a usable {what} (delete it: a cached "
                           "feature is computed again; `voxface validate` lists the others)")
    return array


def open_image(path: str | os.PathLike, max_pixels: int = MAX_PIXELS):
    """A PIL image of ``path``, opened lazily after its declared size was checked.

    Raises:
        VoxfaceError: naming ``path``, if it is not a decodable image or declares more than
            ``max_pixels`` pixels.
    """
    from PIL import Image

    try:
        image = Image.open(path)
    except Image.DecompressionBombError as e:
        raise VoxfaceError(f"cannot read image {os.fspath(path)}: it declares more than the {max_pixels:,} pixels "
                           f"voxface decodes ({_first_line(e)}); resize it") from None
    except (OSError, ValueError) as e:
        raise VoxfaceError(f"cannot read image {os.fspath(path)}: {e}; check the file or export it as JPEG/PNG") from None
    width, height = image.size
    if width * height > max_pixels:
        image.close()
        raise VoxfaceError(f"cannot read image {os.fspath(path)}: it declares {width} x {height} pixels, more than "
                           f"the {max_pixels:,} voxface decodes; resize it")
    return image


def _check_depth(events, path, what: str) -> None:
    depth = 0
    for event in events:
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            depth += 1
            if depth > MAX_DEPTH:
                raise VoxfaceError(f"{what} {path} is nested too deeply (at most {MAX_DEPTH} levels)")
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            depth -= 1


def _depth(value, level: int = 0) -> int:
    if level > MAX_DEPTH:
        return level
    if isinstance(value, dict):
        return max((_depth(v, level + 1) for v in value.values()), default=level + 1)
    if isinstance(value, list):
        return max((_depth(v, level + 1) for v in value), default=level + 1)
    return level


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0][:200] if text else type(error).__name__
