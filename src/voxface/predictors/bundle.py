"""One file format for every saved network and predictor, written and read by one pair of functions.

A file is ``{"format": "voxface-predictor", "version": 2, "kind": KIND, "networks": {name:
{arch, kwargs, state_dict} or None}, ...}`` plus plain values (the morphable model as ``.npz`` bytes,
settings, references, class names): everything loads with ``torch.load(weights_only=True)`` and every
network is rebuilt through the registry (:func:`voxface.models.registry.load_network`).

Kinds and their file in a run folder: :data:`FILES`. The predictors (voice to 3D, voice to image,
voice to image to 3D) hold several networks; the parts later methods build on (the pre-trained
voice encoder, the image-to-3D expert, the speaker CNN, a 2D generator) hold one, named
``network`` (:func:`read_network`).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..errors import VoxfaceError
from ..models.registry import load_network, save_network
from ..runs import atomic
from ..runs.checkpoints import load_tagged, reads_saved_file

FORMAT = "voxface-predictor"
VERSION = 2
FILES = {"voice-to-3d": "predictor.pt", "voice-to-image": "voice_to_image.pt", "voice-image-3d": "unsupervised.pt",
         "voice-encoder": "encoder.pt", "image-to-3d-expert": "expert.pt", "speaker-cnn": "speaker_cnn.pt",
         "generator-2d": "generator.pt"}
"""Kind -> its file name in a run folder."""
WHAT = {"voice-to-3d": "voice-to-3D predictor", "voice-to-image": "voice-to-image model",
        "voice-image-3d": "voice-to-image-to-3D predictor", "voice-encoder": "pre-trained voice encoder",
        "image-to-3d-expert": "image-to-3D expert", "speaker-cnn": "trained speaker CNN",
        "generator-2d": "trained 2D face generator"}
HINTS = {"voice-encoder": "run `voxface train speaker` first",
         "image-to-3d-expert": "train one with `voxface train expert` or import one with `voxface import cmp-release`",
         "speaker-cnn": "run `voxface train speaker-cnn` first",
         "generator-2d": "run `voxface train gan2d` first",
         "voice-to-3d": "train one with `voxface train supervised` or `voxface demo`, or import one with "
                        "`voxface import cmp-release`, and pass its run folder or predictor.pt",
         "voice-to-image": "train one with `voxface train gan2d` or import one with `voxface import wen-release`",
         "voice-image-3d": "train one with `voxface train unsupervised` or import one with "
                           "`voxface import cmp-release`"}


def write_bundle(path: str | Path, kind: str, networks: dict[str, nn.Module | None], **values) -> None:
    """Write a file of ``kind`` atomically: its networks (None for an absent part) and plain ``values``."""
    bundle = {"format": FORMAT, "version": VERSION, "kind": kind,
              "networks": {name: None if net is None else save_network(net) for name, net in networks.items()},
              **values}
    with atomic.atomic_path(path) as tmp:
        torch.save(bundle, tmp)


@reads_saved_file
def read_bundle(run_or_file: str | Path, kind: str) -> tuple[dict[str, nn.Module | None], dict]:
    """The networks (rebuilt, eval mode) and the other values of a file of ``kind``.

    Args:
        run_or_file: a run folder (its :data:`FILES` entry is read) or the file.
        kind: one of :data:`FILES`.

    Raises:
        VoxfaceError: naming the file, if it is missing, holds more than weights, is another kind of
            file, was written by an earlier voxface (retrain or re-import it), or is damaged.
    """
    bundle, path = load_tagged(run_or_file, FILES[kind], FORMAT, WHAT[kind], HINTS[kind])
    if bundle.get("version") != VERSION or bundle.get("kind") != kind:
        raise VoxfaceError(f"{path} is not a voxface {WHAT[kind]} of version {VERSION} (it holds a "
                           f"{bundle.get('kind', 'predictor')} of version {bundle.get('version')}); {HINTS[kind]}")
    networks = {name: None if saved is None else load_network(saved) for name, saved in bundle["networks"].items()}
    return networks, {k: v for k, v in bundle.items() if k not in ("format", "version", "kind", "networks")}


def read_network(run_or_file: str | Path, kind: str) -> nn.Module:
    """The one network (eval mode, no gradients) of a file of ``kind`` written as ``{"network": net}``."""
    return read_bundle(run_or_file, kind)[0]["network"]
