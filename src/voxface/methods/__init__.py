"""One module per training method: its settings (``Config``), its data, its LightningModule and
``fit(config, run, progress) -> Fitted``.

``METHODS`` names what ``voxface train NAME`` runs without importing any of them (so that
``voxface --help`` needs no torch): method -> (module in this package, its fit function).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

METHODS: dict[str, tuple[str, str]] = {
    "speaker": ("speaker", "fit"),
    "supervised": ("supervised", "fit"),
    "expert": ("expert", "fit"),
    "unsupervised": ("unsupervised", "fit"),
    "speaker-cnn": ("speaker_cnn", "fit"),
    "speaker-cnn-fsdd": ("speaker_cnn", "fit_fsdd"),
    "gan2d": ("gan2d", "fit"),
}


@dataclass
class Fitted:
    """What every method's ``fit`` returns: its run folder, what it trained (a predictor, or the
    network later methods build on), and the metrics it recorded."""

    run: Path
    predictor: Any
    metrics: dict = field(default_factory=dict)


def method(name: str):
    """The module and fit function of ``voxface train NAME`` (imported on demand)."""
    import importlib

    module_name, function = METHODS[name]
    module = importlib.import_module(f"{__name__}.{module_name}")
    return module, getattr(module, function)
