"""A small registry so that networks are built from configs by name (as timm's ``create_model``).

    @register("cmp_voice")
    class CMPVoiceEncoder(nn.Module): ...

    encoder = create("cmp_voice", in_bins=64, embed_dim=64)
"""

from __future__ import annotations

from typing import Callable

from torch import nn

from ..errors import VoxfaceError

_REGISTRY: dict[str, Callable[..., nn.Module]] = {}


def register(name: str) -> Callable:
    """Class decorator adding a network constructor under ``name``."""
    def add(cls):
        if name in _REGISTRY:
            raise ValueError(f"network {name!r} registered twice")
        _REGISTRY[name] = cls
        return cls
    return add


def create(name: str, **kwargs) -> nn.Module:
    """Build the network registered as ``name`` with ``kwargs``; VoxfaceError for an unknown name."""
    if name not in _REGISTRY:
        raise VoxfaceError(f"unknown network {name!r}; available: {sorted(_REGISTRY)}")
    return _REGISTRY[name](**kwargs)


def available() -> list[str]:
    return sorted(_REGISTRY)
