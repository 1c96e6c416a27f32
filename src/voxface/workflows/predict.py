"""``voxface predict``: audio files -> predicted mesh (OBJ/PLY/GLB), PNG render, parameters JSON."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..audio.duration import PREDICT_MAX_MINUTES, check_duration
from ..audio.voice import prepare_voice
from ..errors import VoxfaceError
from ..evaluate.novelty import WARN_BELOW
from ..evaluate.uncertainty import vertex_std
from ..face3d.mesh_io import save_mesh
from ..face3d.render import render_mesh, save_png
from ..paths import output_folder
from ..predictors.voice_to_3d import VoiceTo3D
from ..runs import atomic

log = logging.getLogger(__name__)

MESH_FORMATS = ("obj", "ply", "glb")


@dataclass
class Outcome:
    """What happened to one input file: its outputs (and the (V, 3) mesh), or the one-line reason it failed."""

    source: str
    outputs: list[str]
    error: str | None = None
    mesh: np.ndarray | None = None


def read_voice(source: str | Path, max_minutes: float | None = PREDICT_MAX_MINUTES) -> np.ndarray:
    """A recording's speech through CMP's front end (``prepare_voice``), refused first when its header
    says it is longer than ``max_minutes`` (None: no limit), so a long file is never decoded.

    Raises:
        VoxfaceError: naming the file, if it is too long or unusable.
    """
    check_duration(source, None if max_minutes is None else 60 * max_minutes,
                   hint="split it, or pass --max-minutes {needed} to allow it (memory grows by about 65 MB a minute)")
    return prepare_voice(source)


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
    for n, source in enumerate(sources):
        try:
            wave = read_voice(source, max_minutes)
        except VoxfaceError as e:
            log.debug("skipped %s: %s", source, e)
            outcomes.append(Outcome(source, [], str(e)))
            continue
        features = predictor.voice_features([wave])
        embedding = predictor.embed_features(features)
        parameters = predictor.parameters_from_embeddings(embedding)
        mesh = predictor.mesh_from_parameters(parameters)[0]
        scores = predictor.in_distribution(features)
        voice = voice_notice(predictor, None if scores is None else float(scores[0]))
        if voice["warning"]:
            log.warning("%s: %s", source, voice["warning"])
        stem = unique_stem(Path(source).stem, used)
        paths = [out / f"{stem}.{mesh_format}", out / f"{stem}.png", out / f"{stem}.json"]
        save_mesh(paths[0], mesh, predictor.model.triangles)
        save_png(paths[1], render_mesh(mesh, predictor.model.triangles, size=render_size))
        record = {
            "source": str(source) if labels is None else labels[n], "backbone": predictor.backbone,
            "morphable_model": predictor.model.name,
            "units": predictor.model.units, "speech_seconds": round(len(wave) / 16000, 3),
            **{k: v[0].tolist() for k, v in parameters.items() if v[0].size and not (k == "scale" and v[0] == 1)},
            "convention": "standardised coefficients (z-scores of the model prior); mesh = scale * face",
            "voice": voice, "face": predictor.describe(embedding)}
        distribution = predictor.distribution_from_embeddings(embedding)
        if distribution is not None:
            spread = vertex_std(predictor.model, distribution)[0]
            paths.append(save_png(out / f"{stem}_uncertainty.png", uncertainty_render(predictor.model, mesh, spread,
                                                                                    render_size)))
            record["uncertainty"] = {"vertex_std_mean": float(spread.mean()), "vertex_std_max": float(spread.max()),
                                     "units": predictor.model.units,
                                     "coefficient_std": np.sqrt(distribution.marginal_variance[0]).tolist()}
        atomic.write_json(paths[2], record)
        outcomes.append(Outcome(source, [str(p) for p in paths], mesh=mesh))
    return outcomes


def uncertainty_render(model, mesh: np.ndarray, spread: np.ndarray, size: int) -> np.ndarray:
    """(S, S, 3) uint8 render of ``mesh`` coloured by the (V,) per-vertex standard deviation ``spread``
    (viridis from 0 to its maximum), with a colour bar in the model's units."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours = plt.get_cmap("viridis")(spread / max(float(spread.max()), 1e-12))[:, :3]
    image = render_mesh(mesh, model.triangles, colors=colours, size=size)
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


def voice_notice(predictor: VoiceTo3D, score: float | None) -> dict:
    """What to tell the user beside a prediction: what the model was trained on, how typical the voice
    is for it (``score``: its in-distribution score, None when unknown), and a warning or None."""
    trained_on = predictor.provenance.get("trained_on", "unknown voices (the predictor does not say)")
    synthetic = predictor.provenance.get("synthetic")
    warning = None
    if score is not None and score < WARN_BELOW:
        warning = (f"this model was trained on {trained_on}; your voice is unlike any of them (in-distribution "
                   f"score {score:.3f}, below {WARN_BELOW:g}), so the face says nothing about it: load a model "
                   "trained on real speech, e.g. the CMP release (voxface import cmp-release)")
    elif synthetic:
        warning = (f"this model was trained on {trained_on}: on a real voice its face carries no information "
                   "(a model trained on real speech is needed for that, e.g. the CMP release)")
    return {"trained_on": trained_on, "synthetic_training_voices": synthetic,
            "in_distribution_score": None if score is None else round(score, 4),
            "reference": None if predictor.reference is None else predictor.reference.source,
            "warn_below": WARN_BELOW, "warning": warning}


def unique_stem(stem: str, used: set[str]) -> str:
    """``stem``, or ``stem_2``, ``stem_3``, ... if taken; the result is added to ``used``."""
    candidate, k = stem, 1
    while candidate in used:
        k += 1
        candidate = f"{stem}_{k}"
    used.add(candidate)
    return candidate
