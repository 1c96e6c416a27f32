"""``voxface predict``: audio files -> predicted mesh (OBJ/PLY/GLB), PNG render, parameters JSON.

The files of one voice are written from its :class:`~voxface.predictors.prediction.Prediction`
(:func:`write_prediction`), here and on the web page alike.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..audio.duration import PREDICT_MAX_MINUTES, DurationLimit
from ..audio.voice import check_speech_like, prepare_voice
from ..errors import VoxfaceError
from ..face3d.mesh_io import save_mesh
from ..face3d.render import render_mesh, save_png
from ..paths import output_folder
from ..predictors.prediction import Prediction
from ..predictors.voice_to_3d import VoiceTo3D
from ..runs import atomic

log = logging.getLogger(__name__)

MESH_FORMATS = ("obj", "ply", "glb")


@dataclass
class Outcome:
    """What happened to one input file: its outputs, or the one-line reason it failed."""

    source: str
    outputs: list[str]
    error: str | None = None


def read_voice(source: str | Path, max_minutes: float | DurationLimit | None = PREDICT_MAX_MINUTES) -> np.ndarray:
    """A recording's speech through CMP's front end (``prepare_voice``), refused first when its header
    says it is longer than ``max_minutes`` (None: no limit), so a long file is never decoded, and
    refused when decoding reaches the limit (a header may not say, or understate, the length). A
    :class:`DurationLimit` instead of minutes brings its own advice (the page's differs from the CLI's).

    Raises:
        VoxfaceError: naming the file, if it is too long or unusable.
    """
    limit = max_minutes if isinstance(max_minutes, DurationLimit) or max_minutes is None else DurationLimit(
        60 * max_minutes, "split it, or pass --max-minutes {needed} to allow it (memory grows by about 65 MB a minute)")
    if limit is not None:
        limit.check_header(source)
    return decoded_speech(source, limit)


def decoded_speech(source: str | Path, limit: DurationLimit | None) -> np.ndarray:
    """``prepare_voice`` on ``source``, decoding at most ``limit``, refused when it sounds like noise
    (:func:`voxface.audio.voice.check_speech_like`): :func:`read_voice` after its header check.

    Raises:
        VoxfaceError: naming the file, if it is too long or unusable.
    """
    speech = prepare_voice(source, limit=limit)
    check_speech_like(speech, f"audio file {source}")
    return speech


def predict_files(predictor: VoiceTo3D, sources: list[str], out_dir: str | Path, mesh_format: str = "obj",
                  render_size: int = 512, max_minutes: float | DurationLimit | None = PREDICT_MAX_MINUTES) -> list[Outcome]:
    """Predict a face for each audio file; a bad file is reported and the others still run.

    A file longer than ``max_minutes`` (read from its header before decoding; None: no limit) is
    refused. The outputs of a file are named after it (``x_2`` for a second successful ``x``):
    :func:`write_prediction`'s mesh, render, parameters JSON and uncertainty render.
    """
    if mesh_format not in MESH_FORMATS:
        raise VoxfaceError(f"unknown mesh format {mesh_format!r}; choose one of {MESH_FORMATS}")
    out = output_folder(out_dir)
    outcomes, used = [], set()
    for source in sources:
        try:
            prediction = predictor.predict(read_voice(source, max_minutes))
        except VoxfaceError as e:
            log.debug("skipped %s: %s", source, e)
            outcomes.append(Outcome(source, [], str(e)))
            continue
        if prediction.warning:
            log.warning("%s: %s", source, prediction.warning)
        files = write_prediction(prediction, out, unique_stem(Path(source).stem, used), str(source),
                                 (mesh_format,), render_size)
        outcomes.append(Outcome(source, [str(p) for p in files.values()]))
    return outcomes


def write_prediction(prediction: Prediction, folder: Path, stem: str, source: str, mesh_formats: tuple[str, ...],
                     render_size: int) -> dict[str, Path]:
    """Write one :class:`Prediction` as ``folder/stem.<format>`` for each of ``mesh_formats``, a PNG
    render, the parameters JSON (naming the recording ``source``) and, for a probabilistic
    regressor, ``stem_uncertainty.png``.

    Returns:
        ``<format>`` per mesh format, ``"png"``, ``"json"`` and ``"uncertainty"`` (when written) ->
        the file, in that order.
    """
    triangles = prediction.model.triangles
    files = {fmt: save_mesh(folder / f"{stem}.{fmt}", prediction.mesh, triangles) for fmt in mesh_formats}
    files["png"] = save_png(folder / f"{stem}.png", render_mesh(prediction.mesh, triangles, size=render_size))
    files["json"] = folder / f"{stem}.json"
    if prediction.uncertainty is not None:
        files["uncertainty"] = save_png(folder / f"{stem}_uncertainty.png", uncertainty_render(
            prediction.model, prediction.mesh, prediction.uncertainty.vertex_std, render_size))
    atomic.write_json(files["json"], prediction.record(source))
    return files


def uncertainty_render(model, mesh: np.ndarray, spread: np.ndarray, size: int) -> np.ndarray:
    """(S, S, 3) uint8 render of ``mesh`` coloured by the (V,) per-vertex standard deviation ``spread``
    (viridis from 0 to its maximum), with a colour bar in the model's units."""
    import matplotlib.pyplot as plt

    image = render_mesh(mesh, model.triangles, colors=uncertainty_colours(spread), size=size)
    fig, ax = plt.subplots(figsize=(size / 100, size / 100 + 0.6), dpi=100)
    shown = ax.imshow(image, extent=(0, 1, 0, 1))
    shown.set_cmap("viridis")
    shown.set_clim(0.0, float(spread.max()))
    ax.set_axis_off()
    fig.colorbar(shown, ax=ax, orientation="horizontal", fraction=0.05, pad=0.02,
                 label=f"how unsure: per-vertex standard deviation ({model.units})")
    fig.tight_layout()
    fig.canvas.draw()
    picture = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
    plt.close(fig)
    return picture


def uncertainty_colours(spread: np.ndarray) -> np.ndarray:
    """(V,) per-vertex standard deviation -> (V, 3) float RGB in [0, 1]: viridis from 0 to its maximum."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.get_cmap("viridis")(spread / max(float(spread.max()), 1e-12))[:, :3]


def unique_stem(stem: str, used: set[str]) -> str:
    """``stem``, or ``stem_2``, ``stem_3``, ... if taken; the result is added to ``used``."""
    candidate, k = stem, 1
    while candidate in used:
        k += 1
        candidate = f"{stem}_{k}"
    used.add(candidate)
    return candidate
