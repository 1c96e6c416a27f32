"""The networks of the CMP, Wen et al. and SynergyNet releases, rebuilt as voxface's own.

Each function takes a state dict as the release saved it (``torch.save(net.state_dict())``, read
with ``weights_only=True``) and returns the voxface network that computes the same function, in
eval mode. Names are translated, shapes checked, and ``load_state_dict(strict=True)`` refuses any
missing or extra tensor, so a file of another network is an error naming the file.

- ``VoiceEmbedNet(64, [256, 384, 576, 864], 64)`` (CMP, Wen et al.): ``model.<i>`` is
  :class:`~voxface.models.voice_encoders.CMPVoiceEncoder`'s ``net.<i>``.
- ``Generator(64, [1024, 512, 256, 128, 64], 3)``: ``model.<i>`` is
  :class:`~voxface.models.cmp_gan.FaceGenerator`'s ``net.<i>`` (base 64, no normalisation, not clamped).
- ``Generator1D_directMLP`` (CMP supervised): three Dropout+Linear heads (scale 1, shape 40,
  expression 10) become one :class:`~voxface.models.regressor.ParameterRegressor` head with a
  scale output, de-whitened as the release does (scale ``p·SCALE_STD + SCALE_MEAN``; shape and
  expression stay whitened: they *are* the standardised coefficients of the release's BFM model).
- SynergyNet's MobileNetV2 (student ``image3D_*.pth``; expert in ``2D-to-3D-pretrained.tar``
  under ``module.IGM.backbone.``): torchvision-layout ``features.<i>`` become
  :class:`~voxface.models.image_to_3d.ImageTo3D`'s stem / blocks / last convolution; the heads
  ``classifier_ori`` (12), ``classifier_shape`` (40), ``classifier_exp`` (10) become its one head
  (``classifier_texture`` is not used; ``features_first``/``features_second`` are the same tensors
  as ``features``). Pose is de-whitened with ``param_std[:12]``/``param_mean[:12]``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch

from ..errors import VoxfaceError
from ..models.cmp_gan import FaceGenerator
from ..models.image_to_3d import EARLY_BLOCK, POSE_DIM, ImageTo3D
from ..models.regressor import ParameterRegressor
from ..models.voice_encoders import CMPVoiceEncoder

SCALE_MEAN = 0.0005920184194110334
SCALE_STD = 1.538597731841497e-05
"""De-whitening of the CMP supervised regressor's scale output (its ``forward_test``)."""
N_SHAPE, N_EXPRESSION = 40, 10
MOBILENET_INPUT = 120
HEADS = ("classifier_ori", "classifier_shape", "classifier_exp")


def voice_encoder(state: Mapping[str, torch.Tensor], source: Path) -> CMPVoiceEncoder:
    """``VoiceEmbedNet`` state dict -> (B, 64, T) log-mel -> (B, D) L2-normalised embedding."""
    weight = _tensor(state, "model.0.weight", source, "a CMP / Wen et al. voice encoder")
    last = _tensor(state, "model.12.weight", source, "a CMP / Wen et al. voice encoder")
    encoder = CMPVoiceEncoder(in_bins=weight.shape[1], embed_dim=last.shape[0])
    _load(encoder, _renamed(state, "model.", "net."), source, "a CMP / Wen et al. voice encoder")
    return encoder


