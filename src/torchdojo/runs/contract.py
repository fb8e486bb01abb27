"""What a recipe is: a typed config, a ``run`` function, a smoke config and measured floors."""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Expected:
    """A metric floor of the full run, measured, with the data and the command that measured it."""

    floor: float
    data: str
    measured_by: str
    mode: str = "max"  # "max": the metric must be >= floor; "min": <= floor


@dataclass(frozen=True)
class Recipe:
    """One task. ``run(config, ctx)`` trains and returns the final metrics."""

    name: str
    description: str
    config: type[Any]
    run: Callable[[Any, Any], dict[str, float]]
    smoke: Any
    expected: dict[str, Expected] = field(default_factory=dict)
    lesson: str = ""


@dataclass(frozen=True)
class RunOptions:
    """How to run a recipe (CLI options that are not part of the recipe's config)."""

    smoke: bool = False
    epochs: int | None = None
    overrides: Sequence[str] = ()
    device: str = "auto"
    precision: str = "32"
    compile: bool = False
    data_dir: str | None = None
    out: str = "runs"
    resume: str | None = None
    threads: int | None = None
    time_budget: float | None = None
    checkpoint_every: int | None = None
    progress: bool = True
    seed: int | None = None


class ConfigError(ValueError):
    """A bad ``--set`` or config value; the message says which key and what is allowed."""


def parse_overrides(items: Sequence[str]) -> dict[str, str]:
    """``["lr=0.1", "epochs=3"]`` -> ``{"lr": "0.1", "epochs": "3"}``."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set expects key=value, got {item!r}")
        out[key.strip()] = value.strip()
    return out


def apply_overrides(config: Any, overrides: dict[str, Any]) -> Any:
    """A copy of the frozen dataclass ``config`` with string overrides converted to field types."""
    fields = {f.name: f for f in dataclasses.fields(config)}
    hints = typing.get_type_hints(type(config))
    changes = {}
    for key, raw in overrides.items():
        if key not in fields:
            raise ConfigError(f"unknown config key {key!r}; valid keys: {', '.join(fields)}")
        changes[key] = raw if not isinstance(raw, str) else convert(raw, hints[key], key)
    return dataclasses.replace(config, **changes)


def convert(raw: str, annotation: Any, key: str) -> Any:
    """Convert ``raw`` to ``annotation`` (int, float, bool, str, Literal, Optional, tuple)."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if raw.lower() in {"none", "null"} and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return convert(raw, arg, key)
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError("; ".join(errors))
    if origin is typing.Literal:
        for choice in args:
            if str(choice) == raw:
                return choice
        raise ConfigError(f"{key}={raw!r} is not one of {', '.join(map(str, args))}")
    if origin is tuple:
        return tuple(convert(part, args[0], key) for part in raw.split(",") if part)
    return _convert_scalar(raw, annotation, key)


def _convert_scalar(raw: str, annotation: Any, key: str) -> Any:
    if annotation is bool:
        if raw.lower() in {"1", "true", "yes", "on"}:
            return True
        if raw.lower() in {"0", "false", "no", "off"}:
            return False
        raise ConfigError(f"{key}={raw!r} is not a boolean (use true or false)")
    if annotation in (int, float):
        try:
            return annotation(raw)
        except ValueError:
            raise ConfigError(f"{key}={raw!r} is not {annotation.__name__}") from None
    if annotation in (str, Path):
        return annotation(raw)
    raise ConfigError(f"{key} has type {annotation!r}, which --set cannot convert")
