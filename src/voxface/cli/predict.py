"""Commands that use a trained model on audio: ``predict``, ``features``, ``voice-reference``."""

from __future__ import annotations

import argparse

from ..audio.duration import PREDICT_MAX_MINUTES
from ..paths import output_folder
from ..runs.config import cli_number
from ..runs.devices import add_device_argument
from .common import add_command, report_outcomes


def _cmd_predict(args: argparse.Namespace) -> None:
    """predict 3D faces from audio files

    For each audio file: a mesh, a PNG render and the parameters as JSON. A bad file gets a one-line
    error; the others still run (exit status 2 if any failed).
    """
    from ..predictors.voice_to_3d import VoiceTo3D
    from ..runs.placement import place_predictor
    from ..workflows.predict import predict_files

    output_folder(args.out)
    predictor = place_predictor(VoiceTo3D.load(args.checkpoint), args.device)
    if args.model:
        from ..face3d.loading import load_morphable_model

        predictor.check_model(load_morphable_model(args.model))
    report_outcomes(predict_files(predictor, args.voices, args.out, args.format, max_minutes=args.max_minutes),
                     args.out)


def _cmd_features(args: argparse.Namespace) -> None:
    """audio files -> CMP log-mel features (.npy), as the official preprocessing

    For each audio file: CMP's front end exactly as the official code (webrtcvad collector, 64-bin
    log-mel, per-utterance normalisation, tiled to 1,000 frames) -> OUT/<name>.npy, float32 (T >=
    1000, 64), the layout of the CMP / Wen et al. feature releases. Files that are not 16 kHz mono
    16-bit are converted first (docs/release_models.md). A bad file gets one line; the others go on.
    """
    from ..workflows.features import write_cmp_features

    report_outcomes(write_cmp_features(args.audio, args.out, args.max_minutes), args.out)


def _cmd_voice_reference(args: argparse.Namespace) -> None:
    """store in a predictor what its typical voices are like

    Fit the reference the in-distribution score compares voices with (docs/release_models.md) and
    store it in the predictor: from a corpus's training identities, or from recordings (one folder
    per speaker). For models that do not carry one, e.g. an imported CMP release.
    """
    from ..workflows.voice_reference import fit_voice_reference

    reference = fit_voice_reference(args.run, corpus=args.corpus, audio=args.audio, progress=not args.quiet,
                                    max_minutes=args.max_minutes)
    print(f"{args.run}: voice reference of {reference.source} ({len(reference.calibration)} calibration distances)")


def add_commands(sub) -> None:
    p = add_command(sub, "predict", _cmd_predict)
    p.add_argument("voices", nargs="+", metavar="VOICE", help="audio files (wav, flac, ogg, mp3, m4a)")
    p.add_argument("--checkpoint", required=True, help="a run folder or its predictor.pt")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--format", default="obj", choices=["obj", "ply", "glb"], help="mesh format (default obj)")
    p.add_argument("--model", help="refuse the checkpoint unless it was trained for this morphable model spec")
    _add_max_minutes(p)
    add_device_argument(p)

    p = add_command(sub, "features", _cmd_features)
    p.add_argument("audio", nargs="+", metavar="AUDIO", help="audio files (wav, flac, ogg, mp3, m4a)")
    p.add_argument("--out", required=True, help="output folder")
    _add_max_minutes(p)

    p = add_command(sub, "voice-reference", _cmd_voice_reference)
    p.add_argument("run", help="a run folder or its predictor.pt")
    p.add_argument("--corpus", help="fit on this corpus's training identities")
    p.add_argument("--audio", nargs="+", metavar="AUDIO", help="fit on these recordings")
    _add_max_minutes(p)
    p.add_argument("--quiet", action="store_true")


def _add_max_minutes(p: argparse.ArgumentParser) -> None:
    """``--max-minutes``: the longest recording a command decodes (read from its header first)."""
    p.add_argument("--max-minutes", type=cli_number(float, gt=0), default=PREDICT_MAX_MINUTES, dest="max_minutes",
                   help="refuse recordings longer than this, read from the file before decoding it (default: "
                        "%(default)s; memory grows by about 65 MB a minute)")
