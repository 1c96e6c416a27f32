"""Commands of CMP unsupervised: ``train expert|unsupervised``, ``evaluate-unsupervised``, ``kd-ablation``,
``unsupervised-pipeline`` and ``stats preference``."""

from __future__ import annotations

import argparse
from pathlib import Path

from .runs.config import cli_number
from .errors import VoxfaceError

TRAIN_METHODS = {
    "expert": "voxface.experiments.expert:ExpertConfig:train_expert",
    "unsupervised": "voxface.experiments.unsupervised:UnsupervisedConfig:train_unsupervised",
}


def _print_methods(metrics: dict) -> None:
    for name, r in metrics["methods"].items():
        print(f"  {name:20s} mean ARE {r['ARE']['mean']:.4f}  NME {r['NME']['cmp']:.4f}  "
              f"RMSE {r['RMSE']['holistic']:.3f}")


def _cmd_evaluate(args: argparse.Namespace) -> None:
    from .experiments.unsupervised_eval import EVALUATION_DIR, evaluate_unsupervised

    metrics = evaluate_unsupervised(args.run, args.supervised_run, args.gan_run, args.corpus, args.utterances,
                                    progress=not args.quiet)
    _print_methods(metrics)
    print(f"report: {Path(args.run) / EVALUATION_DIR / 'report' / 'report.html'}")


def _unsupervised_config(args: argparse.Namespace):
    from .runs.config import build, load_yaml, parse_overrides
    from .experiments.unsupervised import UnsupervisedConfig

    overrides = {"corpus": args.corpus, "speaker_run": args.speaker_run, "expert_run": args.expert_run}
    return build(UnsupervisedConfig, load_yaml(args.config) if args.config else {}, parse_overrides(args.set),
                 overrides)


def _cmd_kd_ablation(args: argparse.Namespace) -> None:
    from .experiments.unsupervised_eval import kd_ablation
    from .losses.distillation import DISTILLERS

    names = args.distillers.split(",") if args.distillers else None
    unknown = sorted(set(names or []) - set(DISTILLERS))
    if unknown:
        raise VoxfaceError(f"unknown distiller(s) {unknown}; choose from {sorted(DISTILLERS)}")
    table = kd_ablation(_unsupervised_config(args), args.out, names, gan_run=args.gan_run, progress=not args.quiet)
    for name, row in table["rows"].items():
        print(f"  {name:10s} mean ARE {row['ARE']['mean']:.4f}  (paper {row['paper_mean_ARE']:.4f})")
    print(f"table: {Path(args.out) / 'kd_ablation.md'}")


def _cmd_pipeline(args: argparse.Namespace) -> None:
    from .runs.config import build, load_yaml
    from .experiments.expert import ExpertConfig
    from .experiments.unsupervised_eval import run_pipeline

    expert = build(ExpertConfig, load_yaml(args.expert_config)) if args.expert_config else None
    summary = run_pipeline(args.out, args.speaker_run, args.supervised_run, args.corpus, expert,
                           _unsupervised_config(args), progress=not args.quiet)
    for name, value in summary["mean_ARE"].items():
        print(f"  {name:20s} mean ARE {value:.4f}")
    print(f"stage times (s): {summary['seconds']}  total {summary['total_seconds']} s")


def _cmd_preference(args: argparse.Namespace) -> None:
    from .evaluate.preference import preference_test

    r = preference_test(args.votes, args.total, args.level)
    print(f"{r.votes} of {r.total} votes ({100 * r.share:.1f}%): one-sided binomial p = {r.p_value:.3g}; "
          f"critical count at level {r.level:g} is {r.critical_count}; "
          f"{'significant' if r.significant else 'not significant'} (H0: preference <= 0.5)")


def add_commands(sub) -> None:
    p = sub.add_parser("evaluate-unsupervised", help="score CMP-unsupervised, Base-1 and Base-2 beside CMP-supervised",
                       description="Adds the columns CMP-unsupervised (RUN), and with --gan-run the cascades Base-1 "
                                   "(GAN + fitting expert) and Base-2 (GAN + expert network), to the evaluation of "
                                   "the supervised run; writes RUN/evaluation/{metrics.json,report/,samples/}.")
    p.add_argument("run", help="run folder of `voxface train unsupervised` (student: true)")
    p.add_argument("--supervised-run", required=True, help="run folder of `voxface train supervised`")
    p.add_argument("--gan-run", help="run folder of the GAN alone (`train unsupervised --set student=false`)")
    p.add_argument("--corpus", help="corpus folder (default: the run's)")
    p.add_argument("--utterances", type=cli_number(int, ge=1), default=3,
                   help="utterances per test identity (default 3)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_cmd_evaluate)

    def training_options(p):
        p.add_argument("--config", help="YAML settings (configs/unsupervised_fast.yaml)")
        p.add_argument("--corpus", help="corpus folder")
        p.add_argument("--speaker-run", help="run folder of `voxface train speaker`")
        p.add_argument("--expert-run", help="run folder of `voxface train expert`")
        p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override any setting")
        p.add_argument("--quiet", action="store_true")

    p = sub.add_parser("kd-ablation", help="train CMP-unsupervised with each distiller; Table S-5 analogue",
                       description="One joint run per distiller in OUT/<name> (resumable), then the students' ARE "
                                   "on the test identities in OUT/kd_ablation.{md,json}. With warm_start the runs "
                                   "start from --gan-run (e.g. a pipeline's gan/), else from OUT/gan trained first.")
    p.add_argument("--out", required=True, help="folder of the runs and the table")
    p.add_argument("--gan-run", help="GAN-only run to warm-start from (default: train OUT/gan)")
    p.add_argument("--distillers", help="comma-separated subset (default: all eight)")
    training_options(p)
    p.set_defaults(func=_cmd_kd_ablation)

    p = sub.add_parser("unsupervised-pipeline", help="expert, GAN, CMP-unsupervised and their evaluation in one go",
                       description="Trains OUT/expert, OUT/gan (GAN alone) and OUT/cmp (joint), then evaluates "
                                   "CMP-unsupervised, Base-1 and Base-2 beside the supervised run. Resumable.")
    p.add_argument("--out", default="runs/unsupervised", help="folder of the runs (default: %(default)s)")
    p.add_argument("--supervised-run", required=True, help="run folder of `voxface train supervised`")
    p.add_argument("--expert-config", help="YAML settings of the expert (configs/expert_fast.yaml)")
    training_options(p)
    p.set_defaults(func=_cmd_pipeline, corpus="data/synthetic")

    stats = sub.add_parser("stats", help="statistics helpers").add_subparsers(dest="stats_command", required=True,
                                                                                metavar="TEST")
    p = stats.add_parser("preference", help="one-sided binomial preference test (CMP Fig. 12)",
                         description="Is a method preferred in more than half of the votes? Prints the one-sided "
                                     "binomial p-value P(X >= votes | n, 0.5) and the critical count at the level.")
    p.add_argument("votes", type=cli_number(int, ge=0), help="votes for the method")
    p.add_argument("total", type=cli_number(int, ge=1), help="all votes (n)")
    p.add_argument("--level", type=cli_number(float, gt=0, lt=1), default=0.001,
                   help="significance level (default 0.001, as the paper)")
    p.set_defaults(func=_cmd_preference)
