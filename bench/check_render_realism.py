"""Realism check of synthetic face photos: does dlib see a face where the model put one?

Renders N random identities of the built-in model (shape z ~ N(+-gender_offset/2, I), half men,
half women) under random appearances and reports, per image size:

- detection rate: fraction of renders in which dlib's frontal HOG detector finds a face
  (120x120 without up-sampling, 64x64 with one up-sampling; targets >= 0.90);
- landmark error: mean distance between dlib's 68 landmarks and the projected model landmarks,
  divided by the face size sqrt(area of dlib's box), averaged over detected renders
  (target <= 0.10);

and the build time of the model, the time of one whole synthetic photo (reconstruction,
background, render) and of the bare 120x120 ``render_mesh`` call.

    .venv/bin/python bench/check_render_realism.py --n 200 --seed 0
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from voxface.corpus.face_images import render_face_image, sample_appearance
from voxface.face3d.builtin import build_builtin_model
from voxface.face3d.render import framing_camera, render_mesh
from voxface.vision.agreement import dlib_agreement

UPSAMPLE = {120: 0, 64: 1}


def sample_identity(model, rng: np.random.Generator) -> np.ndarray:
    """(K,) shape z-scores of a random man or woman."""
    sign = 1.0 if rng.uniform() < 0.5 else -1.0
    return rng.normal(size=model.n_shape) + sign * model.gender_offset / 2.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200, help="number of renders per size")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    start = time.perf_counter()
    model = build_builtin_model()
    build_s = time.perf_counter() - start
    print(f"model: {model.n_vertices} vertices, {len(model.triangles)} triangles, "
          f"{model.n_shape} shape / {model.n_expression} expression components; "
          f"built in {build_s * 1000:.0f} ms")

    camera = framing_camera(model.mean[model.landmarks68], 120, fill=0.68)
    render_mesh(model.mean, model.triangles, model.albedo, camera=camera)
    start = time.perf_counter()
    for _ in range(50):
        render_mesh(model.mean, model.triangles, model.albedo, camera=camera)
    print(f"render_mesh 120x120: {(time.perf_counter() - start) / 50 * 1000:.1f} ms/image "
          "(target <= 10 ms)")

    rng = np.random.default_rng(args.seed)
    cases = [(sample_identity(model, rng), sample_appearance(rng, model.n_expression))
             for _ in range(args.n)]
    for size, upsample in UPSAMPLE.items():
        render_face_image(model, cases[0][0], cases[0][1], size)  # warm the renderer
        start = time.perf_counter()
        images = [render_face_image(model, shape_z, appearance, size) for shape_z, appearance in cases]
        render_s = time.perf_counter() - start
        agreement = dlib_agreement(images, upsample=upsample)
        print(f"{size}x{size} (upsample={upsample}): detection {agreement.detection_rate:.3f} (target >= 0.90), "
              f"landmark error {agreement.landmark_error:.4f} of face size (target <= 0.10), "
              f"synthetic photo {render_s / args.n * 1000:.1f} ms/image")


if __name__ == "__main__":
    main()
