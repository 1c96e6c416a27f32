"""3D morphable models: the model type, its loaders, reconstruction, mesh I/O and rendering."""

from .morphable_model import MEASUREMENTS, RATIOS, REGIONS, MorphableModel

__all__ = ["MEASUREMENTS", "RATIOS", "REGIONS", "MorphableModel"]
