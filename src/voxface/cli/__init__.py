"""``voxface <command>``: one thin module per area (corpus, train, evaluate, predict, pipelines,
realdata, serve); each command parses its arguments and calls the library, nothing more."""

from .main import build_parser, main

__all__ = ["build_parser", "main"]
