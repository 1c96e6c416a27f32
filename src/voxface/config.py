"""Experiment configuration: YAML files merged with ``--set key=value`` overrides into dataclasses."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, TypeVar

import yaml

from .errors import VoxfaceError

T = TypeVar("T")


def load_yaml(path: str | Path) -> dict[str, Any]:
    """The mapping in a YAML file; VoxfaceError naming the file if it is missing or not a mapping."""
    p = Path(path)
    if not p.is_file():
        raise VoxfaceError(f"config file not found: {p}")
    try:
        data = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as e:
        raise VoxfaceError(f"config file {p} is not valid YAML: {e}") from e
    if not isinstance(data, dict):
        raise VoxfaceError(f"config file {p} must hold a mapping of settings, not {type(data).__name__}")
    return data


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``["a=1", "b.c=x"]`` -> ``{"a": 1, "b": {"c": "x"}}`` (values parsed as YAML scalars)."""
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise VoxfaceError(f"--set expects key=value, got {item!r}")
        key, value = item.split("=", 1)
        node = out
        *parents, leaf = key.strip().split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = yaml.safe_load(value)
    return out


def build(cls: type[T], *layers: dict[str, Any]) -> T:
    """Instantiate dataclass ``cls`` from merged layers (later ones win); unknown keys are an error.

    A run folder's ``config.yaml`` is a valid layer: its ``kind`` entry (which command made the run)
    is not a setting and is skipped, so ``--config RUN/config.yaml`` repeats a run's settings.
    """
    merged: dict[str, Any] = {}
    for layer in layers:
        merged.update({k: v for k, v in layer.items() if v is not None and k != "kind"})
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(merged) - names)
    if unknown:
        raise VoxfaceError(f"unknown {cls.__name__} setting(s) {unknown}; known: {sorted(names)}")
    for f in dataclasses.fields(cls):
        if f.name in merged and isinstance(f.default, tuple):
            merged[f.name] = tuple(merged[f.name])
    return cls(**merged)
