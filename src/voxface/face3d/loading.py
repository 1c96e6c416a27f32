"""One entry point that turns a model spec string (CLI flag, config key) into a MorphableModel."""

from __future__ import annotations

from pathlib import Path

from ..errors import VoxfaceError
from ..paths import shared_data_dir
from .morphable_model import MorphableModel

ACCEPTED_FORMS = (
    "builtin",
    "sfm",
    "sfm:PATH",
    "bfm2009:PATH",
    "3ddfa:PATH",
    "bfm-topology",
    "bfm-topology:PATH",
    "cmp-release:PATH",
)
"""The spec forms :func:`load_morphable_model` accepts (PATH: a folder or file, ``~`` allowed)."""


def load_morphable_model(spec: str) -> MorphableModel:
    """Load a morphable model by spec.

    Forms:
        ``builtin``: voxface's own synthetic model (needs no files).
        ``sfm`` / ``sfm:PATH``: the Surrey Face Model, from ``shared_data_dir()/"sfm"`` or PATH (its
        folder or ``sfm_shape_3448.bin``).
        ``bfm2009:PATH``: Basel Face Model 2009 ``01_MorphableModel.mat``.
        ``3ddfa:PATH``: a 3DDFA / SynergyNet / 3DDFA_V2 BFM folder.
        ``bfm-topology`` / ``bfm-topology:PATH``: the same loader on the mean-only folder
        (``shared_data_dir()/"bfm_topology"`` by default): 53,215 vertices, no components.
        ``cmp-release:PATH``: the BFM model inside an unpacked CMP release (its expert archive's basis
        and statistics, ``train.configs`` triangles and landmarks): the model its predictors use.

    Args:
        spec: one of ``ACCEPTED_FORMS``.

    Returns:
        the MorphableModel.

    Raises:
        VoxfaceError: unknown spec, a missing path or file, or a loader's own error, each naming the
            spec and the accepted forms.
    """
    kind, _, argument = spec.partition(":")
    path = Path(argument).expanduser() if argument else None
    try:
        if kind == "builtin" and path is None:
            from .builtin import build_builtin_model

            return build_builtin_model()
        if kind == "sfm":
            from .sfm import load_sfm

            return load_sfm(_existing(path or shared_data_dir() / "sfm"))
        if kind == "bfm2009" and path is not None:
            from .bfm import load_bfm2009

            return load_bfm2009(_existing(path))
        if kind in ("3ddfa", "bfm-topology") and (path is not None or kind == "bfm-topology"):
            from .bfm import load_3ddfa

            return load_3ddfa(_existing(path or shared_data_dir() / "bfm_topology"))
        if kind == "cmp-release" and path is not None:
            from ..predictors.cmp_release import load_release_model

            return load_release_model(_existing(path))
    except VoxfaceError as exc:
        raise VoxfaceError(
            f"cannot load the morphable model {spec!r}: {exc} (accepted forms: {', '.join(ACCEPTED_FORMS)})"
        ) from exc
    raise VoxfaceError(
        f"unknown morphable model spec {spec!r}; accepted forms: {', '.join(ACCEPTED_FORMS)}")


def _existing(path: Path) -> Path:
    if not path.exists():
        raise VoxfaceError(f"{path} does not exist")
    return path
