"""``voxface predict``: audio files -> predicted mesh (OBJ/PLY/GLB), PNG render, parameters JSON."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from .. import atomic
from ..audio.voice import prepare_voice
from ..errors import VoxfaceError
from ..face3d.mesh_io import save_mesh
from ..face3d.render import render_mesh, save_png
from ..inference import VoiceTo3D

log = logging.getLogger(__name__)

MESH_FORMATS = ("obj", "ply", "glb")


@dataclass
class Outcome:
    """What happened to one input file: its outputs, or the one-line reason it failed."""

    source: str
    outputs: list[str]
    error: str | None = None


def predict_files(predictor: VoiceTo3D, sources: list[str], out_dir: str | Path, mesh_format: str = "obj",
                  render_size: int = 512) -> list[Outcome]:
    """Predict a face for each audio file; a bad file is reported and the others still run."""
    if mesh_format not in MESH_FORMATS:
        raise VoxfaceError(f"unknown mesh format {mesh_format!r}; choose one of {MESH_FORMATS}")
    out = Path(out_dir)
    outcomes, used = [], set()
    for source in sources:
        stem = _unique_stem(Path(source).stem, used)
        try:
            wave = prepare_voice(source)
        except VoxfaceError as e:
            log.debug("skipped %s: %s", source, e)
            outcomes.append(Outcome(source, [], str(e)))
            continue
        coefficients = predictor.coefficients([wave])[0]
        mesh = predictor.model.reconstruct(coefficients)
        paths = [out / f"{stem}.{mesh_format}", out / f"{stem}.png", out / f"{stem}.json"]
        save_mesh(paths[0], mesh, predictor.model.triangles)
        save_png(paths[1], render_mesh(mesh, predictor.model.triangles, size=render_size))
        atomic.write_json(paths[2], {
            "source": str(source), "backbone": predictor.backbone, "morphable_model": predictor.model.name,
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
