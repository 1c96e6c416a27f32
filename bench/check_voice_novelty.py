"""Does the in-distribution score separate real speech from the synthetic voices a model was trained on?

Usage: .venv/bin/python bench/check_voice_novelty.py [RUN] [--release RUN/supervised]

For a predictor trained on the synthetic corpus (default ``runs/demo/supervised``, made by
``make demo``): scores of the held-out synthetic test identities' utterances (all of them) against
real speech (every 4th FSDD recording with at least 0.5 s of speech, and the 18 ``cmp_reference``
clips); prints the AUC and the share flagged (score < 0.01) in each group. With ``--release`` (an
imported CMP release, e.g. from tests' fixture: ``voxface import cmp-release``), fits its reference
on the FSDD recordings of four speakers (a copy of the predictor; the original is untouched) and
scores the recordings and ``cmp_reference`` clips of the other two speakers by the same rule.
"""

import argparse
import shutil
import tempfile
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

from voxface.audio.voice import prepare_voice
from voxface.corpus.data import utterance_set
from voxface.corpus.validate import check_corpus
from voxface.errors import VoxfaceError
from voxface.evaluate.in_distribution import WARN_BELOW
from voxface.paths import shared_data_dir
from voxface.predictors.voice_to_3d import VoiceTo3D
from voxface.runs.folder import read_run_config
from voxface.workflows.voice_reference import fit_voice_reference

SHARED = shared_data_dir()


def real_features(predictor: VoiceTo3D, files: list[Path]) -> list[np.ndarray]:
    features = []
    for f in files:
        try:
            features += predictor.voice_features([prepare_voice(f)])
        except VoxfaceError:
            pass
    return features


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", nargs="?", default="runs/demo/supervised")
    parser.add_argument("--release", help="an imported CMP release's supervised run")
    args = parser.parse_args()
    predictor = VoiceTo3D.load(args.run)
    if predictor.reference is None:
        raise SystemExit(f"{args.run} has no voice reference; retrain it or run `voxface voice-reference`")
    corpus = check_corpus(read_run_config(args.run)["corpus"])
    test = utterance_set(corpus, corpus.identity_ids("test"), "cmp_logmel", progress=False)
    fsdd = sorted((SHARED / "fsdd" / "recordings").glob("*.wav"))[::4]
    reference_clips = sorted((SHARED / "cmp_reference" / "wav").glob("*.wav"))
    groups = {"synthetic test voices": test.features, "FSDD": real_features(predictor, fsdd),
              "cmp_reference": real_features(predictor, reference_clips)}
    scores = {name: predictor.in_distribution(f) for name, f in groups.items()}
    print(f"model {args.run}: reference {predictor.reference.source}")
    for name, s in scores.items():
        print(f"  {name:24s} n={len(s):4d}  median score {np.median(s):.3f}  flagged (< {WARN_BELOW:g}) "
              f"{100 * np.mean(s < WARN_BELOW):5.1f}%")
    real = np.concatenate([scores["FSDD"], scores["cmp_reference"]])
    synthetic = scores["synthetic test voices"]
    labels = np.r_[np.zeros(len(synthetic)), np.ones(len(real))]
    auc = roc_auc_score(labels, -np.r_[synthetic, real])
    print(f"  AUC (real vs synthetic test voices, by lower score): {auc:.4f}")
    if args.release:
        check_release(Path(args.release))


def check_release(run: Path) -> None:
    speakers = ("george", "jackson", "lucas", "nicolas")
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "predictor.pt"
        shutil.copy(run / "predictor.pt" if run.is_dir() else run, copy)
        files = [str(f) for s in speakers for f in sorted((SHARED / "fsdd" / "recordings").glob(f"*_{s}_*.wav"))]
        by_speaker = Path(tmp) / "voices"
        for f in files:  # one folder per speaker: the reference's folds are speakers
            target = by_speaker / Path(f).name.split("_")[1] / Path(f).name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(Path(f).resolve())
        fit_voice_reference(copy, audio=[str(p) for p in sorted(by_speaker.glob("*/*.wav"))], progress=False)
        predictor = VoiceTo3D.load(copy)
        print(f"release {run}: reference {predictor.reference.source}")
        held_out = {"FSDD recordings of theo and yweweler": sorted(
            f for s in ("theo", "yweweler") for f in (SHARED / "fsdd" / "recordings").glob(f"*_{s}_*.wav")),
            "cmp_reference clips of theo and yweweler": sorted(
                f for f in (SHARED / "cmp_reference" / "wav").glob("*.wav") if not f.name.startswith(speakers))}
        for name, files in held_out.items():
            s = predictor.in_distribution(real_features(predictor, files))
            print(f"  {name:42s} n={len(s):4d}  median score {np.median(s):.3f}  flagged (< {WARN_BELOW:g}) "
                  f"{100 * np.mean(s < WARN_BELOW):5.1f}%")


if __name__ == "__main__":
    main()
