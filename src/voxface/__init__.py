"""voxface: what a voice says about a face."""

__version__ = "0.1.0"
