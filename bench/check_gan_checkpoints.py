"""Base-2 along a GAN-only run: the expert network on the faces of every saved checkpoint.

    python bench/check_gan_checkpoints.py runs/u4/gan --expert-run runs/u4/expert [--train-identities 20]

For each ``checkpoints/step*.ckpt`` of a ``voxface train unsupervised`` run (``student: false``, e.g. a
pipeline's ``gan/``): the mean ARE of the expert network on the faces generated from the first 3
utterances of the test identities (Base-2 at that iteration) and of the first N training identities
(how much of the face the generator draws for voices it was trained on), with the mean face's ARE on
the same identities. How far Base-2 moves from one checkpoint to the next is the noise any comparison
with it has to beat (docs/unsupervised.md).
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import numpy as np
import torch

from voxface.corpus.data import utterance_set
from voxface.corpus.validate import check_corpus
from voxface.evaluate.geometry import absolute_ratio_error
from voxface.methods.expert import NetworkExpert, expert_network
from voxface.methods.unsupervised import OPTIMISERS_PER_ITERATION
from voxface.predictors.voice_image_3d import VoiceToImageTo3D
from voxface.runs.folder import read_run_config
from voxface.vision.tensor_images import to_uint8

UTTERANCES = 3


def checkpoints(run: Path) -> list[tuple[int, Path]]:
    """(iteration, path) of the run's ``step*.ckpt`` files, in training order."""
    found = [(int(m.group(1)) // OPTIMISERS_PER_ITERATION, p) for p in (run / "checkpoints").glob("step*.ckpt")
             if (m := re.fullmatch(r"step(\d+)\.ckpt", p.name))]
    return sorted(found)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a GAN-only run folder of `voxface train unsupervised`")
    parser.add_argument("--expert-run", required=True, help="run folder of `voxface train expert`")
    parser.add_argument("--train-identities", type=int, default=20, help="training identities scored (default 20)")
    args = parser.parse_args()
    torch.set_num_threads(2)
    corpus = check_corpus(read_run_config(args.run)["corpus"])
    model = corpus.model
    predictor = VoiceToImageTo3D.load(args.run)
    expert = NetworkExpert(expert_network(args.expert_run))
    groups = {"test": corpus.identity_ids("test"), "train": corpus.identity_ids("train")[:args.train_identities]}
    voices, references = {}, {}
    for name, ids in groups.items():
        data = utterance_set(corpus, ids, "cmp_logmel", per_identity=UTTERANCES, progress=False)
        voices[name] = predictor.embed(data.features)
        references[name] = model.reconstruct(corpus.reference_shapes(ids))
        mean_face = np.broadcast_to(model.mean.reshape(1, 1, -1, 3), (len(ids), UTTERANCES, *model.mean.shape))
        print(f"{name}: {len(ids)} identities, mean face ARE "
              f"{absolute_ratio_error(mean_face, references[name], model.measurements).mean:.4f}")
    print("iteration  " + "  ".join(f"expert on {name} voices' faces" for name in groups))
    for iteration, path in checkpoints(args.run):
        state = torch.load(path, map_location="cpu", weights_only=False)["state_dict"]
        predictor.generator.load_state_dict({k[len("generator."):]: v for k, v in state.items()
                                             if k.startswith("generator.")})
        predictor.generator.eval()
        scores = []
        for name, ids in groups.items():
            shapes = expert.predict(to_uint8(predictor.faces(voices[name])))["shape"]
            meshes = model.reconstruct(shapes).reshape(len(ids), UTTERANCES, -1, 3)
            scores.append(absolute_ratio_error(meshes, references[name], model.measurements).mean)
        print(f"{iteration:9d}  " + "  ".join(f"{s:28.4f}" for s in scores))


if __name__ == "__main__":
    main()
