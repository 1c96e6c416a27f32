"""Reading saved files without running code from them.

Every file voxface did not write in the same process (a run's ``predictor.pt``, ``encoder.pt``, a
bundle, a Lightning ``last.ckpt``, a published pickle) may come from someone else, and unpickling
runs whatever callables the file names. So: torch files are loaded with ``weights_only=True``
(tensors, containers and plain values only) and published pickles through an unpickler that knows
only numpy arrays. A file that needs more is refused with one line naming it. Before torch reads a
zip archive, its entries are checked against the layout ``torch.save`` writes (stored, not
compressed, so together no larger than the file): a small file cannot make the loader allocate
gigabytes. Weights that are NaN or infinite are refused after loading.

voxface's own saved dicts carry a ``format`` tag and are found in a run folder or given by path
(:func:`load_tagged`); a loader decorated with :func:`reads_saved_file` turns a missing entry or
weights of another shape into a :class:`VoxfaceError` naming the file, not a traceback.
"""

from __future__ import annotations

import contextlib
import functools
import pickle
import zipfile
from pathlib import Path
from typing import Any, Callable

import torch

from ..errors import VoxfaceError

LIGHTNING_VERSION_KEY = "pytorch-lightning_version"
"""Marks a Lightning checkpoint: only its ``state_dict`` is weights (callback states hold inf legitimately)."""
UNTRUSTED = ("it holds Python objects besides weights, and loading them could run code; voxface refuses it "
             "(use a file voxface saved, from a source you trust)")


def load_weights(path: str | Path, what: str, hint: str = "") -> Any:
    """``torch.load(path, weights_only=True)`` on the CPU; VoxfaceError naming ``path`` otherwise.

    Args:
        path: a torch file.
        what: what it should be, for messages ("voice-to-3D predictor", "the face generator").
        hint: what the user should do, for messages.

    Raises:
        VoxfaceError: if it is truncated or not a torch file, its archive declares more bytes than
            it holds, it holds more than weights and plain values (the unpickler refuses; nothing in
            it is run), or weights that are NaN or infinite.
    """
    tail = f"; {hint}" if hint else ""
    _check_archive(path, what, tail)
    allowed = _numpy_scalar_globals()
    try:
        with torch.serialization.safe_globals(allowed):
            saved = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        refused = _refused_global(str(e))
        raise VoxfaceError(f"{what} {path} is refused: {UNTRUSTED} [{refused}]{tail}") from None
    except Exception as e:  # a truncated or foreign file
        reason = str(e).strip().splitlines()[0][:200] if str(e).strip() else ""
        raise VoxfaceError(f"cannot read {what} {path} ({type(e).__name__}: {reason}){tail}") from None
    weights = saved["state_dict"] if isinstance(saved, dict) and LIGHTNING_VERSION_KEY in saved else saved
    bad = next(_non_finite(weights), None)
    if bad is not None:
        raise VoxfaceError(f"{what} {path} holds NaN or infinite weights ({bad}): it is damaged or diverged in "
                           f"training{tail or '; train or download it again'}")
    return saved


def _check_archive(path: str | Path, what: str, tail: str) -> None:
    """Refuse a torch zip archive whose entries are compressed or declare more bytes than the file has
    (torch stores its entries uncompressed); a file that is no zip is left to torch to judge."""
    try:
        if not zipfile.is_zipfile(path):
            return
        with zipfile.ZipFile(path) as archive:
            entries = archive.infolist()
    except (OSError, zipfile.BadZipFile, ValueError):
        return  # torch names the damage
    size = Path(path).stat().st_size
    declared = sum(e.file_size for e in entries)
    compressed = [e.filename for e in entries if e.compress_type != zipfile.ZIP_STORED]
    if declared > size or compressed:
        raise VoxfaceError(f"{what} {path} declares {declared / 2**20:.1f} MB of entries in a file of "
                           f"{size / 2**20:.1f} MB{' (compressed, which torch never writes)' if compressed else ''}: "
                           f"it was edited or is not a torch file; nothing was loaded{tail}")


def _non_finite(saved: Any, key: str = ""):
    """The keys (``net.w``) of the floating-point tensors in ``saved`` that hold NaN or infinity."""
    if isinstance(saved, torch.Tensor):
        if saved.is_floating_point() or saved.is_complex():
            if not bool(torch.isfinite(saved).all()):
                yield key or "the tensor"
    elif isinstance(saved, dict):
        for k, v in saved.items():
            yield from _non_finite(v, f"{key}.{k}" if key else str(k))
    elif isinstance(saved, (list, tuple)):
        for i, v in enumerate(saved):
            yield from _non_finite(v, f"{key}[{i}]")


