"""The web page of ``voxface serve``: a voice in, a predicted 3D face out (see :mod:`voxface.app.web`)."""
