"""The face step of `voxface prepare` on the ORL photos: speed and landmark-fit quality; the whole run on ORL.

    python bench/bench_prepare.py [--model sfm] [--photos 400] [--workers 2]

Prints, per photo: detection time (dlib HOG with the up-sampling rule) and the detection rate; the
time of the rest of the face step (68 landmarks, 3DMM fit, 64 and 120 crops, two PNG writes) as
faces/s on one core and, with --workers processes, against the 20 faces/s target; and the fit's
mean landmark reprojection error in pixels and as a fraction of the inter-ocular distance (outer eye
corners). Then `voxface import faces` on the same photos with --workers, wall time and faces/s.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import tempfile
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from voxface.corpus.importers import faces_plan
from voxface.corpus.prepare import IMAGE_SIZES, describe_face, detect_largest_face, run_plan
from voxface.face3d.loading import load_morphable_model
from voxface.face3d.render import save_png
from voxface.paths import shared_data_dir
from voxface.vision.images import read_rgb

TARGET_FACES_PER_S = 20.0
_state: dict = {}


def _init(spec: str, out: str) -> None:
    threadpool_limits(1)  # as prepare's workers do
    _state.update(model=load_morphable_model(spec), out=Path(out))


def _face_step(job: tuple[int, np.ndarray, tuple]) -> float:
    """Everything after detection for one photo; returns its residual (fraction of the eye distance)."""
    k, image, box = job
    face = describe_face(_state["model"], image, box)
    for size in IMAGE_SIZES:
        save_png(_state["out"] / f"{k}_{size}.png", face.crops[size])
    return face.fit.residual, face.fit.residual_px


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="sfm", help="morphable model spec (default: %(default)s)")
    parser.add_argument("--photos", type=int, default=400)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    orl = shared_data_dir() / "orl_faces"
    paths = sorted(orl.glob("s*/*.pgm"))[: args.photos]
    images = [read_rgb(p) for p in paths]

    detect_largest_face(images[0])  # load dlib
    start = time.perf_counter()
    boxes = [detect_largest_face(im) for im in images]
    detect_s = (time.perf_counter() - start) / len(images)
    jobs = [(k, im, b) for k, (im, b) in enumerate(zip(images, boxes)) if b is not None]
    print(f"photos {len(images)}  detected {len(jobs)} ({100 * len(jobs) / len(images):.1f}%)  "
          f"detection {1000 * detect_s:.1f} ms/photo ({1 / detect_s:.1f} photos/s, one core)")

    with tempfile.TemporaryDirectory() as tmp:
        _init(args.model, tmp)
        _face_step(jobs[0])
        start = time.perf_counter()
        fits = [_face_step(j) for j in jobs]
        one = len(jobs) / (time.perf_counter() - start)
        with mp.get_context("spawn").Pool(args.workers, initializer=_init, initargs=(args.model, tmp)) as pool:
            pool.map(_face_step, jobs[: 2 * args.workers])  # warm the workers up
            start = time.perf_counter()
            pool.map(_face_step, jobs, chunksize=8)
            many = len(jobs) / (time.perf_counter() - start)
    residual, residual_px = np.array(fits).T
    print(f"face step without detection: {one:.1f} faces/s on one core; {many:.1f} faces/s with {args.workers} "
          f"workers; target {TARGET_FACES_PER_S:.0f} -> {many / TARGET_FACES_PER_S:.2f}x "
          f"({'met' if many >= TARGET_FACES_PER_S else 'NOT met'})")
    print(f"fit ({args.model}): landmark reprojection error mean {residual_px.mean():.2f} px "
          f"(median {np.median(residual_px):.2f}), {100 * residual.mean():.2f}% of the inter-ocular distance "
          f"(median {100 * np.median(residual):.2f}%, 95th percentile {100 * np.percentile(residual, 95):.2f}%)")

    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "tree"
        for p in paths:
            dst = tree / f"Person_{p.parent.name}" / p.name
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.write_bytes(p.read_bytes())
        start = time.perf_counter()
        corpus = run_plan(Path(tmp) / "corpus", faces_plan(tree, args.model, default_gender="m"),
                          load_morphable_model(args.model), workers=args.workers, progress=False)
        wall = time.perf_counter() - start
        n = len(corpus.faces)
    print(f"voxface import faces, {args.workers} workers: {n} faces of {len(paths)} photos in {wall:.1f} s "
          f"= {n / wall:.1f} faces/s including detection, worker start-up and the tables")


if __name__ == "__main__":
    main()
