"""The face step of `voxface prepare` on the ORL photos: speed and landmark-fit quality; the whole run on ORL.

    python bench/bench_prepare.py [--model sfm] [--photos 400] [--workers 2] [--fitter voxface]

Prints, per photo: detection time (dlib HOG with the up-sampling rule) and the detection rate. Then
both fitters (ours and eos-py's, SFM only) side by side on the same detected landmarks: mean
landmark reprojection error in pixels and as a fraction of the inter-ocular distance (outer eye
corners), over all 68 landmarks and over the 50 that ``ibug_to_sfm.txt`` maps (which both fitters
fit with the same vertices; eos chooses its own jaw vertices), and fits/s on one core. Then the
time of the rest of the face step with --fitter (68 landmarks, fit, 64 and 120 crops, two PNG
writes) as faces/s on one core and with --workers processes, against the 20 faces/s target. Then
`voxface import faces` on the same photos with --workers, wall time and faces/s.
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
from voxface.face3d.fitting import FITTERS, interocular_px, make_fitter
from voxface.face3d.loading import load_morphable_model
from voxface.face3d.render import save_png
from voxface.face3d.sfm import MAPPED_LANDMARKS
from voxface.paths import shared_data_dir
from voxface.vision.dlib_faces import landmarks68
from voxface.vision.images import read_rgb

TARGET_FACES_PER_S = 20.0
_state: dict = {}


def _init(spec: str, fitter: str, out: str) -> None:
    threadpool_limits(1)  # as prepare's workers do
    _state.update(fit=make_fitter(fitter, load_morphable_model(spec)), out=Path(out))


def _face_step(job: tuple[int, np.ndarray, tuple]) -> None:
    """Everything after detection for one photo."""
    k, image, box = job
    face = describe_face(_state["fit"], image, box)
    for size in IMAGE_SIZES:
        save_png(_state["out"] / f"{k}_{size}.png", face.crops[size])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="sfm", help="morphable model spec (default: %(default)s)")
    parser.add_argument("--photos", type=int, default=400)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--fitter", choices=FITTERS, default="voxface", help="fitter of the face-step timing")
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

    _compare_fitters(args.model, [(landmarks68(im, b), im.shape[:2]) for _, im, b in jobs])

    with tempfile.TemporaryDirectory() as tmp:
        _init(args.model, args.fitter, tmp)
        _face_step(jobs[0])
        start = time.perf_counter()
        for j in jobs:
            _face_step(j)
        one = len(jobs) / (time.perf_counter() - start)
        init = (args.model, args.fitter, tmp)
        with mp.get_context("spawn").Pool(args.workers, initializer=_init, initargs=init) as pool:
            pool.map(_face_step, jobs[: 2 * args.workers])  # warm the workers up
            start = time.perf_counter()
            pool.map(_face_step, jobs, chunksize=8)
            many = len(jobs) / (time.perf_counter() - start)
    print(f"face step without detection ({args.fitter} fitter): {one:.1f} faces/s on one core; {many:.1f} faces/s "
          f"with {args.workers} workers; target {TARGET_FACES_PER_S:.0f} -> {many / TARGET_FACES_PER_S:.2f}x "
          f"({'met' if many >= TARGET_FACES_PER_S else 'NOT met'})")

    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "tree"
        for p in paths:
            dst = tree / f"Person_{p.parent.name}" / p.name
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.write_bytes(p.read_bytes())
        start = time.perf_counter()
        corpus = run_plan(Path(tmp) / "corpus", faces_plan(tree, args.model, default_gender="m", fitter=args.fitter),
                          load_morphable_model(args.model), workers=args.workers, progress=False)
        wall = time.perf_counter() - start
        n = len(corpus.faces)
    print(f"voxface import faces, {args.workers} workers: {n} faces of {len(paths)} photos in {wall:.1f} s "
          f"= {n / wall:.1f} faces/s including detection, worker start-up and the tables")


def _compare_fitters(spec: str, faces: list[tuple[np.ndarray, tuple[int, int]]]) -> None:
    """Print each fitter's reprojection error (68 and the 50 mapped landmarks) and fits/s on one core."""
    model = load_morphable_model(spec)
    names = FITTERS if model.name == "sfm" else ("voxface",)
    print(f"fits ({spec}) on {len(faces)} faces, one core:")
    print(f"  {'fitter':8s} {'68 px':>7s} {'68 %IOD':>8s} {'p95 %IOD':>9s} {'50 px':>7s} {'50 %IOD':>8s} {'fits/s':>8s}")
    with threadpool_limits(1):
        for name in names:
            fit = make_fitter(name, model)
            fit(*faces[0])
            start = time.perf_counter()
            fits = [fit(points, size) for points, size in faces]
            rate = len(faces) / (time.perf_counter() - start)
            iod = np.array([interocular_px(points) for points, _ in faces])
            all68 = np.array([f.residual_px for f in fits])
            mapped = np.array([np.linalg.norm(f.projected[MAPPED_LANDMARKS] - p[MAPPED_LANDMARKS], axis=1).mean()
                               for f, (p, _) in zip(fits, faces)])
            print(f"  {name:8s} {all68.mean():7.2f} {100 * (all68 / iod).mean():8.2f} "
                  f"{100 * np.percentile(all68 / iod, 95):9.2f} {mapped.mean():7.2f} {100 * (mapped / iod).mean():8.2f} "
                  f"{rate:8.1f}")


if __name__ == "__main__":
    main()
