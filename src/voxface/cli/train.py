"""``voxface train METHOD``: the methods and their settings come from :mod:`voxface.methods`."""

from __future__ import annotations

import argparse

from ..methods import METHODS


def _cmd_train(args: argparse.Namespace) -> None:
    from ..methods import method
    from ..runs.config import build, load_yaml, parse_overrides

    module, fit = method(args.method)
    overrides = {"corpus": args.corpus}
    if args.speaker_run:
        overrides["speaker_run"] = args.speaker_run
    config = build(module.Config, load_yaml(args.config) if args.config else {}, parse_overrides(args.set), overrides)
    fitted = fit(config, args.run, progress=not args.quiet)
    print(f"{args.method}: run folder {fitted.run}" + (f"  {fitted.metrics}" if fitted.metrics else ""))


def add_commands(sub) -> None:
    p = sub.add_parser("train", help=f"train a method: {', '.join(METHODS)}",
                       description="Train into a run folder (config.yaml, logs, checkpoints). Rerunning the same "
                                   "command on the same folder resumes from its last checkpoint.")
    p.add_argument("method", choices=list(METHODS))
    p.add_argument("--run", required=True, help="run folder")
    p.add_argument("--config", help="YAML settings (configs/speaker_fast.yaml, configs/supervised_fast.yaml, ...)")
    p.add_argument("--corpus", help="corpus folder (default data/synthetic)")
    p.add_argument("--speaker-run", dest="speaker_run", help="the speaker run whose encoder the method builds on")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override any setting")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_train)
