"""Commands that score runs: ``evaluate``, ``evaluate-unsupervised``, ``evaluate-2d``, ``calibrate-faces``,
``aggregate``, ``stats preference``."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..runs.config import cli_number
from ..runs.devices import add_device_argument
from .common import add_command, print_methods, print_summary


def _cmd_evaluate(args: argparse.Namespace) -> None:
    """score a voice-to-3D run and the oracles on the test identities

    Writes metrics.json and report/ (report.md, report.html, figures) into the run.
    """
    from ..reports.voice_to_3d import evaluate_run

    metrics = evaluate_run(args.run, args.corpus, per_identity=args.utterances, progress=not args.quiet,
                           device=args.device)
    print_summary(metrics)
    print(f"report: {Path(args.run) / 'report' / 'report.html'}")


def _cmd_evaluate_unsupervised(args: argparse.Namespace) -> None:
    """score CMP-unsupervised, Base-1 and Base-2 beside CMP-supervised

    Adds the columns CMP-unsupervised (RUN), and with --gan-run the cascades Base-1 (GAN + fitting
    expert) and Base-2 (GAN + expert network), to the evaluation of the supervised run; writes
    RUN/evaluation/{metrics.json,report/,samples/}.
    """
    from ..reports.unsupervised import EVALUATION_DIR, evaluate_unsupervised

    metrics = evaluate_unsupervised(args.run, args.supervised_run, args.gan_run, args.corpus, args.utterances,
                                    progress=not args.quiet, device=args.device)
    print_methods(metrics)
    print(f"report: {Path(args.run) / EVALUATION_DIR / 'report' / 'report.html'}")


def _cmd_evaluate_2d(args: argparse.Namespace) -> None:
    """score voice-to-2D-face runs: Table I/II analogues, 1:2 matching, recall@k

    For gan2d run folders (same corpus and speaker run) and imported Wen et al. models (`voxface
    import wen-release`): generate faces from the test voices, check their identity with dlib face
    embeddings and threshold tau, measure image quality against the real target faces (gan2d runs);
    writes metrics.json and report/ into each run and, with --out, a comparison table.
    """
    from ..reports.voice_to_image import comparison_markdown, evaluate_2d

    summary = evaluate_2d(args.runs, out=args.out, tau=args.tau, calibration=args.calibration,
                          per_identity=args.per_identity, corpus_dir=args.corpus, progress=not args.quiet,
                          device=args.device)
    print(comparison_markdown(summary["runs"], summary))
    for run in args.runs:
        print(f"report: {Path(run) / 'report' / 'report.md'}")
    if args.out:
        print(f"comparison: {Path(args.out) / 'comparison.md'}")


def _cmd_calibrate_faces(args: argparse.Namespace) -> None:
    """grid-search the face-verification threshold tau on real photos

    FOLDER holds one sub-folder of images per identity (e.g. ORL: s1/1.pgm ...). Embeds every face
    with dlib, searches tau over all pairs, writes calibration.json, threshold_sweep.png
    (accuracy/F1 vs tau) and face_tsne.png.
    """
    from ..reports.face_calibration import calibrate_faces

    r = calibrate_faces(args.folder, args.out, criterion=args.criterion, progress=not args.quiet)
    print(f"{r['images']} faces of {r['identities']} identities (face found in {100 * r['detection_rate']:.1f}%), "
          f"{r['n_same_pairs']} same / {r['n_different_pairs']} different pairs")
    print(f"tau = {r['tau']:.2f} (max {r['criterion']}): balanced accuracy {100 * r['balanced_accuracy']:.2f}%, "
          f"pair accuracy {100 * r['accuracy']:.2f}%, F1 {r['f1']:.3f}")
    print(f"tau maximising raw pair accuracy = {r['tau_best_raw_accuracy']:.2f} ({100 * r['best_raw_accuracy']:.2f}%)")
    print(f"written: {Path(args.out) / 'calibration.json'}, threshold_sweep.png, face_tsne.png")


def _cmd_aggregate(args: argparse.Namespace) -> None:
    """one experiment over several seeds: mean ± sd, intervals, paired tests

    Read the metrics.json of each run (evaluate, evaluate-unsupervised or an unsupervised-pipeline
    folder), one run per seed, and write aggregate.md/json: each method's mean ARE as mean ± sd with
    a 95% t interval, and each method against each oracle and cascade, paired by seed (t test and
    sign-flip test). gan2d runs evaluated by evaluate-2d (one per generator and seed) give each
    generator's identity accuracy, 1:2, R@1, face-found rate, PSNR and SSIM over its seeds, and the
    generators compared seed by seed.
    """
    from ..reports.aggregate import aggregate_runs, write_aggregate

    pairs = [tuple(p) for p in args.compare] if args.compare else None
    report = write_aggregate(aggregate_runs(args.runs, pairs, args.allow_mixed), args.out)
    print(report.read_text())
    print(f"written: {report} and aggregate.json")


def _cmd_preference(args: argparse.Namespace) -> None:
    """one-sided binomial preference test (CMP Fig. 12)

    Is a method preferred in more than half of the votes? Prints the one-sided binomial p-value P(X
    >= votes | n, 0.5) and the critical count at the level.
    """
    from ..evaluate.preference import preference_test

    r = preference_test(args.votes, args.total, args.level)
    print(f"{r.votes} of {r.total} votes ({100 * r.share:.1f}%): one-sided binomial p = {r.p_value:.3g}; "
          f"critical count at level {r.level:g} is {r.critical_count}; "
          f"{'significant' if r.significant else 'not significant'} (H0: preference <= 0.5)")


def _add_test_set_options(p: argparse.ArgumentParser) -> None:
    """``--corpus``, ``--utterances``, ``--device`` and ``--quiet``: how the voice-to-3D scorers take
    their test set and where they run."""
    p.add_argument("--corpus", help="corpus folder (default: the run's)")
    p.add_argument("--utterances", type=cli_number(int, ge=1), default=3,
                   help="utterances per test identity (default 3, as the paper)")
    add_device_argument(p)
    p.add_argument("--quiet", action="store_true")


def add_commands(sub) -> None:
    p = add_command(sub, "evaluate", _cmd_evaluate)
    p.add_argument("run", help="run folder of `voxface train supervised`")
    _add_test_set_options(p)

    p = add_command(sub, "evaluate-unsupervised", _cmd_evaluate_unsupervised)
    p.add_argument("run", help="run folder of `voxface train unsupervised` (student: true)")
    p.add_argument("--supervised-run", required=True, help="run folder of `voxface train supervised`")
    p.add_argument("--gan-run", help="run folder of the GAN alone (`train unsupervised --set student=false`)")
    _add_test_set_options(p)

    p = add_command(sub, "evaluate-2d", _cmd_evaluate_2d)
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
    add_device_argument(p)
    p.add_argument("--quiet", action="store_true")

    p = add_command(sub, "calibrate-faces", _cmd_calibrate_faces)
    p.add_argument("folder", help="folder of identity sub-folders")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--criterion", default="balanced_accuracy", choices=["balanced_accuracy", "accuracy"],
                   help="what tau maximises (default: %(default)s; the paper used raw pair accuracy)")
    p.add_argument("--quiet", action="store_true")

    p = add_command(sub, "aggregate", _cmd_aggregate)
    p.add_argument("runs", nargs="+", metavar="RUN", help="run folders (or metrics.json files), one per seed")
    p.add_argument("--out", required=True, help="folder for aggregate.md and aggregate.json")
    p.add_argument("--compare", nargs=2, action="append", metavar=("METHOD", "BASELINE"),
                   help="compare only these (repeatable), e.g. --compare CMP-unsupervised Base-2")
    p.add_argument("--allow-mixed", action="store_true",
                   help="aggregate runs that are not seeds of one experiment (other corpus, method or test set, "
                        "one seed twice) under a warning instead of refusing")

    stats = sub.add_parser("stats", help="statistics helpers").add_subparsers(dest="stats_command", required=True,
                                                                                metavar="TEST")
    p = add_command(stats, "preference", _cmd_preference)
    p.add_argument("votes", type=cli_number(int, ge=0), help="votes for the method")
    p.add_argument("total", type=cli_number(int, ge=1), help="all votes (n)")
    p.add_argument("--level", type=cli_number(float, gt=0, lt=1), default=0.001,
                   help="significance level (default 0.001, as the paper)")
