"""Realism of a generated corpus, judged by real pretrained models, on the corpus's own files.

    python bench/check_corpus_realism.py [--corpus data/synthetic]

- faces: dlib's frontal detector on every 120x120 image (no up-sampling) and every 64x64 image
  (1x up-sampling); its 68 landmarks against the corpus's stored projected landmarks
  (targets: detection >= 90%, landmark error <= 10% of the face size);
- voices: Resemblyzer embeddings of every utterance of the test identities (names A-E);
  speaker-verification equal-error rate over all pairs (target <= 15%).
(The same EER on the real FSDD speakers is printed by bench/check_voice_realism.py.)
"""

from __future__ import annotations

import argparse
import time

import matplotlib.pyplot as plt
import numpy as np

from voxface.audio.speaker_encoder import ResemblyzerEncoder
from voxface.audio.voice import prepare_voice
from voxface.corpus.validate import check_corpus
from voxface.evaluate.speaker import verification_eer
from voxface.vision.agreement import dlib_agreement


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", default="data/synthetic")
    args = parser.parse_args()
    corpus = check_corpus(args.corpus)
    params = corpus.face_params
    start = time.perf_counter()
    for size, upsample in ((120, 0), (64, 1)):
        cases = ((np.asarray(plt.imread(corpus.path(getattr(f, f"image_{size}")))[..., :3] * 255, np.uint8),
                  params[f"landmarks_{size}"][k]) for k, f in enumerate(corpus.faces))
        a = dlib_agreement(cases, upsample=upsample)
        print(f"faces {size}x{size} (upsample {upsample}): {a.n} images, detection {a.detection_rate:.3f} "
              f"(target >= 0.90), landmark error {a.landmark_error:.4f} of face size (target <= 0.10)")
    test = set(corpus.identity_ids("test"))
    utterances = [u for u in corpus.utterances if u.identity in test]
    embeddings = ResemblyzerEncoder().embed([prepare_voice(corpus.path(u.audio)) for u in utterances])
    eer = verification_eer(embeddings, np.array([u.identity for u in utterances]))
    print(f"voices: {len(utterances)} utterances of {len(test)} test identities, Resemblyzer verification "
          f"EER {100 * eer:.2f}% (target <= 15%)")
    print(f"({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
