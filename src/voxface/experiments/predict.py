"""``voxface predict``: audio files -> predicted mesh (OBJ/PLY/GLB), PNG render, parameters JSON."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from .. import atomic
from ..audio.duration import PREDICT_MAX_MINUTES, check_duration
from ..audio.voice import prepare_voice
from ..errors import VoxfaceError
from ..face3d.mesh_io import save_mesh
from ..face3d.render import render_mesh, save_png
from ..inference import VoiceTo3D
from ..paths import output_folder

log = logging.getLogger(__name__)

MESH_FORMATS = ("obj", "ply", "glb")


@dataclass
class Outcome:
    """What happened to one input file: its outputs, or the one-line reason it failed."""

    source: str
    outputs: list[str]
    error: str | None = None


def predict_files(predictor: VoiceTo3D, sources: list[str], out_dir: str | Path, mesh_format: str = "obj",
                  render_size: int = 512, max_minutes: float | None = PREDICT_MAX_MINUTES,
                  labels: list[str] | None = None) -> list[Outcome]:
    """Predict a face for each audio file; a bad file is reported and the others still run.

    A file longer than ``max_minutes`` (read from its header before decoding; None: no limit) is
    refused. The outputs of a file are named after it (``x_2`` for a second successful ``x``);
    ``labels`` is what each output's JSON records as its source (default: the path given).
    """
    if mesh_format not in MESH_FORMATS:
        raise VoxfaceError(f"unknown mesh format {mesh_format!r}; choose one of {MESH_FORMATS}")
    out = output_folder(out_dir)
    outcomes, used = [], set()
    limit = None if max_minutes is None else 60 * max_minutes
    for n, source in enumerate(sources):
        try:
            check_duration(source, limit, hint="split it, or pass --max-minutes {needed} to allow it (memory grows "
                                               "by about 65 MB a minute)")
            wave = prepare_voice(source)
        except VoxfaceError as e:
            log.debug("skipped %s: %s", source, e)
            outcomes.append(Outcome(source, [], str(e)))
            continue
        stem = _unique_stem(Path(source).stem, used)
        label = str(source) if labels is None else labels[n]
        coefficients = predictor.coefficients([wave])[0]
        mesh = predictor.model.reconstruct(coefficients)
        paths = [out / f"{stem}.{mesh_format}", out / f"{stem}.png", out / f"{stem}.json"]
        save_mesh(paths[0], mesh, predictor.model.triangles)
        save_png(paths[1], render_mesh(mesh, predictor.model.triangles, size=render_size))
        atomic.write_json(paths[2], {
            "source": label, "backbone": predictor.backbone, "morphable_model": predictor.model.name,
            "units": predictor.model.units, "speech_seconds": round(len(wave) / 16000, 3),
            "shape": coefficients.tolist(),
            "convention": "standardised shape coefficients (z-scores of the model prior)"})
        outcomes.append(Outcome(source, [str(p) for p in paths]))
    return outcomes


def _unique_stem(stem: str, used: set[str]) -> str:
    candidate, k = stem, 1
    while candidate in used:
        k += 1
        candidate = f"{stem}_{k}"
    used.add(candidate)
    return candidate
