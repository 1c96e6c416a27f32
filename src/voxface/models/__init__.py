"""Networks only, registered by name and saved as data (:mod:`voxface.models.registry`)."""

from . import biometric_gan2d, cmp_gan, image_to_3d, regressor, speaker_cnn, voice_encoders  # noqa: F401  (registration)
from .registry import available, create, load_network, save_network

__all__ = ["available", "create", "load_network", "save_network"]
