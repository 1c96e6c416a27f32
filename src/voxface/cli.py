"""``voxface <command>``: each command parses its arguments and calls the library, nothing more."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from . import __version__
from .audio.duration import PREDICT_MAX_MINUTES
from .runs.config import cli_number
from .runs.devices import add_device_argument
from .errors import VoxfaceError
from .paths import output_folder

log = logging.getLogger("voxface")


def _cmd_synth(args: argparse.Namespace) -> None:
    from .runs.config import build, load_yaml, parse_overrides
    from .corpus.synthetic import SynthConfig, generate_corpus

    flags = {"identities": args.identities, "utterances": args.utterances, "images": args.images,
             "seed": args.seed, "model": args.model, "link_strength": args.link_strength,
             "workers": args.workers}
    config = build(SynthConfig, load_yaml(args.config) if args.config else {}, parse_overrides(args.set), flags)
    out = Path(args.out)
    log.info("voxface synth: %s", config)
    corpus = generate_corpus(out, config, progress=not args.quiet, log_file=True)
    m = corpus.manifest["counts"]
    print(f"corpus: {out} ({m['identities']} identities, {m['utterances']} utterances, {m['faces']} faces)")
    print(f"preview: {out / 'preview.png'}")


def _cmd_validate(args: argparse.Namespace) -> None:
    from .corpus.validate import find_problems

    problems = find_problems(args.corpus, check_files=not args.skip_files)
    if problems:
        for p in problems:
            print(f"- {p}", file=sys.stderr)
        raise VoxfaceError(f"corpus {args.corpus} is invalid: {len(problems)} problem(s) listed above")
    print(f"{args.corpus}: valid voxface corpus")


def _cmd_model(args: argparse.Namespace) -> None:
    from .face3d.loading import load_morphable_model

    model = load_morphable_model(args.spec)
    print(f"{model.name}: {model.n_vertices} vertices, {len(model.triangles)} triangles, "
          f"{model.n_shape} shape and {model.n_expression} expression components, units {model.units}")
    if args.out:
        from .face3d.mesh_io import save_mesh
        from .face3d.render import render_mesh, save_png

        out = output_folder(args.out)
        save_mesh(out / f"{model.name}_mean.obj", model.mean, model.triangles)
        save_png(out / f"{model.name}_mean.png", render_mesh(model.mean, model.triangles, size=512))
        print(f"mean mesh and render written to {out}")


TRAIN_METHODS: dict[str, str] = {
    "speaker": "voxface.experiments.speaker:SpeakerConfig:train_speaker_encoder",
    "supervised": "voxface.experiments.supervised:SupervisedConfig:train_supervised",
}
"""``voxface train NAME`` -> "module:ConfigDataclass:function"; function(config, run_dir, progress)."""

AREA_MODULES = ("voxface.cli_unsupervised", "voxface.cli_gan2d", "voxface.cli_realdata", "voxface.cli_serve")
"""Modules adding commands (``add_commands(subparsers)``) and train methods (``TRAIN_METHODS``)."""


def _cmd_train(args: argparse.Namespace) -> None:
    import importlib

    from .runs.config import build, load_yaml, parse_overrides

    module_name, config_name, function_name = TRAIN_METHODS[args.method].split(":")
    module = importlib.import_module(module_name)
    overrides = {"corpus": args.corpus}
    if args.speaker_run:
        overrides["speaker_run"] = args.speaker_run
    config = build(getattr(module, config_name), load_yaml(args.config) if args.config else {},
                   parse_overrides(args.set), overrides)
    result = getattr(module, function_name)(config, args.run, progress=not args.quiet)
    print(f"{args.method}: run folder {args.run}" + (f"  {result}" if isinstance(result, dict) else ""))


def _cmd_evaluate(args: argparse.Namespace) -> None:
    from .experiments.evaluate3d import evaluate_run

    metrics = evaluate_run(args.run, args.corpus, per_identity=args.utterances, progress=not args.quiet,
                           device=args.device)
    _print_summary(metrics)
    print(f"report: {Path(args.run) / 'report' / 'report.html'}")


def _print_summary(metrics: dict) -> None:
    stats = metrics["statistics"]["methods"]
    for name, r in metrics["methods"].items():
        ci = stats[name]["mean"]
        versus = stats[name]["vs"].get("gender oracle")
        test = (f" (95% CI [{100 * versus['gain']['low']:+.1f}%, {100 * versus['gain']['high']:+.1f}%], "
                f"p={versus['p_value']:.4f}{', significant' if versus['significant'] else ''})") if versus else ""
        print(f"  {name:18s} mean ARE {r['ARE']['mean']:.4f} [{ci['low']:.4f}, {ci['high']:.4f}]  gain vs gender "
              f"oracle {100 * r['gain_vs_gender_oracle']:+.1f}%{test}  NME {r['NME']['cmp']:.4f}  "
              f"RMSE {r['RMSE']['holistic']:.3f}")
    c = metrics["coherence"]
    print(f"  coherence: within-speaker {c['within_speaker_distance']:.3f} vs between-speaker "
          f"{c['between_speaker_distance']:.3f} {metrics['units']}")


def _cmd_predict(args: argparse.Namespace) -> None:
    from .runs.devices import place_predictor
    from .experiments.predict import predict_files
    from .inference import VoiceTo3D

    output_folder(args.out)
    predictor = place_predictor(VoiceTo3D.load(args.checkpoint), args.device)
    if args.model:
        from .face3d.loading import load_morphable_model

        predictor.check_model(load_morphable_model(args.model))
    _report_outcomes(predict_files(predictor, args.voices, args.out, args.format, max_minutes=args.max_minutes),
                     args.out)


def _cmd_features(args: argparse.Namespace) -> None:
    from .experiments.features import write_cmp_features

    _report_outcomes(write_cmp_features(args.audio, args.out), args.out)


def _cmd_voice_reference(args: argparse.Namespace) -> None:
    from .experiments.voice_reference import fit_voice_reference

    reference = fit_voice_reference(args.run, corpus=args.corpus, audio=args.audio, progress=not args.quiet)
    print(f"{args.run}: voice reference of {reference.source} ({len(reference.calibration)} calibration distances)")


def _cmd_aggregate(args: argparse.Namespace) -> None:
    from .experiments.aggregate import aggregate_runs, write_aggregate

    pairs = [tuple(p) for p in args.compare] if args.compare else None
    report = write_aggregate(aggregate_runs(args.runs, pairs), args.out)
    print(report.read_text())
    print(f"written: {report} and aggregate.json")


def _report_outcomes(outcomes: list, out: str) -> None:
    """One line per input file; VoxfaceError (exit 2) when any failed."""
    for o in outcomes:
        if o.error:
            print(f"{o.source}: error: {o.error}", file=sys.stderr)
        else:
            print(f"{o.source}: {', '.join(o.outputs)}")
    failed = [o for o in outcomes if o.error]
    if failed:
        written = len(outcomes) - len(failed)
        raise VoxfaceError(f"{len(failed)} of {len(outcomes)} file(s) failed (see above); "
                           + (f"the other {written} were written to {out}" if written else "nothing was written"))


def _cmd_demo(args: argparse.Namespace) -> None:
    from .experiments.demo import run_demo
    from .runs.logs import add_log_file

    add_log_file(Path(args.out) / "demo.log")
    metrics = run_demo(args.out, args.corpus, model=args.model, progress=not args.quiet)
    _print_summary(metrics)
    print(f"stage times (s): {metrics['demo_seconds']}")
    print(f"report: {Path(args.out) / 'supervised' / 'report' / 'report.html'}")


def _area_modules() -> list:
    """The installed area modules (each adds commands and train methods)."""
    import importlib
    import importlib.util

    return [importlib.import_module(name) for name in AREA_MODULES if importlib.util.find_spec(name) is not None]


def build_parser() -> argparse.ArgumentParser:
    areas = _area_modules()
    for area in areas:
        TRAIN_METHODS.update(getattr(area, "TRAIN_METHODS", {}))
    parser = argparse.ArgumentParser(prog="voxface", description="What a voice says about a face.")
    parser.add_argument("--version", action="version", version=f"voxface {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("synth", help="generate the synthetic voice-face corpus (the embedded default)",
                       description="Generate a synthetic voice-face corpus with a tunable voice-geometry link. "
                                   "Resumes an interrupted run with the same settings.")
    p.add_argument("--out", default="data/synthetic", help="corpus folder (default: %(default)s)")
    p.add_argument("--config", help="YAML with SynthConfig settings (e.g. configs/synth_default.yaml)")
    p.add_argument("--identities", type=int, help="number of identities (default 100)")
    p.add_argument("--utterances", type=int, help="utterances per identity (default 10)")
    p.add_argument("--images", type=int, help="face images per identity (default 40)")
    p.add_argument("--seed", type=int, help="random seed (default 0)")
    p.add_argument("--model", help="morphable model: builtin | sfm[:PATH] | bfm2009:PATH | 3ddfa:PATH")
    p.add_argument("--link-strength", type=float, dest="link_strength",
                   help="share of linked voice parameters' variance explained by face geometry, 0..1 (default 0.8)")
    p.add_argument("--workers", type=int, help="processes (default 2)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override any setting")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_synth)

    p = sub.add_parser("validate", help="check a corpus folder against the format")
    p.add_argument("corpus", help="corpus folder")
    p.add_argument("--skip-files", action="store_true", help="do not check that audio/image files exist")
    p.set_defaults(func=_cmd_validate)

    p = sub.add_parser("model", help="describe a morphable model; optionally export its mean mesh and a render")
    p.add_argument("spec", nargs="?", default="builtin", help="builtin | sfm[:PATH] | bfm2009:PATH | 3ddfa:PATH | "
                   "bfm-topology[:PATH] (default: %(default)s)")
    p.add_argument("--out", help="folder for <name>_mean.obj and <name>_mean.png")
    p.set_defaults(func=_cmd_model)

    p = sub.add_parser("train", help="train a model: speaker (voice-encoder pre-training) or supervised (CMP)",
                       description="Train into a run folder (config.yaml, logs, checkpoints). Rerunning the same "
                                   "command on the same folder resumes from its last checkpoint.")
    p.add_argument("method", choices=sorted(TRAIN_METHODS))
    p.add_argument("--run", required=True, help="run folder")
    p.add_argument("--config", help="YAML settings (configs/speaker_fast.yaml, configs/supervised_fast.yaml, ...)")
    p.add_argument("--corpus", help="corpus folder (default data/synthetic)")
    p.add_argument("--speaker-run", dest="speaker_run", help="the speaker run with encoder.pt (methods on the CMP encoder)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override any setting")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("evaluate", help="score a voice-to-3D run and the oracles on the test identities",
                       description="Writes metrics.json and report/ (report.md, report.html, figures) into the run.")
    p.add_argument("run", help="run folder of `voxface train supervised`")
    p.add_argument("--corpus", help="corpus folder (default: the run's)")
    p.add_argument("--utterances", type=cli_number(int, ge=1), default=3,
                   help="utterances per test identity (default 3, as the paper)")
    add_device_argument(p)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_cmd_evaluate)

    p = sub.add_parser("predict", help="predict 3D faces from audio files",
                       description="For each audio file: a mesh, a PNG render and the parameters as JSON. A bad "
                                   "file gets a one-line error; the others still run (exit status 2 if any failed).")
    p.add_argument("voices", nargs="+", metavar="VOICE", help="audio files (wav, flac, ogg, mp3, m4a)")
    p.add_argument("--checkpoint", required=True, help="a run folder or its predictor.pt")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--format", default="obj", choices=["obj", "ply", "glb"], help="mesh format (default obj)")
    p.add_argument("--model", help="refuse the checkpoint unless it was trained for this morphable model spec")
    p.add_argument("--max-minutes", type=cli_number(float, gt=0), default=PREDICT_MAX_MINUTES, dest="max_minutes",
                   help="refuse recordings longer than this, read from the file before decoding it (default: "
                        "%(default)s; memory grows by about 65 MB a minute)")
    add_device_argument(p)
    p.set_defaults(func=_cmd_predict)

    p = sub.add_parser("features", help="audio files -> CMP log-mel features (.npy), as the official preprocessing",
                       description="For each audio file: CMP's front end exactly as the official code (webrtcvad "
                                   "collector, 64-bin log-mel, per-utterance normalisation, tiled to 1,000 frames) "
                                   "-> OUT/<name>.npy, float32 (T >= 1000, 64), the layout of the CMP / Wen et al. "
                                   "feature releases. Files that are not 16 kHz mono 16-bit are converted first "
                                   "(docs/release_models.md). A bad file gets one line; the others go on.")
    p.add_argument("audio", nargs="+", metavar="AUDIO", help="audio files (wav, flac, ogg, mp3, m4a)")
    p.add_argument("--out", required=True, help="output folder")
    p.set_defaults(func=_cmd_features)

    p = sub.add_parser("voice-reference", help="store in a predictor what its typical voices are like",
                       description="Fit the reference the in-distribution score compares voices with (docs/"
                                   "release_models.md) and store it in the predictor: from a corpus's training "
                                   "identities, or from recordings (one folder per speaker). For models that do not "
                                   "carry one, e.g. an imported CMP release.")
    p.add_argument("run", help="a run folder or its predictor.pt")
    p.add_argument("--corpus", help="fit on this corpus's training identities")
    p.add_argument("--audio", nargs="+", metavar="AUDIO", help="fit on these recordings")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_cmd_voice_reference)

    p = sub.add_parser("aggregate", help="one experiment over several seeds: mean ± sd, intervals, paired tests",
                       description="Read the metrics.json of each run (evaluate, evaluate-unsupervised or an "
                                   "unsupervised-pipeline folder), one run per seed, and write aggregate.md/json: "
                                   "each method's mean ARE as mean ± sd with a 95% t interval, and each method "
                                   "against each oracle and cascade, paired by seed (t test and sign-flip test).")
    p.add_argument("runs", nargs="+", metavar="RUN", help="run folders (or metrics.json files), one per seed")
    p.add_argument("--out", required=True, help="folder for aggregate.md and aggregate.json")
    p.add_argument("--compare", nargs=2, action="append", metavar=("METHOD", "BASELINE"),
                   help="compare only these (repeatable), e.g. --compare CMP-unsupervised Base-2")
    p.set_defaults(func=_cmd_aggregate)

    p = sub.add_parser("demo", help="the whole supervised pipeline on the embedded synthetic default",
                       description="Generate the synthetic corpus, pre-train the voice encoder, train CMP "
                                   "supervised, evaluate against the oracles and the ceiling, write the report.")
    p.add_argument("--out", default="runs/demo", help="runs folder (default: %(default)s)")
    p.add_argument("--corpus", default="data/synthetic", help="corpus folder (default: %(default)s)")
    p.add_argument("--model", default="builtin", help="morphable model for a new corpus (builtin | sfm[:PATH])")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_cmd_demo)
    for area in areas:
        area.add_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from .runs.logs import setup_logging

    args = build_parser().parse_args(argv)
    setup_logging(args.verbose)
    try:
        args.func(args)
    except VoxfaceError as e:
        print(f"voxface {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"voxface {args.command}: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
