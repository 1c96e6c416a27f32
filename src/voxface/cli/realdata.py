"""``voxface prepare voxceleb|merge``, ``voxface import cmp|audio|faces`` (real data into a corpus) and
``voxface import cmp-release|wen-release`` (released checkpoints into run folders)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..runs.config import cli_number
from .common import add_command


def _run(args: argparse.Namespace, plan) -> None:
    from ..corpus.prepare import PREPARE_DIR, parse_shard, run_plan
    from ..face3d.loading import load_morphable_model
    from ..runs.logs import log_file

    shard = parse_shard(args.shard)
    out = Path(args.out)
    model = load_morphable_model(plan.settings["model"])
    out.mkdir(parents=True, exist_ok=True)
    with log_file(out / PREPARE_DIR / "prepare.log"):
        corpus = run_plan(out, plan, model, workers=args.workers, shard=shard, progress=not args.quiet)
    if corpus is None:
        print(f"shard {args.shard} done in {out}; when every shard is done: voxface prepare merge SHARD_DIRS... --out FINAL")
    else:
        _print_summary(corpus.root)


def _print_summary(root: Path) -> None:
    summary = json.loads((root / "summary.json").read_text())
    c = summary["counts"]
    print(f"corpus: {root} ({c['identities']} identities, {c['utterances']} utterances, {c['faces']} faces)")
    for reason, n in summary["skipped_by_reason"].items():
        print(f"  skipped {n:6d}  {reason}")
    print(f"skipped files and their reasons: {root / 'skipped.csv'}")


def _cmd_prepare_voxceleb(args: argparse.Namespace) -> None:
    """VoxCeleb1/2 audio x VGGFace(2) photos joined by name

    Join identities by name through the metadata table, split A-E test / F-Z train; decode, VAD and
    CMP log-mel features per utterance; per photo detect the largest face, 68 landmarks, aligned
    64/120 crops and a 3DMM fit; a reference fit per identity (docs/realdata.md states the rule).
    """
    from ..corpus.voxceleb import voxceleb_plan

    _run(args, voxceleb_plan(args.meta, args.audio, args.faces, args.model, args.min_seconds, args.name,
                            fitter=args.fitter))


def _cmd_prepare_merge(args: argparse.Namespace) -> None:
    """merge finished shard folders into one corpus

    Copy the outputs of every shard folder into --out (which may be one of them) and write the
    corpus tables and manifest.
    """
    from ..corpus.prepare import merge

    _print_summary(merge(args.shards, args.out).root)


def _cmd_import_cmp(args: argparse.Namespace) -> None:
    """the CMP / Wen et al. release: <speaker>/<video>/<utt>.npy log-mel features

    Published (T>=1000, 64) log-mel features become the feature cache (features/cmp_logmel); the
    utterances have no audio. With --faces, photos <Name>/*.jpg are detected, cropped and fitted as
    in `prepare voxceleb`; with --meshes, CMP's released Voxceleb-3D reconstructions become the
    identities' references.
    """
    from ..corpus.importers import cmp_plan

    _run(args, cmp_plan(args.features, args.model, args.meta, args.faces, args.default_gender, args.name,
                        fitter=args.fitter, meshes_tree=args.meshes))


def _cmd_import_cmp_release(args: argparse.Namespace) -> None:
    """the CMP release's checkpoints -> supervised/, unsupervised/, expert/ runs

    Read the unpacked CMP release (pretrained_models/, supervised_64/, train.configs/tri.mat;
    docs/release_models.md) without running code from its files, and write voxface run folders:
    supervised/ (predictor.pt), unsupervised/ (unsupervised.pt), expert/ (SynergyNet as an
    expert.pt).
    """
    from ..predictors.cmp_release import import_cmp_release

    written = import_cmp_release(args.release, args.out, topology=args.topology)
    for name, run in written.items():
        print(f"{name}: {run}")
    if "supervised" in written:
        print(f"try: voxface predict VOICE.wav --checkpoint {written['supervised']} --out predictions/")


def _cmd_import_wen_release(args: argparse.Namespace) -> None:
    """Wen et al. (2019)'s voice_embedding.pth + generator.pth -> a voice-to-image run

    Read Wen et al.'s released voice encoder and generator (the folder or its pretrained_models/)
    without running code from them and write voice_to_image.pt for `serve --image-run` and
    `evaluate-2d`.
    """
    from ..predictors.cmp_release import import_wen_release

    run = import_wen_release(args.release, args.out)
    print(f"voice-to-image model: {run}  (voxface serve --image-run {run})")


def _cmd_import_audio(args: argparse.Namespace) -> None:
    """an audio tree <speaker>/<video>/<utt>.wav without faces

    For speaker pre-training: decode, VAD, CMP features; no faces.
    """
    from ..corpus.importers import audio_plan

    _run(args, audio_plan(args.audio, args.model, args.meta, args.default_gender, args.min_seconds, args.name))


def _cmd_import_faces(args: argparse.Namespace) -> None:
    """a photo tree <Name>/*.jpg without audio

    Detect, crop and fit every photo; no utterances.
    """
    from ..corpus.importers import faces_plan

    _run(args, faces_plan(args.faces, args.model, args.meta, args.default_gender, args.name, fitter=args.fitter))


def _common(p: argparse.ArgumentParser, name: str) -> None:
    p.add_argument("--out", required=True, help="corpus folder (a rerun with the same arguments resumes)")
    p.add_argument("--model", default="builtin", help="morphable model the faces are fitted with: builtin | "
                   "sfm[:PATH] | bfm2009:PATH | 3ddfa:PATH (default: %(default)s)")
    p.add_argument("--workers", type=cli_number(int, ge=0), default=2, help="processes (default: %(default)s)")
    p.add_argument("--shard", default="1/1", metavar="K/N", help="process only shard K of N (by identity); "
                   "finish with `voxface prepare merge` (default: %(default)s, everything)")
    p.add_argument("--name", default=name, help="corpus name in the manifest (default: %(default)s)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _fitter_flag(p: argparse.ArgumentParser) -> None:
    from ..face3d.fitting import DEFAULT_FITTER, FITTERS

    p.add_argument("--fitter", choices=FITTERS, default=DEFAULT_FITTER,
                   help="3DMM landmark fitter: voxface (ours, any model) or eos (eos-py, Surrey Face Model "
                        "only); docs/realdata.md compares them (default: %(default)s)")


def _people_flags(p: argparse.ArgumentParser, meta_required: bool = False) -> None:
    p.add_argument("--meta", required=meta_required, help="metadata table in the vox1_meta.csv layout "
                   "(tab separated: VoxCeleb1 ID, VGGFace1 ID, Gender, ...)")
    if not meta_required:
        p.add_argument("--default-gender", dest="default_gender", choices=["m", "f"],
                       help="gender of folders the metadata does not list (else they are refused)")


def add_commands(sub) -> None:
    """Add ``prepare`` and ``import`` to the ``voxface`` subcommands."""
    p = sub.add_parser("prepare", help="build a corpus from VoxCeleb x VGGFace; merge shards",
                       description="Real recordings and photos -> the voxface corpus format. Parallel (--workers), "
                                   "shardable (--shard K/N, then `prepare merge`), resumable (rerun the same "
                                   "command); every skipped file is listed with its reason in skipped.csv.")
    steps = p.add_subparsers(dest="step", required=True, metavar="STEP")
    v = add_command(steps, "voxceleb", _cmd_prepare_voxceleb)
    v.add_argument("--audio", required=True, action="append", help="audio tree <voxceleb id>/<video>/<utt>.wav|m4a "
                   "(repeat for VoxCeleb1 and VoxCeleb2)")
    v.add_argument("--faces", required=True, help="photo tree <Name>/*.jpg (VGGFace or VGGFace2, not aligned)")
    _people_flags(v, meta_required=True)
    v.add_argument("--min-seconds", dest="min_seconds", type=cli_number(float, ge=0), default=1.0,
                   help="skip utterances with less speech after VAD (default: %(default)s)")
    _common(v, "voxceleb-3d")
    _fitter_flag(v)
    m = add_command(steps, "merge", _cmd_prepare_merge)
    m.add_argument("shards", nargs="+", help="shard folders (the --out of each --shard K/N run)")
    m.add_argument("--out", required=True, help="the merged corpus folder")

    p = sub.add_parser("import", help="import published layouts: cmp | audio | faces (corpora), "
                                      "cmp-release | wen-release (checkpoints)",
                       description="Corpora (cmp, audio, faces) are imported like `prepare`: parallel, shardable, "
                                   "resumable, skipped files recorded. Released checkpoints (cmp-release, "
                                   "wen-release) become run folders that predict, evaluate and serve use.")
    kinds = p.add_subparsers(dest="kind", required=True, metavar="KIND")
    r = add_command(kinds, "cmp-release", _cmd_import_cmp_release)
    r.add_argument("release", help="the folder the release was unpacked into")
    r.add_argument("--out", required=True, help="folder for the run folders (must not hold them yet)")
    r.add_argument("--topology", help="a folder with tri_53215.mat (or tri.mat) and keypoints_sim.npy, when the "
                                      "release has no train.configs/ (e.g. 3DDFA's train.configs)")
    w = add_command(kinds, "wen-release", _cmd_import_wen_release)
    w.add_argument("release", help="the folder holding voice_embedding.pth and generator.pth")
    w.add_argument("--out", required=True, help="run folder to write")
    c = add_command(kinds, "cmp", _cmd_import_cmp)
    c.add_argument("features", help="the feature tree <speaker>/<video>/<utt>.npy")
    c.add_argument("--faces", help="photo tree <Name>/*.jpg (optional)")
    c.add_argument("--meshes", help="CMP's Voxceleb-3D folders <Name>/ (optional): each .xyz point cloud (or .obj "
                   "where a folder has no .xyz) is copied to meshes/ and fitted with --model, which must have "
                   "the same vertices (3ddfa:PATH for the released BFM meshes); the best fit is the reference")
    _people_flags(c)
    _common(c, "cmp-import")
    _fitter_flag(c)
    a = add_command(kinds, "audio", _cmd_import_audio)
    a.add_argument("audio", help="the audio tree")
    _people_flags(a)
    a.add_argument("--min-seconds", dest="min_seconds", type=cli_number(float, ge=0), default=1.0,
                   help="skip utterances with less speech after VAD (default: %(default)s)")
    _common(a, "audio-import")
    f = add_command(kinds, "faces", _cmd_import_faces)
    f.add_argument("faces", help="the photo tree")
    _people_flags(f)
    _common(f, "faces-import")
    _fitter_flag(f)
