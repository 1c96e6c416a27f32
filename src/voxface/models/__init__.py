"""Networks only, registered by name (``voxface.models.registry.create``)."""

from . import regressor, voice_encoders  # noqa: F401  (registration side effects)
from .registry import available, create

__all__ = ["available", "create"]