def _numpy_scalar_globals() -> list:
    """What numpy scalars in a saved dict need (e.g. identity names saved as ``np.str_`` by older
    speaker-CNN runs): constructors of plain values, not of callables."""
    import importlib

    import numpy as np

    scalars = []
    for name in ("numpy.core.multiarray", "numpy._core.multiarray"):  # numpy 1 / numpy 2
        with contextlib.suppress(ImportError, AttributeError):
            scalars.append(importlib.import_module(name).scalar)
    dtypes = [getattr(np.dtypes, n) for n in dir(np.dtypes) if n.endswith("DType") and n != "ObjectDType"]
    return [*scalars, np.dtype, *dtypes]


def _refused_global(message: str) -> str:
    """The part of torch's weights-only refusal that names what the file wanted to run."""
    for line in message.splitlines():
        if "WeightsUnpickler error:" in line:
            return line.split("WeightsUnpickler error:", 1)[1].split(". ")[0].strip()[:200]
    return message.strip().splitlines()[0][:200] if message.strip() else "refused"


def load_tagged(run_or_file: str | Path, default_name: str, fmt: str, what: str, hint: str) -> tuple[dict, Path]:
    """Load a saved dict whose ``format`` is ``fmt`` (weights only); return it and the file it came from.

    Args:
        run_or_file: a run folder (then ``default_name`` inside it is read) or the file itself.
        default_name: the file's name inside a run folder.
        fmt: the expected ``format`` tag.
        what: what the file is, for messages ("voice-to-3D predictor").
        hint: what the user should do, for messages ("train one with `voxface train supervised`").

    Returns:
        The dict and the path read. Build objects from it in a loader decorated with
        :func:`reads_saved_file`, so that a damaged file is one error naming it.

    Raises:
        VoxfaceError: naming the path, if it is missing, unreadable, holds more than weights, or is a
            file of another kind.
    """
    path = Path(run_or_file)
    path = path / default_name if path.is_dir() else path
    if not path.is_file():
        raise VoxfaceError(f"no {what} at {path}; {hint}")
    saved = load_weights(path, what, hint)
    if not isinstance(saved, dict) or saved.get("format") != fmt:
        raise VoxfaceError(f"{path} is not a voxface {what} (a file of another kind?); {hint}")
    return saved, path


def reads_saved_file(load: Callable) -> Callable:
    """Decorate a loader ``load(run_or_file, ...)`` that builds objects from a saved dict: an entry the
    file lacks (KeyError), a value of the wrong type, or weights that do not fit the network become
    one VoxfaceError naming the file instead of a traceback."""

    @functools.wraps(load)
    def checked(*args, **kwargs):
        try:
            return load(*args, **kwargs)
        except (KeyError, TypeError, ValueError, RuntimeError, IndexError) as e:
            source = next((a for a in args if isinstance(a, (str, Path))), kwargs.get("run_or_file", "the file"))
            detail = f"it lacks the entry {e}" if isinstance(e, KeyError) else \
                f"{type(e).__name__}: {str(e).strip().splitlines()[0][:200] if str(e).strip() else ''}"
            raise VoxfaceError(f"{source} cannot be used: {detail}; it is damaged or was saved by another "
                               "voxface version (train or export it again)") from None

    return checked


_NUMPY_GLOBALS = {
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("collections", "OrderedDict"),
}
"""What a published pickle of arrays (3DDFA's ``*.pkl``) may name; anything else is refused."""


class _ArrayUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) not in _NUMPY_GLOBALS:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed")
        return super().find_class(module, name)


def load_array_pickle(path: str | Path, what: str) -> Any:
    """A pickle that holds only numpy arrays, plain values and containers (e.g. 3DDFA's files).

    Raises:
        VoxfaceError: naming ``path``, if it names any other callable (nothing in it is run) or is
            not a readable pickle.
    """
    try:
        with open(path, "rb") as f:
            return _ArrayUnpickler(f, encoding="latin1").load()
    except pickle.UnpicklingError as e:
        raise VoxfaceError(f"{what} {path} is refused: {UNTRUSTED} [{e}]") from None
    except (EOFError, ValueError, TypeError, AttributeError, IndexError) as e:
        raise VoxfaceError(f"cannot read {what} {path} ({type(e).__name__}: {e})") from None
