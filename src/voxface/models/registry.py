"""Networks are data: built by name from keyword arguments, saved as ``{arch, kwargs, state_dict}``.

As timm's ``create_model``: a class registered under a name records the arguments it was built with,
so any registered network can be written and rebuilt without code that knows its class::

    @register("cmp_voice")
    class CMPVoiceEncoder(nn.Module): ...

    encoder = create("cmp_voice", in_bins=64, embed_dim=64)
    saved = save_network(encoder)          # {"arch": "cmp_voice", "kwargs": {...}, "state_dict": {...}}
    again = load_network(saved)            # the same network, weights loaded strictly, eval mode

Saved dicts hold only plain values and tensors, so they load with ``torch.load(weights_only=True)``.
Beside networks the registry holds other named parts by ``kind`` (``"distiller"``), so a new one is
one class and one line.
"""

from __future__ import annotations

import functools
import inspect
from typing import Callable

from torch import nn

from ..errors import VoxfaceError

NETWORK = "network"
_REGISTRY: dict[str, dict[str, Callable]] = {}


def register(name: str, kind: str = NETWORK) -> Callable:
    """Class decorator adding a constructor under ``name`` (of ``kind``); a network class also
    records, on each instance, ``arch`` (the name) and ``arch_kwargs`` (its constructor arguments)."""
    def add(cls):
        table = _REGISTRY.setdefault(kind, {})
        if name in table:
            raise ValueError(f"{kind} {name!r} registered twice")
        table[name] = cls
        if kind == NETWORK:
            _record_arguments(cls, name)
        return cls
    return add


def create(name: str, kind: str = NETWORK, **kwargs):
    """Build the ``kind`` registered as ``name`` with ``kwargs``; VoxfaceError for an unknown name."""
    table = _REGISTRY.get(kind, {})
    if name not in table:
        raise VoxfaceError(f"unknown {kind} {name!r}; available: {sorted(table)}")
    return table[name](**kwargs)


def available(kind: str = NETWORK) -> list[str]:
    """The registered names of ``kind``, sorted."""
    return sorted(_REGISTRY.get(kind, {}))


def save_network(network: nn.Module) -> dict:
    """``{"arch", "kwargs", "state_dict"}`` of a registered network (its weights on the CPU)."""
    network = getattr(network, "inner", network)  # a network placed on a device (runs.devices.OnDevice)
    if not hasattr(network, "arch"):
        raise TypeError(f"{type(network).__name__} is not a registered network")
    return {"arch": network.arch, "kwargs": dict(network.arch_kwargs),
            "state_dict": {k: v.detach().cpu() for k, v in network.state_dict().items()}}


def load_network(saved: dict) -> nn.Module:
    """Rebuild a network saved by :func:`save_network`: strict weights, eval mode, no gradients.

    Raises:
        VoxfaceError: unknown architecture; KeyError/RuntimeError for a damaged dict (loaders turn
            them into one error naming the file, ``runs.checkpoints.reads_saved_file``).
    """
    network = create(saved["arch"], **saved["kwargs"])
    network.load_state_dict(saved["state_dict"], strict=True)
    return network.eval().requires_grad_(False)


def _record_arguments(cls, name: str) -> None:
    original = cls.__init__
    signature = inspect.signature(original)

    @functools.wraps(original)
    def init(self, *args, **kwargs):
        bound = signature.bind(self, *args, **kwargs)
        bound.apply_defaults()
        original(self, *args, **kwargs)
        self.arch = name
        self.arch_kwargs = {k: v for k, v in list(bound.arguments.items())[1:]}

    cls.__init__ = init
