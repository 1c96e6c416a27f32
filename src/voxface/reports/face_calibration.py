"""``voxface calibrate-faces``: grid-search the face-verification threshold τ on real photos.

Input: a folder with one sub-folder of images per identity (the ORL layout ``s<k>/<n>.pgm``, or any
``<identity>/<image>.{png,jpg,pgm,...}``). Output folder: ``calibration.json`` (τ, accuracy, balanced
accuracy, F1, detection rate), ``threshold_sweep.png`` (paper Fig. 4), ``face_tsne.png`` and the
embeddings (``embeddings.npz``, reused when rerun on the same images).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import VoxfaceError
from ..evaluate.verification import calibrate_threshold, pair_distances
from ..runs import atomic
from ..vision.face_embedding import create_face_embedder
from .figures import plot_threshold_sweep, plot_tsne

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".pgm", ".ppm", ".bmp", ".tif", ".tiff"}


def identity_folder_images(folder: str | Path) -> tuple[list[Path], list[str]]:
    """Image files of ``folder/<identity>/`` (sorted) and their identity names."""
    root = Path(folder)
    if not root.is_dir():
        raise VoxfaceError(f"face folder not found: {root} (give a folder with one sub-folder per identity)")
    paths, labels = [], []
    for sub in sorted(p for p in root.iterdir() if p.is_dir()):
        for f in sorted(sub.iterdir()):
            if f.suffix.lower() in IMAGE_SUFFIXES:
                paths.append(f)
                labels.append(sub.name)
    if len(set(labels)) < 2:
        raise VoxfaceError(f"{root} needs at least two identity sub-folders with images "
                           f"({', '.join(sorted(IMAGE_SUFFIXES))}); found {len(set(labels))}")
    return paths, labels


def load_rgb(path: Path) -> np.ndarray:
    """An image file as (H, W, 3) uint8 RGB (grey images are replicated to three channels)."""
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except OSError as exc:
        raise VoxfaceError(f"cannot read image {path}: {exc}") from exc


def calibrate_faces(folder: str | Path, out: str | Path, criterion: str = "balanced_accuracy",
                    embedder: str = "dlib", progress: bool = True) -> dict:
    """Embed every face of ``folder``, grid-search τ over all pairs, write figures and ``calibration.json``."""
    out = Path(out)
    paths, labels = identity_folder_images(folder)
    cache = out / "embeddings.npz"
    names = np.array([str(p) for p in paths])
    if cache.is_file() and np.array_equal(np.load(cache)["paths"], names):
        with np.load(cache) as z:
            embeddings, found = z["embeddings"], z["found"]
    else:
        embeddings, found = create_face_embedder(embedder).embed([load_rgb(p) for p in paths], progress=progress)
        atomic.write_npz(cache, embeddings=embeddings, found=found, paths=names, labels=np.array(labels))
    distances, same = pair_distances(embeddings, np.array(labels))
    calibration, sweep = calibrate_threshold(distances, same, criterion)
    result = {"folder": str(folder), "embedder": embedder, "images": len(paths), "identities": len(set(labels)),
              "detection_rate": float(found.mean()), **calibration.to_dict(),
              "figures": {"threshold_sweep": "threshold_sweep.png", "tsne": "face_tsne.png"}}
    plot_threshold_sweep(out / "threshold_sweep.png", sweep, calibration.tau,
                         f"{Path(folder).name}: verification vs τ ({len(paths)} faces)")
    plot_tsne(out / "face_tsne.png", embeddings, labels, f"{Path(folder).name}: face embeddings (t-SNE)")
    atomic.write_json(out / "calibration.json", result)
    log.info("calibrated tau %.2f on %s: balanced accuracy %.4f, accuracy %.4f", calibration.tau, folder,
             calibration.balanced_accuracy, calibration.accuracy)
    return result
