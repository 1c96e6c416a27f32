"""Run ``voxface train`` commands under torchrun, recording every file this process writes.

Usage: ``python -m torch.distributed.run --nproc_per_node=2 tests/ddp_writer_probe.py COMMANDS.json LOG_DIR``.
``COMMANDS.json`` maps a name to the arguments of ``voxface`` (``["train", "speaker", ...]``); each runs in
turn in the same processes (one process group). ``LOG_DIR/rank{R}.txt`` receives a line ``open PATH`` or
``replace PATH`` for each file the rank opens for writing or renames into place, and
``LOG_DIR/{name}.rank{R}`` the exit status of each command.
"""

from __future__ import annotations

import builtins
import json
import os
import sys

commands, log_dir = json.loads(open(sys.argv[1]).read()), sys.argv[2]
rank = os.environ.get("RANK", "0")
record = open(os.path.join(log_dir, f"rank{rank}.txt"), "a")
_replace, _open = os.replace, builtins.open


def _note(event: str, path) -> None:
    record.write(f"{event} {os.path.abspath(os.fspath(path))}\n")
    record.flush()


def replacing(src, dst, *args, **kwargs):
    _note("replace", dst)
    return _replace(src, dst, *args, **kwargs)


def opening(file, mode="r", *args, **kwargs):
    if isinstance(file, (str, os.PathLike)) and any(c in mode for c in "wax+"):
        _note("open", file)
    return _open(file, mode, *args, **kwargs)


os.replace, builtins.open = replacing, opening

from voxface.cli import main  # noqa: E402

for name, argv in commands.items():
    try:
        status = main(argv)
    except BaseException as error:  # noqa: BLE001 - recorded for the test, then the next method runs
        status = f"{type(error).__name__}: {error}"
    _open(os.path.join(log_dir, f"{name}.rank{rank}"), "w").write(str(status))
