"""``voxface <command>``: each command parses its arguments and calls the library, nothing more."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from . import __version__
from .errors import VoxfaceError

log = logging.getLogger("voxface")


def _cmd_synth(args: argparse.Namespace) -> None:
    from .config import build, load_yaml, parse_overrides
    from .corpus.synthetic import SynthConfig, generate_corpus
    from .logs import add_log_file

    flags = {"identities": args.identities, "utterances": args.utterances, "images": args.images,
             "seed": args.seed, "model": args.model, "link_strength": args.link_strength,
             "workers": args.workers}
    config = build(SynthConfig, load_yaml(args.config) if args.config else {}, parse_overrides(args.set), flags)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    add_log_file(out / "synth.log")
    log.info("voxface synth: %s", config)
    corpus = generate_corpus(out, config, progress=not args.quiet)
    m = corpus.manifest["counts"]
    print(f"corpus: {out} ({m['identities']} identities, {m['utterances']} utterances, {m['faces']} faces)")
    print(f"preview: {out / 'preview.png'}")


def _cmd_validate(args: argparse.Namespace) -> None:
    from .corpus.validate import find_problems

    problems = find_problems(args.corpus, check_files=not args.skip_files)
    if problems:
        for p in problems:
            print(f"- {p}")
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

        out = Path(args.out)
        save_mesh(out / f"{model.name}_mean.obj", model.mean, model.triangles)
        save_png(out / f"{model.name}_mean.png", render_mesh(model.mean, model.triangles, size=512))
        print(f"mean mesh and render written to {out}")


def build_parser() -> argparse.ArgumentParser:
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
    p.add_argument("--images", type=int, help="face images per identity (default 5)")
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
    return parser


def main(argv: list[str] | None = None) -> int:
    from .logs import setup_logging

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
