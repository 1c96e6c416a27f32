"""Experiment configuration: typed, validated settings from YAML files and ``--set key=value``.

Every ``*Config`` is a dataclass deriving from :class:`Settings`; its fields carry their type
annotation and, declared next to them with :func:`setting`, their range or choices. Building one
(:func:`build` from YAML / ``--set`` / flags, or calling the class directly) coerces each value to
its annotated type (``"2e-4"`` -> 0.0002 for a float: YAML 1.1 reads ``2e-4`` as text), checks it,
and answers a misspelt key with the nearest known one. All of this happens before a command
writes anything, so a refused setting leaves no run or corpus folder behind.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import math
import types
import typing
from pathlib import Path
from typing import Any, Callable, TypeVar

import yaml

from ..errors import VoxfaceError
from .devices import PRECISIONS, device_problem

T = TypeVar("T")

RESUMABLE = "resumable"
"""Metadata flag of settings that say how a run executes, not what it computes (device): a run may
be resumed with another value."""


def shortest_first(span: tuple[float, float]) -> str | None:
    """A :func:`setting` rule for a (shortest, longest) range."""
    return None if span[0] <= span[1] else "must be (shortest, longest)"


def setting(default: Any, *, ge: float | None = None, gt: float | None = None, le: float | None = None,
            lt: float | None = None, choices: tuple | None = None, rule: Callable[[Any], str | None] | None = None,
            resumable: bool = False) -> Any:
    """A dataclass field with its checks beside it.

    Args:
        default: the default value (immutable: numbers, text, tuples, None).
        ge, gt, le, lt: bounds of a number (of each item of a tuple).
        choices: the allowed values.
        rule: ``rule(value)`` -> None when fine, else what is wrong ("must be (shortest, longest)").
        resumable: see :data:`RESUMABLE`.
    """
    checks = {"ge": ge, "gt": gt, "le": le, "lt": lt, "choices": choices, "rule": rule}
    return dataclasses.field(default=default, metadata={**{k: v for k, v in checks.items() if v is not None},
                                                        RESUMABLE: resumable})


def count(default: int, minimum: int = 1) -> Any:
    """A whole number of things, at least ``minimum``."""
    return setting(default, ge=minimum)


def positive(default: float | None) -> Any:
    """A number above zero (a learning rate, a size)."""
    return setting(default, gt=0)


def weight(default: float | None) -> Any:
    """A loss weight or magnitude: zero or more."""
    return setting(default, ge=0)


def random_seed(default: int = 0) -> Any:
    """A random seed: numpy accepts 0 or more."""
    return setting(default, ge=0)


class Settings:
    """Base of every ``*Config`` dataclass: values are coerced and checked when it is made."""

    def __post_init__(self) -> None:
        hints = _hints(type(self))
        for f in dataclasses.fields(self):
            value = coerce(type(self).__name__, f.name, getattr(self, f.name), hints[f.name])
            _check(type(self).__name__, f.name, value, f.metadata)
            object.__setattr__(self, f.name, value)


@dataclasses.dataclass
class TrainingSettings(Settings):
    """Settings every training method has: where it computes (``device``) and in which ``precision``
    (see :mod:`voxface.runs.devices`). Both are :data:`RESUMABLE`: a run started on the CPU may go on on a GPU."""

    device: str = setting("auto", rule=device_problem, resumable=True)
    precision: str = setting("auto", choices=PRECISIONS, resumable=True)


def check_batches(batch_size: int, available: int, what: str) -> None:
    """Refuse a ``batch_size`` larger than the ``available`` training items (``what`` they are), which
    would train on no full batch at all.

    Raises:
        VoxfaceError: saying both numbers and the two settings that fix it.
    """
    if batch_size > available:
        raise VoxfaceError(f"batch_size {batch_size} is larger than the {available} training {what}: no full batch; "
                           f"pass --set batch_size={available} or fewer, or more training {what}")


def load_yaml(path: str | Path) -> dict[str, Any]:
    """The mapping in a YAML file; VoxfaceError naming the file if it is missing or not a mapping."""
    from .reading import read_yaml

    p = Path(path)
    data = read_yaml(p, "config file") or {}
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
        try:
            node[leaf] = yaml.safe_load(value)
        except yaml.YAMLError:
            node[leaf] = value
    return out


def build(cls: type[T], *layers: dict[str, Any]) -> T:
    """Instantiate dataclass ``cls`` from merged layers (later ones win; None values are unset).

    A run folder's ``config.yaml`` is a valid layer: its ``kind`` entry (which command made the run)
    is not a setting and is skipped, so ``--config RUN/config.yaml`` repeats a run's settings.

    Raises:
        VoxfaceError: for an unknown key (naming the nearest known one), a value that is not of the
            setting's type, or one outside its range or choices.
    """
    merged: dict[str, Any] = {}
    for layer in layers:
        merged.update({k: v for k, v in layer.items() if v is not None and k != "kind"})
    names = [f.name for f in dataclasses.fields(cls)]
    for key in merged:
        if key not in names:
            near = difflib.get_close_matches(str(key), names, n=1, cutoff=0.6)
            guess = f"did you mean '{near[0]}'? " if near else ""
            raise VoxfaceError(f"unknown {cls.__name__} setting '{key}'; {guess}(known: {', '.join(sorted(names))})")
    return cls(**merged)


def coerce(owner: str, name: str, value: Any, annotation: Any) -> Any:
    """``value`` as the annotated type: int, float, bool, str, ``X | None`` or ``tuple[X, ...]``.

    Raises:
        VoxfaceError: naming ``owner``'s setting ``name`` and the value, if it cannot be one.
    """
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return coerce(owner, name, value, inner[0]) if len(inner) == 1 else value
    if origin is tuple:
        return _coerce_tuple(owner, name, value, args)
    converter = _CONVERTERS.get(annotation)
    if converter is None:
        return value
    try:
        return converter(value)
    except (TypeError, ValueError, OverflowError):
        raise VoxfaceError(f"{owner} setting {name}={value!r} is not {_TYPE_WORDS[annotation]}; "
                           f"e.g. --set {name}={_example(annotation)}") from None


def _coerce_tuple(owner: str, name: str, value: Any, args: tuple) -> tuple:
    items = tuple(args[:-1]) if len(args) == 2 and args[1] is Ellipsis else args
    if isinstance(value, str):
        value = [v for v in value.replace("(", "").replace(")", "").replace("[", "").replace("]", "").split(",")]
    if not isinstance(value, (list, tuple)) or (Ellipsis not in args and len(value) != len(items)):
        raise VoxfaceError(f"{owner} setting {name}={value!r} must be a list of {len(items)} values, "
                           f"e.g. --set {name}=[{','.join(_example(a) for a in items)}]")
    kinds = items * len(value) if Ellipsis in args else items
    return tuple(coerce(owner, name, v, a) for v, a in zip(value, kinds))


def _to_int(value: Any) -> int:
    if isinstance(value, bool):
        raise TypeError
    if isinstance(value, str):
        value = float(value.strip()) if any(c in value for c in ".eE") else int(value.strip())
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError
        return int(value)
    if not isinstance(value, int):
        raise TypeError
    return value


def _to_float(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise TypeError
    number = float(value)
    if math.isnan(number):
        raise ValueError
    return number


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    words = {"true": True, "yes": True, "on": True, "1": True, "false": False, "no": False, "off": False, "0": False}
    if isinstance(value, (str, int)) and str(value).strip().lower() in words:
        return words[str(value).strip().lower()]
    raise ValueError


def _to_str(value: Any) -> str:
    if isinstance(value, (dict, list, tuple)):
        raise TypeError
    return str(value)


_CONVERTERS: dict[Any, Callable[[Any], Any]] = {int: _to_int, float: _to_float, bool: _to_bool, str: _to_str}
_TYPE_WORDS = {int: "a whole number", float: "a number", bool: "true or false", str: "text"}


def _example(annotation: Any) -> str:
    return {int: "64", float: "0.0002", bool: "true", str: "NAME"}.get(annotation, "VALUE")


def _check(owner: str, name: str, value: Any, meta: typing.Mapping) -> None:
    """Raise VoxfaceError if ``value`` breaks the bounds, choices or rule in ``meta``."""
    problem = _problem(value, meta)
    if problem:
        raise VoxfaceError(f"{owner} setting {name}={value!r} {problem}; fix it in the config file or with "
                           f"--set {name}=...")


def _problem(value: Any, meta: typing.Mapping) -> str | None:
    """What is wrong with ``value`` under the bounds, choices or rule in ``meta``; None when fine."""
    if value is None:
        return None
    if "choices" in meta and value not in meta["choices"]:
        return f"must be one of {', '.join(map(str, meta['choices']))}"
    numbers = value if isinstance(value, tuple) else (value,)
    for op, word, test in (("ge", ">=", lambda v, b: v >= b), ("gt", ">", lambda v, b: v > b),
                           ("le", "<=", lambda v, b: v <= b), ("lt", "<", lambda v, b: v < b)):
        if op in meta and not all(test(v, meta[op]) for v in numbers if isinstance(v, (int, float))):
            return f"must be {word} {meta[op]:g}"
    return meta["rule"](value) if "rule" in meta else None


def check_number(what: str, value: Any, kind: type = float, **bounds: float) -> Any:
    """``value`` as ``kind`` within ``bounds`` (ge, gt, le, lt), for a library argument that is not a
    setting; VoxfaceError naming ``what`` ("port", "--shard-mb") otherwise."""
    try:
        number = _CONVERTERS[kind](value)
    except (TypeError, ValueError, OverflowError):
        raise VoxfaceError(f"{what} {value!r} is not {_TYPE_WORDS[kind]}") from None
    problem = _problem(number, bounds)
    if problem:
        raise VoxfaceError(f"{what} {value!r} {problem}")
    return number


def cli_number(kind: type = float, **bounds: float) -> Callable[[str], Any]:
    """An argparse ``type`` reading a ``kind`` within ``bounds``; argparse then names the option and
    exits with status 2 (``argument --port: 70000 must be <= 65535``)."""
    import argparse

    def parse(text: str) -> Any:
        try:
            return check_number("value", text, kind, **bounds)
        except VoxfaceError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


@functools.lru_cache(maxsize=None)
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def run_identity(config: Settings) -> dict[str, Any]:
    """The settings that define what a run computes (all but the :data:`RESUMABLE` ones), as plain values."""
    return {f.name: getattr(config, f.name) for f in dataclasses.fields(config) if not f.metadata.get(RESUMABLE)}
