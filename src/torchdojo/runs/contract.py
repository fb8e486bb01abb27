"""The recipe contract: what every task module declares, and how its config is checked.

A recipe module (``recipes/<name>.py``) has a module docstring whose first line is the
description ``torchdojo list`` and the report print; a frozen ``Config`` dataclass; a
``setup(cfg, ctx) -> Setup`` that builds its data, model, loss, optimizer and schedule (what
``diagnose``, ``lr-find`` and ``show-batch`` use); a ``run(cfg, ctx)`` that trains and returns
the final metrics; and a ``RECIPE`` record. The name is the file name, ``_`` shown as ``-``.

Config values are checked before anything is created: types by the annotations, ranges by the
field's ``Annotated[..., Range(...)]`` or, for the shared vocabulary (``epochs``, ``lr``,
``batch_size``, ...; docs/glossary.md), by :data:`VOCABULARY`.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import nn
    from torch.optim import Optimizer

    from torchdojo.engine import Loaders
    from torchdojo.models import ModelSpec


@dataclass(frozen=True)
class Expected:
    """A metric floor of the full run, measured, with the data and the command that measured it."""

    floor: float
    data: str
    measured_by: str
    mode: str = "max"  # "max": the metric must be >= floor; "min": <= floor


@dataclass
class Setup:
    """What a recipe trains: its model, batches, loss, optimizer and schedule.

    ``setup(cfg, ctx)`` returns one; ``run`` trains it, and the tools (``diagnose``,
    ``lr-find``, ``show-batch``) use its pieces without training.

    Args:
        model: The model, initialized (seeded by the run before ``setup``).
        loaders: Training batches as the recipe feeds them (augmented, normalized) and
            validation batches.
        loss_fn: ``loss_fn(model(x), y)``.
        optimizer: The optimizer over ``model``'s parameters.
        scheduler: The LR schedule (stepped every optimizer step), or None.
        epochs: Passes over the training batches.
        classes: Class names in output order (classifiers), else empty.
        spec: How to rebuild the model for ``predict`` / ``export`` (None: not saved).
        mean: Per-channel mean the images were normalized with (to show them), or None.
        std: Per-channel std likewise.
        players: Several models trained together (a GAN's ``{"G": ..., "D": ...}``), else
            empty; ``model`` is then the one saved (the generator).
        optimizers: One optimizer per player, same keys; ``optimizer`` is ``model``'s.
    """

    model: nn.Module
    loaders: Loaders
    loss_fn: Callable[[Any, Any], Any]
    optimizer: Optimizer
    scheduler: Any = None
    epochs: int = 1
    classes: list[str] = field(default_factory=list)
    spec: ModelSpec | None = None
    mean: Sequence[float] | None = None
    std: Sequence[float] | None = None
    players: dict[str, nn.Module] = field(default_factory=dict)
    optimizers: dict[str, Optimizer] = field(default_factory=dict)


@dataclass(frozen=True)
class Recipe:
    """One task: its config, ``run(config, ctx)`` (trains, returns the final metrics), a smoke
    config that runs offline in seconds, measured floors, and ``setup`` for the tools.

    ``name`` and ``description`` are filled in from the module's file name and docstring by
    :func:`torchdojo.recipes.get_recipe`: one source for each. ``cpu_minutes`` is what the full
    run that measured ``expected`` cost: user + system CPU time over all threads (a run folder's
    ``env.json`` records it as ``cpu_time_s``), or None where it was not recorded.
    ``unmeasured`` says, for a recipe whose full run has not been measured yet (so it has no
    ``expected``), why not and the command that will measure it; ``list``, the report and the
    docs show it, so an unmeasured recipe never looks measured.
    """

    config: type[Any]
    run: Callable[[Any, Any], dict[str, float]]
    smoke: Any
    expected: dict[str, Expected] = field(default_factory=dict)
    setup: Callable[[Any, Any], Setup] | None = None
    lesson: str = ""
    cpu_minutes: float | None = None
    unmeasured: str = ""
    name: str = ""
    description: str = ""


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
    cpu_budget: float | None = None
    checkpoint_every: int | None = None
    progress: bool = True
    seed: int | None = None

    def _check_numbers(self) -> None:
        """Counts are whole numbers >= 1 and budgets positive seconds, else ConfigError."""
        positive_ints = {
            "--epochs": self.epochs,
            "--threads": self.threads,
            "--checkpoint-every": self.checkpoint_every,
        }
        for flag, value in positive_ints.items():
            if value is not None and value < 1:
                raise ConfigError(f"{flag} {value}: must be a whole number >= 1")
        budgets = {"--time-budget": self.time_budget, "--cpu-budget": self.cpu_budget}
        for flag, budget in budgets.items():
            if budget is not None and not (budget > 0):
                raise ConfigError(f"{flag} {budget:g}: must be > 0 seconds")

    def validated(self) -> RunOptions:
        """These options, checked; raises :class:`ConfigError` naming the option and the fix."""
        self._check_numbers()
        if self.precision not in {"32", "bf16", "16"}:
            raise ConfigError(f"--precision {self.precision!r}: use 32, bf16 or 16 (16: CUDA only)")
        if self.seed is not None and not 0 <= self.seed < 2**32:
            raise ConfigError(f"--seed {self.seed}: must be >= 0 and < 2^32")
        if self.data_dir is not None and not Path(self.data_dir).expanduser().is_dir():
            raise ConfigError(
                f"--data-dir {self.data_dir}: no such folder; pass an existing data root "
                "(or leave it out to use $TORCHDOJO_DATA, else ~/.cache/torchdojo)"
            )
        if self.device != "auto":
            from torchdojo.utils.device import choose_device

            try:
                choose_device(self.device)
            except RuntimeError:
                raise ConfigError(
                    f"--device {self.device!r} is not a device; use auto, cpu, cuda, cuda:N or mps"
                ) from None
            except ValueError as err:
                raise ConfigError(f"--device {self.device}: {err}") from None
        if self.precision == "16":
            from torchdojo.utils.device import choose_device

            if choose_device(self.device).type != "cuda":
                raise ConfigError(
                    "--precision 16 needs a CUDA GPU (fp16 has no fast path on a CPU); "
                    "use --precision bf16 or 32"
                )
        return self


class ConfigError(ValueError):
    """A bad ``--set`` or config value; the message says which key and what is allowed."""


@dataclass(frozen=True)
class Range:
    """The closed range a number (or each number of a tuple) must lie in; None: unbounded.

    ``lr: Annotated[float, Range(0, 10, low_open=True)]`` reads "0 < lr <= 10".
    """

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def check(self, key: str, value: Any) -> None:
        """Raise :class:`ConfigError` unless ``value`` (and each item of a tuple) is in range."""
        for item in value if isinstance(value, tuple) else (value,):
            if item is None or isinstance(item, str | bool):
                continue
            if math.isnan(item) or not self._inside(item):
                raise ConfigError(f"{key}={_show(value)}: must be {self.describe()}")

    def _inside(self, v: float) -> bool:
        low_ok = self.low is None or (v > self.low if self.low_open else v >= self.low)
        high_ok = self.high is None or (v < self.high if self.high_open else v <= self.high)
        return low_ok and high_ok

    def describe(self) -> str:
        """``">= 1 and <= 4096"``, ``"> 0"``, ...: what the range accepts, in words."""
        parts = []
        if self.low is not None:
            parts.append(f"{'>' if self.low_open else '>='} {_number(self.low)}")
        if self.high is not None:
            parts.append(f"{'<' if self.high_open else '<='} {_number(self.high)}")
        return " and ".join(parts) or "a number"


def _number(value: float) -> str:
    return f"{int(value)}" if float(value).is_integer() else f"{value:g}"


# The shared vocabulary (docs/glossary.md): the same name means the same thing, and accepts
# the same values, in every recipe. A field's own Annotated[..., Range(...)] takes precedence.
VOCABULARY: dict[str, Range] = {
    "epochs": Range(1, 100_000),
    "batch_size": Range(1, 1_000_000),
    "lr": Range(0, low_open=True),
    "muon_lr": Range(0, low_open=True),
    "weight_decay": Range(0),
    "momentum": Range(0, 1, high_open=True),
    "betas": Range(0, 1, high_open=True),
    "dropout": Range(0, 1, high_open=True),
    "label_smoothing": Range(0, 1, high_open=True),
    "width": Range(1, 4096),  # sizes are capped so a typo cannot ask for terabytes
    "widths": Range(1, 4096),
    "depth": Range(0, 1000),
    "seed": Range(0, 2**32 - 1),  # NumPy's seed range
    "threads": Range(1, 1024),
    "num_workers": Range(0, 64),
    "max_train_samples": Range(1),
    "max_test_samples": Range(1),
    "image_size": Range(8, 1024),
    "val_fraction": Range(0, 1, low_open=True, high_open=True),
    "max_bad_fraction": Range(0, 1),
    "samples": Range(2, 1_000_000),
    "features": Range(1, 1000),
    "noise": Range(0),
    "probe_samples": Range(2, 100_000),
    "init_std": Range(0, low_open=True),
    "warmup_fraction": Range(0, 1),
    "min_scale": Range(0, 1, low_open=True),
    "lr_mult": Range(1),
    "freeze_epochs": Range(0, 100_000),
    "budget_per_model": Range(0, low_open=True),
    "shift": Range(0, 64),
    "translate": Range(0, 64),
    "bias_scale": Range(0, low_open=True),
}


def field_range(config_cls: type[Any], key: str) -> Range | None:
    """The range field ``key`` of ``config_cls`` accepts (its annotation's, else the vocabulary's)."""
    hint = typing.get_type_hints(config_cls, include_extras=True).get(key)
    for extra in getattr(hint, "__metadata__", ()):
        if isinstance(extra, Range):
            return extra
    return VOCABULARY.get(key)


def describe_field(config_cls: type[Any], key: str) -> str:
    """``"int >= 1"``, ``"one of sgd, muon"``, ...: what ``--set key=`` accepts."""
    hint = typing.get_type_hints(config_cls)[key]
    rng = field_range(config_cls, key)
    text = _type_name(hint)
    return f"{text} {rng.describe()}" if rng is not None else text


def _type_name(annotation: Any) -> str:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Literal:
        return "one of " + ", ".join(map(str, args))
    if origin in (typing.Union, types.UnionType):
        names = [_type_name(a) for a in args if a is not type(None)]
        return " or ".join(names) + (" or none" if type(None) in args else "")
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return f"comma-separated {_type_name(args[0])}s"
        return f"{len(args)} comma-separated {_type_name(args[0])}s"
    return getattr(annotation, "__name__", str(annotation))


def validate_config(config: Any) -> Any:
    """Check every field of ``config`` against its range (and ``dataset`` against the dataset
    registry); returns ``config``."""
    for f in dataclasses.fields(config):
        rng = field_range(type(config), f.name)
        if rng is not None:
            rng.check(f.name, getattr(config, f.name))
    dataset = getattr(config, "dataset", None)
    # A recipe that reads its own data (text names or paths) sets ``DATASET_REGISTRY = False``
    # as a ClassVar on its Config and checks ``dataset`` itself.
    if isinstance(dataset, str) and getattr(config, "DATASET_REGISTRY", True):
        from torchdojo.data import list_datasets
        from torchdojo.utils.registry import unknown_name_message

        if dataset not in list_datasets():
            raise ConfigError(unknown_name_message("dataset", dataset, list_datasets()))
    return config


def config_help(config_cls: type[Any]) -> list[tuple[str, str, str]]:
    """``(key, accepted values, default)`` for every field: the ``--set`` keys of a recipe."""
    defaults = config_cls()
    return [
        (f.name, describe_field(config_cls, f.name), _show(getattr(defaults, f.name)))
        for f in dataclasses.fields(config_cls)
    ]


def _show(value: Any) -> str:
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    return "none" if value is None else str(value)


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
    """A copy of the frozen dataclass ``config`` with string overrides converted to field types
    and every field checked (:func:`validate_config`)."""
    fields = {f.name: f for f in dataclasses.fields(config)}
    hints = typing.get_type_hints(type(config))
    changes = {}
    for key, raw in overrides.items():
        if key not in fields:
            from torchdojo.utils.registry import unknown_name_message

            raise ConfigError(unknown_name_message("config key", key, list(fields)))
        changes[key] = raw if not isinstance(raw, str) else convert(raw, hints[key], key)
    return validate_config(dataclasses.replace(config, **changes))


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
        parts = [part.strip() for part in raw.split(",") if part.strip()]
        if not (len(args) == 2 and args[1] is Ellipsis) and len(parts) != len(args):
            raise ConfigError(f"{key}={raw!r} needs {len(args)} values separated by commas")
        if not parts:
            raise ConfigError(f"{key}={raw!r} needs at least one value")
        return tuple(convert(part, args[0], key) for part in parts)
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
            value = annotation(raw)
        except ValueError:
            kind = "a whole number" if annotation is int else "a number"
            raise ConfigError(f"{key}={raw!r} is not {kind}") from None
        if annotation is float and not math.isfinite(value):
            raise ConfigError(f"{key}={raw!r} is not a finite number")
        return value
    if annotation in (str, Path):
        return annotation(raw)
    raise ConfigError(f"{key} has type {annotation!r}, which --set cannot convert")
