"""What ``diagnose``, ``lr-find`` and ``show-batch`` share: a recipe's setup and a folder.

Each tool takes a recipe name or a run folder, builds the recipe's :class:`~torchdojo.runs.Setup`
through the contract (``recipe.setup(cfg, ctx)``: the model as the run initializes it, the
training batches as the run feeds them, its loss and optimizer), and writes into the run tree:
``<out>/<recipe>/<tool>-<time>/`` for a recipe name, ``RUN_DIR/<tool>/`` for a run folder;
never into the current directory. Config and options are checked before the folder is made,
and a folder the tool made is removed again when building the setup fails.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import Tensor
from torch.optim import Optimizer

from torchdojo.recipes import get_recipe
from torchdojo.runs import ConfigError, Recipe, RunOptions, Setup, apply_overrides, parse_overrides
from torchdojo.runs.context import RunContext, require_setup
from torchdojo.runs.runner import read_run_config, resolve_config
from torchdojo.utils.seed import seed_everything


@dataclass
class ToolRun:
    """A recipe's setup, built for a tool, and the folder the tool writes into.

    Args:
        recipe: The recipe.
        config: Its config, checked, with the overrides applied.
        setup: What ``recipe.setup(config, ctx)`` returned.
        ctx: The context the setup was built with (``ctx.data_source``: the data it used).
        out_dir: The tool's folder (a temporary one when the caller writes elsewhere).
    """

    recipe: Recipe
    config: Any
    setup: Setup
    ctx: RunContext
    out_dir: Path


def is_run_folder(target: str) -> bool:
    """True when ``target`` names a folder rather than a recipe: it has a path separator
    (recipe names have none) or holds a ``config.yaml``."""
    if "/" in target or "\\" in target or target in {".", ".."}:
        return True
    return (Path(target) / "config.yaml").is_file()


@contextmanager
def tool_run(
    target: str,
    tool: str,
    *,
    smoke: bool = False,
    overrides: Sequence[str] = (),
    data_dir: str | None = None,
    out: str | Path = "runs",
    keep: bool = True,
) -> Iterator[ToolRun]:
    """Build ``target``'s setup for ``tool`` and yield it with the tool's folder.

    Args:
        target: A recipe name, or a run folder whose ``config.yaml`` names recipe and config.
        tool: The tool's name (``"lr-find"``), for messages and the folder name.
        smoke: Start from the recipe's smoke config (a run folder's own choice otherwise).
        overrides: ``key=value`` config overrides, as ``--set`` of ``torchdojo run``.
        data_dir: Data root (default: the run folder's, else ``$TORCHDOJO_DATA``).
        out: Root of the run tree for a recipe name (``run``'s ``--out``).
        keep: False: the caller writes elsewhere; the folder is temporary and removed after.

    Raises:
        ConfigError: Unknown recipe, a recipe without ``setup``, a bad config value or
            ``data_dir``, or a folder that is not a run folder; raised before any folder is made.
    """
    recipe, config, options, run_dir = _resolve(target, tool, smoke, overrides, data_dir)
    seed = options.seed if options.seed is not None else int(getattr(config, "seed", 0) or 0)
    if keep:
        folder = run_dir / tool if run_dir is not None else _new_folder(Path(out), recipe, tool)
    else:
        folder = Path(tempfile.mkdtemp(prefix=f"torchdojo-{tool}-"))
    made = _first_missing(folder)  # the outermost folder this call creates, if any
    folder.mkdir(parents=True, exist_ok=True)
    try:
        ctx = RunContext(recipe, options, folder)
        seed_everything(seed)  # as the run does: the same initial weights and first batches
        assert recipe.setup is not None  # require_setup checked it
        setup = recipe.setup(config, ctx)
        yield ToolRun(recipe, config, setup, ctx, folder)
    except BaseException:
        if made is not None:
            shutil.rmtree(made, ignore_errors=True)
        raise
    finally:
        if not keep:
            shutil.rmtree(folder, ignore_errors=True)


def _resolve(
    target: str, tool: str, smoke: bool, overrides: Sequence[str], data_dir: str | None
) -> tuple[Recipe, Any, RunOptions, Path | None]:
    """Recipe, checked config, options and (for a run folder) the folder, making nothing."""
    if not is_run_folder(target):
        recipe = get_recipe(target)  # an unknown name raises "did you mean ..."
        require_setup(recipe, tool)
        options = RunOptions(
            smoke=smoke, overrides=tuple(overrides), data_dir=data_dir, progress=False
        ).validated()
        return recipe, resolve_config(recipe, options), options, None
    run_dir = Path(target)
    saved = read_run_config(run_dir)  # "does not exist" / "has no config.yaml"
    recipe = get_recipe(str(saved["recipe"]))
    require_setup(recipe, tool)
    config = resolve_config(recipe, RunOptions(resume=str(run_dir)))
    config = apply_overrides(config, parse_overrides(overrides))
    saved_options = saved.get("options") or {}
    options = RunOptions(
        smoke=bool(saved_options.get("smoke", False)),
        overrides=tuple(overrides),
        data_dir=data_dir or saved_options.get("data_dir"),
        progress=False,
        seed=saved_options.get("seed"),
    ).validated()
    return recipe, config, options, run_dir


def _first_missing(folder: Path) -> Path | None:
    """The outermost of ``folder`` and its parents that does not exist yet (None: it exists)."""
    missing = None
    for path in (folder, *folder.parents):
        if path.exists():
            break
        missing = path
    return missing


def _new_folder(out: Path, recipe: Recipe, tool: str) -> Path:
    """``out/<recipe>/<tool>-<time>``, with ``-1``, ``-2`` ... when that exists already."""
    base = out / recipe.name / f"{tool}-{time.strftime('%Y%m%d-%H%M%S')}"
    folder, n = base, 1
    while folder.exists():
        folder, n = base.with_name(f"{base.name}-{n}"), n + 1
    return folder


def xy_batches(run: ToolRun, tool: str, *, count: int = 1) -> Iterator[tuple[Tensor, Tensor]]:
    """Up to ``count`` training batches of ``run`` as ``(x, y)`` tensors, as the run sees them.

    Raises:
        ConfigError: The recipe's batches are not ``(x, y)`` pairs of tensors (the tools need
            one input and one target per batch), or it yields none.
    """
    given = 0
    for batch in run.setup.loaders.train:
        if not (
            isinstance(batch, tuple | list)
            and len(batch) == 2
            and all(isinstance(t, Tensor) for t in batch)
        ):
            raise ConfigError(
                f"{tool} needs (x, y) batches of tensors; recipe {run.recipe.name!r} feeds "
                f"{type(batch).__name__} batches"
            )
        yield batch[0], batch[1]
        given += 1
        if given == count:
            return
    if given == 0:
        raise ConfigError(f"recipe {run.recipe.name!r} yields no training batches for {tool}")


def peak_learning_rates(
    optimizer: Optimizer, lr: float | None = None, *, scheduler: Any = None
) -> float:
    """Put a freshly built optimizer back to the LRs its schedule peaks at; returns the highest.

    A scheduler built in ``setup`` has already moved each group's ``lr`` to the schedule's
    start (one-cycle: ``max_lr / 25``; warm-up: 0 or a fraction). This sets each group to its
    peak: the one-cycle ``max_lr``, else the scheduler's ``base_lrs`` (torch's schedulers and
    :class:`~torchdojo.engine.schedules.TriangularSchedule`), else the ``initial_lr`` torch
    records, else ``lr``; and it puts back the momentum one-cycle cycles. With ``lr`` the
    groups are scaled together so the highest is ``lr`` (discriminative LRs keep their ratios).
    """
    groups = optimizer.param_groups
    base = list(getattr(scheduler, "base_lrs", None) or [])
    if len(base) != len(groups):
        base = [g.get("initial_lr", g["lr"]) for g in groups]
    peaks = [float(g.get("max_lr", b)) for g, b in zip(groups, base, strict=True)]
    scale = 1.0 if lr is None or max(peaks) <= 0 else lr / max(peaks)
    for group, peak in zip(groups, peaks, strict=True):
        group["lr"] = peak * scale
        if "base_momentum" in group:  # one-cycle moved betas/momentum; use the recipe's own
            for key in ("betas", "momentum"):
                if key in group and key in optimizer.defaults:
                    group[key] = optimizer.defaults[key]
    return max(peaks) * scale


__all__ = ["ToolRun", "is_run_folder", "peak_learning_rates", "tool_run", "xy_batches"]