def face_generator(state: Mapping[str, torch.Tensor], source: Path) -> FaceGenerator:
    """``Generator`` state dict -> (B, 64) embedding -> (B, 3, 64, 64) raw image (not clamped)."""
    first = _tensor(state, "model.0.weight", source, "a CMP / Wen et al. face generator")
    generator = FaceGenerator(embed_dim=first.shape[0], base=first.shape[1] // 16, norm="none", clamp=False)
    _load(generator, _renamed(state, "model.", "net."), source, "a CMP / Wen et al. face generator")
    return generator


def supervised_regressor(state: Mapping[str, torch.Tensor], source: Path) -> ParameterRegressor:
    """``Generator1D_directMLP`` state dict -> (B, 64) -> (B, 51): scale, 40 shape and 10 expression
    coefficients (scale de-whitened, the others the release's whitened = standardised values)."""
    what = "the CMP supervised regressor (Generator1D_directMLP)"
    names = ("classifier_scale", "classifier_shape", "classifier_exp")
    weights = [_tensor(state, f"{n}.1.weight", source, what) for n in names]
    biases = [_tensor(state, f"{n}.1.bias", source, what) for n in names]
    if [w.shape[0] for w in weights] != [1, N_SHAPE, N_EXPRESSION]:
        raise VoxfaceError(f"{source} does not hold {what}: head sizes {[w.shape[0] for w in weights]}, "
                           f"expected [1, {N_SHAPE}, {N_EXPRESSION}]")
    _refuse_extra(state, {f"{n}.1.{p}" for n in names for p in ("weight", "bias")}, source, what)
    regressor = ParameterRegressor(weights[0].shape[1], N_SHAPE, N_EXPRESSION, dropout=0.2, scale=True)
    n_out = 1 + N_SHAPE + N_EXPRESSION
    mean, std = torch.zeros(n_out), torch.ones(n_out)
    mean[0], std[0] = SCALE_MEAN, SCALE_STD
    _load(regressor, {"head.weight": torch.cat(weights), "head.bias": torch.cat(biases),
                      "target_mean": mean, "target_std": std}, source, what)
    return regressor


def synergynet(state: Mapping[str, torch.Tensor], prefix: str, param_mean: torch.Tensor, param_std: torch.Tensor,
               source: Path) -> ImageTo3D:
    """SynergyNet's MobileNetV2 (keys under ``prefix``) -> (B, 3, H, W) -> pose (12, de-whitened),
    shape (40) and expression (10) standardised coefficients; bilinear resize to 120×120 with
    ``align_corners=True``, as the release's inference does."""
    what = "a SynergyNet image-to-3D network (MobileNetV2)"
    own = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    if not own:
        raise VoxfaceError(f"{source} does not hold {what}: no tensors under {prefix!r}")
    network = ImageTo3D(N_SHAPE, N_EXPRESSION, width=1.0, last_channel=1280, dropout=0.2,
                        input_size=MOBILENET_INPUT, align_corners=True)
    mapped = {}
    for key, value in own.items():
        name = _mobilenet_name(key)
        if name is not None:
            mapped[name] = value
        elif not key.startswith(("features_first.", "features_second.", "classifier_")):
            raise VoxfaceError(f"{source} does not hold {what}: unexpected tensor {prefix}{key}")
    mapped["head.weight"] = torch.cat([_tensor(own, f"{h}.1.weight", source, what) for h in HEADS])
    mapped["head.bias"] = torch.cat([_tensor(own, f"{h}.1.bias", source, what) for h in HEADS])
    n_out = POSE_DIM + N_SHAPE + N_EXPRESSION
    mean, std = torch.zeros(n_out), torch.ones(n_out)
    mean[:POSE_DIM], std[:POSE_DIM] = param_mean[:POSE_DIM], param_std[:POSE_DIM]
    mapped.update(target_mean=mean, target_std=std)
    _load(network, mapped, source, what)
    return network


def _mobilenet_name(key: str) -> str | None:
    """torchvision-layout ``features.<i>.…`` -> the same tensor's name in :class:`ImageTo3D` (None: a head).

    features.0 is the stem (conv, BN), features.1…17 the inverted-residual blocks, features.18 the
    last 1×1 conv + BN. In a block, ``conv.<j>`` is a Conv-BN-ReLU6 triple for j below the block's
    number of such triples (1 in the first block, which has no expansion; 2 elsewhere), else a
    plain conv or BN; ImageTo3D keeps each block as one flat Sequential ``body``.
    """
    parts = key.split(".")
    if parts[0] != "features":
        return None
    index, rest = int(parts[1]), parts[2:]
    if index == 0:
        return "stem." + ".".join(rest)
    if index == 18:
        return f"late_blocks.{len(_late_block_range()) + int(rest[0])}." + ".".join(rest[1:])
    block = index - 1
    triples = 1 if block == 0 else 2
    j = int(rest[1])
    within = 3 * min(j, triples) + max(j - triples, 0) + (int(rest[2]) if j < triples else 0)
    param = rest[3:] if j < triples else rest[2:]
    container = f"early_blocks.{block}" if block < EARLY_BLOCK else f"late_blocks.{block - EARLY_BLOCK}"
    return f"{container}.body.{within}." + ".".join(param)


def _late_block_range() -> range:
    """Indices (in ``late_blocks``) of the inverted-residual blocks after the early ones (17 blocks in all)."""
    return range(17 - EARLY_BLOCK)


def _renamed(state: Mapping[str, torch.Tensor], old: str, new: str) -> dict[str, torch.Tensor]:
    return {(new + k[len(old):] if k.startswith(old) else k): v for k, v in state.items()}


def _tensor(state: Mapping[str, torch.Tensor], key: str, source: Path, what: str) -> torch.Tensor:
    value = state.get(key)
    if not isinstance(value, torch.Tensor):
        raise VoxfaceError(f"{source} does not hold {what}: tensor {key!r} is missing")
    return value


def _refuse_extra(state: Mapping[str, torch.Tensor], known: set[str], source: Path, what: str) -> None:
    extra = sorted(set(state) - known)
    if extra:
        raise VoxfaceError(f"{source} does not hold {what}: unexpected tensors {extra[:5]}")


def _load(network: torch.nn.Module, state: dict[str, torch.Tensor], source: Path, what: str) -> None:
    """``load_state_dict(strict=True)`` with shape checks; VoxfaceError naming ``source`` on a mismatch."""
    own = network.state_dict()
    missing, extra = sorted(set(own) - set(state)), sorted(set(state) - set(own))
    wrong = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or extra or wrong:
        details = "; ".join(f"{label} {names[:3]}" for label, names in
                            (("missing", missing), ("unexpected", extra), ("wrong shape", wrong)) if names)
        raise VoxfaceError(f"{source} does not hold {what} ({details}); is it the right file of the release?")
    network.load_state_dict(state, strict=True)
    network.eval().requires_grad_(False)
