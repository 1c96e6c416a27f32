"""How much face geometry the synthetic voices carry: ARE of oracles and of the voice ceiling.

    python bench/check_corpus_signal.py [--corpus data/synthetic]

Without --corpus it plans the default corpus's identities (shapes, genders, linked voices: the
same numbers `voxface synth` writes, no audio or images needed). Prints the mean-face and gender
oracles' ARE, the ridge-on-true-voice-parameters ceiling, and the ceiling's gain; also a sweep of
link_strength (the issue's target: the ceiling lowers mean ARE by 30-50% on the default corpus).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from voxface.corpus.format import Corpus
from voxface.corpus.synthetic import SynthConfig, plan_identities
from voxface.evaluate.headroom import IdentitySet, corpus_headroom, headroom
from voxface.face3d.loading import load_morphable_model
from voxface.runs.config import build, load_yaml


def planned_headroom(config: SynthConfig) -> dict:
    model = load_morphable_model(config.model)
    jobs = plan_identities(model, config)
    sets = {}
    for split, keep in (("train", lambda n: n[0] not in "ABCDE"), ("test", lambda n: n[0] in "ABCDE")):
        chosen = [j for j in jobs if keep(j.name)]
        sets[split] = IdentitySet(np.stack([j.shape for j in chosen]), np.array([j.gender for j in chosen]),
                                  np.stack([j.voice.to_vector() for j in chosen]))
    return headroom(model, sets["train"], sets["test"])


def show(label: str, result: dict) -> None:
    print(f"{label}: n_train={result['n_train']} n_test={result['n_test']}")
    for name in ("mean_face", "gender", "voice_ceiling"):
        r = result[name]
        print(f"  {name:14s} mean ARE {r['mean']:.4f}  (ER {r['ER']:.4f} FR {r['FR']:.4f} "
              f"MR {r['MR']:.4f} CR {r['CR']:.4f})")
    print(f"  gender oracle gain vs mean face: {100 * result['gender_gain_vs_mean_face']:+.1f}%")
    print(f"  voice ceiling gain vs mean face: {100 * result['ceiling_gain_vs_mean_face']:+.1f}%  "
          "(target -30% to -50%)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", help="an existing synthetic corpus folder")
    parser.add_argument("--config", default="configs/synth_default.yaml")
    parser.add_argument("--sweep-identities", type=int, default=1000,
                        help="identities per point of the link-strength sweep")
    args = parser.parse_args()
    start = time.perf_counter()
    if args.corpus:
        show(f"corpus {args.corpus}", corpus_headroom(Corpus(args.corpus)))
    else:
        config = build(SynthConfig, load_yaml(args.config))
        show(f"default corpus ({args.config}, planned)", planned_headroom(config))
        print(f"link_strength sweep ({args.sweep_identities} identities each, seed 0):")
        for s in (0.0, 0.25, 0.5, 0.8, 1.0):
            r = planned_headroom(SynthConfig(identities=args.sweep_identities, link_strength=s))
            print(f"  s={s:.2f}: ceiling gain {100 * r['ceiling_gain_vs_mean_face']:+.1f}%  "
                  f"gender gain {100 * r['gender_gain_vs_mean_face']:+.1f}%")
    print(f"({time.perf_counter() - start:.1f} s)")


if __name__ == "__main__":
    main()
