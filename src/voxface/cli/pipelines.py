"""Commands that chain methods: ``demo``, ``unsupervised-pipeline``, ``kd-ablation``."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import VoxfaceError
from .common import add_command, add_settings_options, print_summary


def _cmd_demo(args: argparse.Namespace) -> None:
    """the whole supervised pipeline on the embedded synthetic default

    Generate the synthetic corpus, pre-train the voice encoder, train CMP supervised, evaluate
    against the oracles and the ceiling, write the report.
    """
    from ..runs.logs import log_file
    from ..workflows.demo import run_demo

    with log_file(Path(args.out) / "demo.log"):
        metrics = run_demo(args.out, args.corpus, model=args.model, progress=not args.quiet)
    print_summary(metrics)
    print(f"stage times (s): {metrics['demo_seconds']}")
    print(f"report: {Path(args.out) / 'supervised' / 'report' / 'report.html'}")


def _unsupervised_config(args: argparse.Namespace):
    from ..methods.unsupervised import Config as UnsupervisedConfig
    from ..runs.config import build, load_yaml, parse_overrides

    overrides = {"corpus": args.corpus, "speaker_run": args.speaker_run, "expert_run": args.expert_run}
    return build(UnsupervisedConfig, load_yaml(args.config) if args.config else {}, parse_overrides(args.set),
                 overrides)


def _cmd_kd_ablation(args: argparse.Namespace) -> None:
    """train CMP-unsupervised with each distiller; Table S-5 analogue

    One joint run per distiller in OUT/<name> (resumable), then the students' ARE on the test
    identities in OUT/kd_ablation.{md,json}. With warm_start the runs start from --gan-run (e.g. a
    pipeline's gan/), else from OUT/gan trained first.
    """
    from ..corpus.synthetic import with_photos
    from ..losses.distillation import DISTILLERS
    from ..workflows.unsupervised_pipeline import PHOTOS, kd_ablation

    names = args.distillers.split(",") if args.distillers else None
    unknown = sorted(set(names or []) - set(DISTILLERS))
    if unknown:
        raise VoxfaceError(f"unknown distiller(s) {unknown}; choose from {sorted(DISTILLERS)}")
    config = _unsupervised_config(args)
    with_photos(config.corpus, PHOTOS, progress=not args.quiet)  # the demo's corpus has a few photos per identity
    table = kd_ablation(config, args.out, names, gan_run=args.gan_run, progress=not args.quiet)
    for name, row in table["rows"].items():
        print(f"  {name:10s} mean ARE {row['ARE']['mean']:.4f}  (paper {row['paper_mean_ARE']:.4f})")
    print(f"table: {Path(args.out) / 'kd_ablation.md'}")


def _cmd_pipeline(args: argparse.Namespace) -> None:
    """expert, GAN, CMP-unsupervised and their evaluation in one go

    Trains OUT/expert, OUT/gan (GAN alone) and OUT/cmp (joint), then evaluates CMP-unsupervised,
    Base-1 and Base-2 beside the supervised run. Resumable.
    """
    from ..methods.expert import Config as ExpertConfig
    from ..runs.config import build, load_yaml
    from ..workflows.unsupervised_pipeline import run_pipeline

    expert = build(ExpertConfig, load_yaml(args.expert_config)) if args.expert_config else None
    summary = run_pipeline(args.out, args.speaker_run, args.supervised_run, args.corpus, expert,
                           _unsupervised_config(args), expert_run=args.expert_run, progress=not args.quiet)
    for name, value in summary["mean_ARE"].items():
        print(f"  {name:20s} mean ARE {value:.4f}")
    print(f"stage times (s): {summary['seconds']}  total {summary['total_seconds']} s")


def add_commands(sub) -> None:
    p = add_command(sub, "demo", _cmd_demo)
    p.add_argument("--out", default="runs/demo", help="runs folder (default: %(default)s)")
    p.add_argument("--corpus", default="data/synthetic", help="corpus folder (default: %(default)s)")
    p.add_argument("--model", default="builtin", help="morphable model for a new corpus (builtin | sfm[:PATH])")
    p.add_argument("--quiet", action="store_true")

    p = add_command(sub, "kd-ablation", _cmd_kd_ablation)
    p.add_argument("--out", required=True, help="folder of the runs and the table")
    p.add_argument("--gan-run", help="GAN-only run to warm-start from (default: train OUT/gan)")
    p.add_argument("--distillers", help="comma-separated subset (default: all eight)")
    add_settings_options(p, "configs/unsupervised_fast.yaml", runs=("speaker", "expert"))

    p = add_command(sub, "unsupervised-pipeline", _cmd_pipeline)
    p.add_argument("--out", default="runs/unsupervised", help="folder of the runs (default: %(default)s)")
    p.add_argument("--supervised-run", required=True, help="run folder of `voxface train supervised`")
    p.add_argument("--expert-config", help="YAML settings of the expert (configs/expert_fast.yaml)")
    p.add_argument("--expert-run", help="a finished expert run to use instead of training OUT/expert "
                                        "(e.g. another seed's)")
    add_settings_options(p, "configs/unsupervised_fast.yaml", runs=("speaker",))
    p.set_defaults(corpus="data/synthetic")
