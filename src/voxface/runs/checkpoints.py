"""Reading saved files without running code from them.

Every file voxface did not write in the same process (a run's ``predictor.pt``, ``encoder.pt``, a
bundle, a Lightning ``last.ckpt``, a published pickle) may come from someone else, and unpickling
runs whatever callables the file names. So: torch files are loaded with ``weights_only=True``
(tensors, containers and plain values only) and published pickles through an unpickler that knows
only numpy arrays. A file that needs more is refused with one line naming it.

voxface's own saved dicts carry a ``format`` tag and are found in a run folder or given by path
(:func:`load_tagged`); a loader decorated with :func:`reads_saved_file` turns a missing entry or
weights of another shape into a :class:`VoxfaceError` naming the file, not a traceback.
"""

from __future__ import annotations

import contextlib
import functools
import pickle
from pathlib import Path
from typing import Any, Callable

import torch

from ..errors import VoxfaceError

UNTRUSTED = ("it holds Python objects besides weights, and loading them could run code; voxface refuses it "
             "(use a file voxface saved, from a source you trust)")


def load_weights(path: str | Path, what: str, hint: str = "") -> Any:
    """``torch.load(path, weights_only=True)`` on the CPU; VoxfaceError naming ``path`` otherwise.

    Args:
        path: a torch file.
        what: what it should be, for messages ("voice-to-3D predictor").
        hint: what the user should do, for messages.

    Raises:
        VoxfaceError: if it is truncated or not a torch file, or holds more than weights and plain
            values (the unpickler refuses; nothing in it is run).
    """
    tail = f"; {hint}" if hint else ""
    allowed = _numpy_scalar_globals()
    try:
        with torch.serialization.safe_globals(allowed):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        refused = _refused_global(str(e))
        raise VoxfaceError(f"{path} is not loadable as a {what}: {UNTRUSTED} [{refused}]{tail}") from None
    except Exception as e:  # a truncated or foreign file
        reason = str(e).strip().splitlines()[0][:200] if str(e).strip() else ""
        raise VoxfaceError(f"{path} is not a readable {what} ({type(e).__name__}: {reason}){tail}") from None


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
        raise VoxfaceError(f"{path} is not loadable as {what}: {UNTRUSTED} [{e}]") from None
    except (EOFError, ValueError, TypeError, AttributeError, IndexError) as e:
        raise VoxfaceError(f"{path} is not a readable {what} ({type(e).__name__}: {e})") from None
