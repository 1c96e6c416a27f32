"""Commands of the voice -> 2D face area: ``evaluate-2d``, ``calibrate-faces``; train methods speaker-cnn,
speaker-cnn-fsdd (real-voice check on FSDD), gan2d."""

from __future__ import annotations

import argparse
from pathlib import Path

from .runs.config import cli_number

TRAIN_METHODS = {
    "speaker-cnn": "voxface.experiments.gan2d:SpeakerCNNConfig:train_speaker_cnn",
    "speaker-cnn-fsdd": "voxface.experiments.gan2d:SpeakerCNNConfig:train_speaker_cnn_fsdd",
    "gan2d": "voxface.experiments.gan2d:Gan2dConfig:train_gan2d",
}


def _cmd_evaluate_2d(args: argparse.Namespace) -> None:
    from .experiments.evaluate2d import comparison_markdown, evaluate_2d

    summary = evaluate_2d(args.runs, out=args.out, tau=args.tau, calibration=args.calibration,
                          per_identity=args.per_identity, corpus_dir=args.corpus, progress=not args.quiet)
    print(comparison_markdown(summary["runs"], summary))
    for run in args.runs:
        print(f"report: {Path(run) / 'report' / 'report.md'}")
    if args.out:
        print(f"comparison: {Path(args.out) / 'comparison.md'}")


def _cmd_calibrate_faces(args: argparse.Namespace) -> None:
    from .experiments.face_calibration import calibrate_faces

    r = calibrate_faces(args.folder, args.out, criterion=args.criterion, progress=not args.quiet)
    print(f"{r['images']} faces of {r['identities']} identities (face found in {100 * r['detection_rate']:.1f}%), "
          f"{r['n_same_pairs']} same / {r['n_different_pairs']} different pairs")
    print(f"tau = {r['tau']:.2f} (max {r['criterion']}): balanced accuracy {100 * r['balanced_accuracy']:.2f}%, "
          f"pair accuracy {100 * r['accuracy']:.2f}%, F1 {r['f1']:.3f}")
    print(f"tau maximising raw pair accuracy = {r['tau_best_raw_accuracy']:.2f} ({100 * r['best_raw_accuracy']:.2f}%)")
    print(f"written: {Path(args.out) / 'calibration.json'}, threshold_sweep.png, face_tsne.png")


def add_commands(sub) -> None:
    p = sub.add_parser("evaluate-2d", help="score voice-to-2D-face runs: Table I/II analogues, 1:2 matching, recall@k",
                       description="For gan2d run folders (same corpus and speaker run) and imported Wen et al. "
                                   "models (`voxface import wen-release`): generate faces from the test voices, "
                                   "check their identity with dlib face embeddings and threshold tau, measure image "
                                   "quality against the real target faces (gan2d runs); writes metrics.json and "
                                   "report/ into each run and, with --out, a comparison table.")
    p.add_argument("runs", nargs="+", metavar="RUN", help="run folders of `voxface train gan2d` or "
                                                          "`voxface import wen-release`")
    p.add_argument("--corpus", help="corpus folder (default: the gan2d runs'; needed when only imported runs are "
                                    "given)")
    p.add_argument("--out", help="folder for comparison.md / comparison.json (and the tau sweep figure)")
    p.add_argument("--tau", type=cli_number(float, gt=0),
                   help="face-verification threshold (default: grid search on the real faces)")
    p.add_argument("--calibration", help="use tau from a `voxface calibrate-faces` output folder or its JSON")
    p.add_argument("--per-identity", type=cli_number(int, ge=1), default=20, dest="per_identity",
                   help="test voice patches per identity (default: %(default)s)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_cmd_evaluate_2d)

    p = sub.add_parser("calibrate-faces", help="grid-search the face-verification threshold tau on real photos",
                       description="FOLDER holds one sub-folder of images per identity (e.g. ORL: s1/1.pgm ...). "
                                   "Embeds every face with dlib, searches tau over all pairs, writes "
                                   "calibration.json, threshold_sweep.png (accuracy/F1 vs tau) and face_tsne.png.")
    p.add_argument("folder", help="folder of identity sub-folders")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--criterion", default="balanced_accuracy", choices=["balanced_accuracy", "accuracy"],
                   help="what tau maximises (default: %(default)s; the paper used raw pair accuracy)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_cmd_calibrate_faces)
