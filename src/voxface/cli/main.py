"""``voxface <command>``: the parser made of every area's commands, and the one error policy.

Each area module adds its commands (``add_commands``) and imports what a command needs only when it
runs, so ``voxface --help`` loads no torch.
"""

from __future__ import annotations

import argparse
import sys

from .. import __version__
from ..errors import VoxfaceError
from . import corpus, evaluate, pipelines, predict, realdata, serve, train

AREAS = (corpus, train, evaluate, predict, pipelines, realdata, serve)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="voxface", description="What a voice says about a face.")
    parser.add_argument("--version", action="version", version=f"voxface {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for area in AREAS:
        area.add_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; a :class:`VoxfaceError` is one line on stderr and exit status 2."""
    from ..runs.logs import setup_logging

    args = build_parser().parse_args(argv)
    setup_logging(args.verbose)
    try:
        args.func(args)
    except VoxfaceError as e:
        print(f"voxface {args.command}: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # a write outside the atomic ones (a log, a library's own file) into a full folder
        from ..runs.atomic import WRITE_ERRNOS, write_failure

        if e.errno not in WRITE_ERRNOS:
            raise
        print(f"voxface {args.command}: error: {write_failure(e)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"voxface {args.command}: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
    return 0
