"""One file format for every trained predictor, read by one function.

A predictor file is ``{"format": "voxface-predictor", "version": 2, "kind": KIND, "networks": {name:
{arch, kwargs, state_dict} or None}, ...}`` plus plain values (the morphable model as ``.npz`` bytes,
settings, references): everything loads with ``torch.load(weights_only=True)`` and every network is
rebuilt through the registry (:func:`voxface.models.registry.load_network`).

Kinds and their file in a run folder: :data:`FILES`.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..errors import VoxfaceError
from ..models.registry import load_network, save_network
from ..runs import atomic
from ..runs.checkpoints import load_tagged

FORMAT = "voxface-predictor"
VERSION = 2
FILES = {"voice-to-3d": "predictor.pt", "voice-to-image": "voice_to_image.pt", "voice-image-3d": "unsupervised.pt"}
"""Predictor kind -> its file name in a run folder."""
WHAT = {"voice-to-3d": "voice-to-3D predictor", "voice-to-image": "voice-to-image model",
        "voice-image-3d": "voice-to-image-to-3D predictor"}
HINTS = {"voice-to-3d": "train one with `voxface train supervised` or `voxface demo`, or import one with "
                        "`voxface import cmp-release`, and pass its run folder or predictor.pt",
         "voice-to-image": "train one with `voxface train gan2d` or import one with `voxface import wen-release`",
         "voice-image-3d": "train one with `voxface train unsupervised` or import one with "
                           "`voxface import cmp-release`"}


def write_bundle(path: str | Path, kind: str, networks: dict[str, nn.Module | None], **values) -> None:
    """Write a predictor of ``kind`` atomically: its networks (None for an absent part) and plain ``values``."""
    bundle = {"format": FORMAT, "version": VERSION, "kind": kind,
              "networks": {name: None if net is None else save_network(net) for name, net in networks.items()},
              **values}
    with atomic.atomic_path(path) as tmp:
        torch.save(bundle, tmp)


def read_bundle(run_or_file: str | Path, kind: str) -> tuple[dict[str, nn.Module | None], dict]:
    """The networks (rebuilt, eval mode) and the other values of a predictor file of ``kind``.

    Args:
        run_or_file: a run folder (its :data:`FILES` entry is read) or the file.
        kind: one of :data:`FILES`.

    Raises:
        VoxfaceError: naming the file, if it is missing, holds more than weights, is another kind of
            file, or was written by an earlier voxface (retrain or re-import it).
    """
    bundle, path = load_tagged(run_or_file, FILES[kind], FORMAT, WHAT[kind], HINTS[kind])
    if bundle.get("version") != VERSION or bundle.get("kind") != kind:
        raise VoxfaceError(f"{path} is not a voxface {WHAT[kind]} of version {VERSION} (it holds a "
                           f"{bundle.get('kind', 'predictor')} of version {bundle.get('version')}); {HINTS[kind]}")
    networks = {name: None if saved is None else load_network(saved) for name, saved in bundle["networks"].items()}
    return networks, {k: v for k, v in bundle.items() if k not in ("format", "version", "kind", "networks")}
