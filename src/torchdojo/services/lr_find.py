"""The learning-rate range test on a recipe's own model, batches, loss and optimizer.

Used by ``torchdojo lr-find RECIPE|RUN_DIR``. The recipe's ``setup`` builds what its run
trains (see :mod:`torchdojo.services.tools`); :func:`torchdojo.engine.lr_finder.find_lr`
sweeps the LR of the recipe's optimizer over its training batches. The plot and the numbers
go to ``<out>/<recipe>/lr-find-<time>/`` (or ``RUN_DIR/lr-find/``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from torch import nn
from torch.optim import Optimizer

from torchdojo.engine.lr_finder import LRFinderResult, find_lr
from torchdojo.services.tools import peak_learning_rates, tool_run, xy_batches
from torchdojo.utils.io import atomic_write_json

TOOL = "lr-find"


@dataclass
class LRFindReport:
    """What the sweep found and where it is.

    Args:
        recipe: The recipe's name.
        data_source: The data the setup used.
        optimizer: The optimizer's class name.
        result: The range test's LRs, losses and suggestion.
        plot: The PNG written.
        out_dir: The tool's folder (None when only ``output`` was written).
    """

    recipe: str
    data_source: str
    optimizer: str
    result: LRFinderResult
    plot: Path
    out_dir: Path | None


def lr_find_recipe(
    target: str,
    *,
    smoke: bool = False,
    overrides: Sequence[str] = (),
    data_dir: str | None = None,
    out: str | Path = "runs",
    output: str | Path | None = None,
    start_lr: float = 1e-6,
    end_lr: float = 1.0,
    steps: int = 100,
) -> LRFindReport:
    """Run the LR range test on ``target``'s setup; write the plot and ``lr_find.json``.

    Args:
        target: A recipe name or a run folder.
        smoke: Start from the recipe's smoke config.
        overrides: ``key=value`` config overrides.
        data_dir: Data root.
        out: Root of the run tree (``run``'s ``--out``) for a recipe name.
        output: Write only the plot, to this file, instead of the tool's folder.
        start_lr: First LR of the sweep.
        end_lr: Last LR.
        steps: Batches in the sweep (the training batches are cycled when fewer).
    """
    if not 0 < start_lr < end_lr:
        raise ValueError(
            f"--start-lr {start_lr:g} / --end-lr {end_lr:g}: need 0 < start-lr < end-lr"
        )
    if steps < 2:
        raise ValueError(f"--steps {steps}: the sweep needs at least 2 steps")
    keep = output is None
    with tool_run(
        target, TOOL, smoke=smoke, overrides=overrides, data_dir=data_dir, out=out, keep=keep
    ) as run:
        next(xy_batches(run, TOOL))  # (x, y) batches, or one clear line
        optimizer = run.setup.optimizer
        peak_learning_rates(
            optimizer, scheduler=run.setup.scheduler
        )  # undo the scheduler's start; the sweep sets the LR

        def recipe_optimizer(params: Iterable[nn.Parameter]) -> Optimizer:
            return optimizer  # fresh and over these very parameters: keep its param groups

        result = find_lr(
            run.setup.model,
            run.setup.loaders.train,
            run.setup.loss_fn,
            recipe_optimizer,
            start_lr=start_lr,
            end_lr=end_lr,
            steps=steps,
        )
        from torchdojo.viz import save_figure
        from torchdojo.viz.lr_finder import lr_finder_figure

        figure = lr_finder_figure(
            result.lrs,
            result.losses,
            suggestion=result.suggestion,
            raw_losses=result.raw_losses,
            title=f"LR range test: {run.recipe.name} ({type(optimizer).__name__})",
        )
        plot = save_figure(figure, Path(output) if output else run.out_dir / "lr_find.png")
        if keep:
            doc = {"recipe": run.recipe.name, "optimizer": type(optimizer).__name__}
            atomic_write_json(run.out_dir / "lr_find.json", {**doc, **asdict(result)})
        return LRFindReport(
            run.recipe.name,
            run.ctx.data_source,
            type(optimizer).__name__,
            result,
            plot,
            run.out_dir if keep else None,
        )


__all__ = ["LRFindReport", "lr_find_recipe"]
