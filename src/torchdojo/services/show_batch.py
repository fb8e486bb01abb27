"""A grid of training images exactly as a recipe feeds them (augmented, then shown un-normalized).

Used by ``torchdojo show-batch RECIPE|RUN_DIR``. The batches come from the recipe's ``setup``
(see :mod:`torchdojo.services.tools`), optionally mixed with MixUp or CutMix; the grid is
un-normalized with the setup's ``mean`` / ``std`` and goes to
``<out>/<recipe>/show-batch-<time>/batch.png`` (or ``RUN_DIR/show-batch/``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from torchdojo.engine.mixing import BatchMixer
from torchdojo.runs import ConfigError
from torchdojo.services.tools import ToolRun, tool_run, xy_batches

TOOL = "show-batch"
MIXES = ("none", "mixup", "cutmix")


@dataclass
class ShowBatchReport:
    """The grid written and what it shows.

    Args:
        recipe: The recipe's name.
        data_source: The data the setup used.
        shape: The shape of the images shown, (B, C, H, W).
        path: The PNG written.
    """

    recipe: str
    data_source: str
    shape: tuple[int, ...]
    path: Path


def show_batch_recipe(
    target: str,
    *,
    smoke: bool = False,
    overrides: Sequence[str] = (),
    data_dir: str | None = None,
    out: str | Path = "runs",
    output: str | Path | None = None,
    count: int = 32,
    mix: str = "none",
) -> ShowBatchReport:
    """Save a grid of ``count`` training images of ``target`` as its run sees them.

    Args:
        target: A recipe name or a run folder.
        smoke: Start from the recipe's smoke config.
        overrides: ``key=value`` config overrides.
        data_dir: Data root.
        out: Root of the run tree (``run``'s ``--out``) for a recipe name.
        output: Write the grid to this file instead of the tool's folder.
        count: Images in the grid.
        mix: ``"none"``, ``"mixup"`` or ``"cutmix"``; titles then show the soft labels.
    """
    if mix not in MIXES:
        raise ValueError(f"--mix {mix!r}: use none, mixup or cutmix")
    if count < 1:
        raise ValueError(f"--count {count}: must be >= 1")
    keep = output is None
    with tool_run(
        target, TOOL, smoke=smoke, overrides=overrides, data_dir=data_dir, out=out, keep=keep
    ) as run:
        x, y = _first_images(run, count)
        classes = run.setup.classes or [str(i) for i in range(int(y.max()) + 1)]
        targets = torch.nn.functional.one_hot(y, len(classes)).float()
        if mix != "none":
            mixer = BatchMixer(
                len(classes),
                mixup_alpha=1.0 if mix == "mixup" else 0.0,
                cutmix_alpha=1.0 if mix == "cutmix" else 0.0,
            )
            x, targets = mixer(x, y)
        from torchdojo.viz import image_grid, save_figure

        figure = image_grid(
            x.float(),
            titles=[soft_label(t, classes) for t in targets],
            mean=run.setup.mean,
            std=run.setup.std,
        )
        path = save_figure(figure, Path(output) if output else run.out_dir / "batch.png")
        return ShowBatchReport(run.recipe.name, run.ctx.data_source, tuple(x.shape), path)


def _first_images(run: ToolRun, count: int) -> tuple[Tensor, Tensor]:
    """The first ``count`` training images (B, C, H, W) and class indices (B,)."""
    xs: list[Tensor] = []
    ys: list[Tensor] = []
    for x, y in xy_batches(run, TOOL, count=count):
        if x.dim() != 4:
            raise ConfigError(
                f"show-batch shows image batches (B, C, H, W); recipe {run.recipe.name!r} "
                f"feeds inputs of shape {tuple(x.shape)}, not images"
            )
        if y.dim() != 1 or y.is_floating_point():
            raise ConfigError(
                f"show-batch needs class indices as targets; recipe {run.recipe.name!r} feeds "
                f"targets of shape {tuple(y.shape)} ({y.dtype})"
            )
        xs.append(x)
        ys.append(y)
        if sum(len(b) for b in ys) >= count:
            break
    return torch.cat(xs)[:count].cpu(), torch.cat(ys)[:count].cpu()


def soft_label(target: Tensor, classes: Sequence[str]) -> str:
    """``"3"`` for a one-hot target, ``"3 0.70/5 0.30"`` for a mixed one."""
    top = target.topk(min(2, len(target)))
    parts = [(classes[int(i)], float(v)) for v, i in zip(top.values, top.indices, strict=True)]
    parts = [(c, v) for c, v in parts if v > 1e-3]
    if len(parts) == 1:
        return parts[0][0]
    return "/".join(f"{c} {v:.2f}" for c, v in parts)


__all__ = ["ShowBatchReport", "show_batch_recipe", "soft_label"]
