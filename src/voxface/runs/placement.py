"""Running a loaded predictor's networks on a device while the code around them stays on the CPU."""

from __future__ import annotations

import torch

from .devices import resolve_device


def place_network(network: torch.nn.Module, spec: str = "auto") -> torch.nn.Module:
    """``network`` computing on the device of ``spec`` behind CPU tensors (an :class:`OnDevice`), or
    ``network`` itself on the CPU.

    Raises:
        VoxfaceError: as :func:`resolve_device`.
    """
    device = resolve_device(spec)
    if device.type == "cpu" or isinstance(network, OnDevice):
        return network
    return OnDevice(network, device)


def place_predictor(predictor, spec: str = "auto"):
    """Move a loaded predictor's networks (its ``torch.nn.Module`` attributes) to the device of
    ``spec``; callers keep handing it CPU tensors and get CPU tensors back (see :class:`OnDevice`).
    On the CPU nothing changes. Returns ``predictor``.

    Raises:
        VoxfaceError: as :func:`resolve_device`.
    """
    resolve_device(spec)  # refused before anything moves
    for name, value in list(vars(predictor).items()):
        if isinstance(value, torch.nn.Module):
            setattr(predictor, name, place_network(value, spec))
    return predictor


def _moved(value, device):
    """Tensors in ``value`` (nested in tuples, lists, dicts) moved to ``device``."""
    if isinstance(value, torch.Tensor):
        return value.to(device)
    if isinstance(value, (list, tuple)):
        return type(value)(_moved(v, device) for v in value)
    if isinstance(value, dict):
        return {k: _moved(v, device) for k, v in value.items()}
    return value


class OnDevice(torch.nn.Module):
    """A network computing on ``device`` for code written for the CPU.

    Calling it, or any method of the wrapped network (``embed``, ``generate``), moves tensor
    arguments to ``device`` and tensor results back to the CPU; other attributes (``embed_dim``) and
    ``state_dict`` are the wrapped network's, so saving writes the same file.
    """

    def __init__(self, module, device):
        super().__init__()
        self.inner = module.to(device)
        self.target = device

    def forward(self, *args, **kwargs):
        return self._through(self.inner)(*args, **kwargs)

    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)
        except AttributeError:
            pass
        value = getattr(super().__getattr__("inner"), name)
        if not callable(value) or not hasattr(value, "__self__"):
            return value
        return self._through(value)

    def _through(self, function):
        """``function`` taking its tensor arguments on the device and giving its tensor results on the CPU."""

        def on_device(*args, **kwargs):
            return _moved(function(*_moved(args, self.target), **_moved(kwargs, self.target)), "cpu")

        return on_device

    def state_dict(self, *args, **kwargs):
        return self.inner.state_dict(*args, **kwargs)
