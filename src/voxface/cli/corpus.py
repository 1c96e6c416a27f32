"""Commands on corpora: ``synth``, ``validate``, ``model``, ``shard``."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from ..errors import VoxfaceError
from ..paths import output_folder
from ..runs.config import cli_number
from .common import add_command

log = logging.getLogger("voxface")


def _cmd_synth(args: argparse.Namespace) -> None:
    """generate the synthetic voice-face corpus (the embedded default)

    Generate a synthetic voice-face corpus with a tunable voice-geometry link. Resumes an
    interrupted run with the same settings.
    """
    from ..corpus.synthetic import SynthConfig, generate_corpus
    from ..runs.config import build, load_yaml, parse_overrides

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
    """check a corpus folder against the format"""
    from ..corpus.validate import find_problems

    problems = find_problems(args.corpus, check_files=not args.skip_files)
    if problems:
        for p in problems:
            print(f"- {p}", file=sys.stderr)
        raise VoxfaceError(f"corpus {args.corpus} is invalid: {len(problems)} problem(s) listed above")
    print(f"{args.corpus}: valid voxface corpus")


def _cmd_model(args: argparse.Namespace) -> None:
    """describe a morphable model; optionally export its mean mesh and a render"""
    from ..face3d.loading import load_morphable_model

    model = load_morphable_model(args.spec)
    print(f"{model.name}: {model.n_vertices} vertices, {len(model.triangles)} triangles, "
          f"{model.n_shape} shape and {model.n_expression} expression components, units {model.units}")
    if args.out:
        from ..face3d.mesh_io import save_mesh
        from ..face3d.render import render_mesh, save_png

        out = output_folder(args.out)
        save_mesh(out / f"{model.name}_mean.obj", model.mean, model.triangles)
        save_png(out / f"{model.name}_mean.png", render_mesh(model.mean, model.triangles, size=512))
        print(f"mean mesh and render written to {out}")


def _cmd_shard(args: argparse.Namespace) -> None:
    """pack a corpus's per-utterance features into a few large shard files

    Pack the voice features of every utterance of a corpus into shard files with an index
    (docs/scale.md), so that a corpus of millions of utterances is read from a few files instead of
    one per utterance. Features already cached per utterance are reused; missing cmp_logmel ones are
    computed from the audio. An interrupted pack resumes.
    """
    from ..corpus.format import Corpus
    from ..corpus.sharded import ShardedFeatures, pack_corpus

    out = pack_corpus(Corpus(args.corpus), args.out, kind=args.kind, shard_mb=args.shard_mb, workers=args.workers,
                      progress=not args.quiet)
    meta = ShardedFeatures(out).meta
    print(f"{args.out}: {meta['utterances']} utterances of {meta['kind']} features in {meta['shards']} shard(s)")


def add_commands(sub) -> None:
    p = add_command(sub, "synth", _cmd_synth)
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

    p = add_command(sub, "validate", _cmd_validate)
    p.add_argument("corpus", help="corpus folder")
    p.add_argument("--skip-files", action="store_true", help="do not check that audio/image files exist")

    p = add_command(sub, "model", _cmd_model)
    p.add_argument("spec", nargs="?", default="builtin", help="builtin | sfm[:PATH] | bfm2009:PATH | 3ddfa:PATH | "
                   "bfm-topology[:PATH] (default: %(default)s)")
    p.add_argument("--out", help="folder for <name>_mean.obj and <name>_mean.png")

    p = add_command(sub, "shard", _cmd_shard)
    p.add_argument("corpus", help="corpus folder")
    p.add_argument("--out", required=True, help="shard folder to write")
    p.add_argument("--kind", default="cmp_logmel", choices=["cmp_logmel", "resemblyzer"],
                   help="feature kind (default: %(default)s)")
    p.add_argument("--shard-mb", type=cli_number(float, gt=0), default=512.0, dest="shard_mb",
                   help="target shard size in MB (default: %(default)s)")
    p.add_argument("--workers", type=cli_number(int, ge=0), default=2,
                   help="processes computing missing features (default: %(default)s)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
