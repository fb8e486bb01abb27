"""Training-technique commands: `torchdojo lr-find RECIPE`, `torchdojo show-batch RECIPE`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from torchdojo.cli.app import app, console, fail


@app.command("lr-find")
def lr_find(
    recipe: Annotated[str, typer.Argument(help="mnist-mlp, mnist-cnn or mnist1d-cnn.")],
    smoke: Annotated[bool, typer.Option(help="Use the recipe's tiny offline data.")] = False,
    steps: Annotated[int, typer.Option(help="Batches in the sweep.")] = 100,
    start_lr: Annotated[float, typer.Option(help="First learning rate.")] = 1e-6,
    end_lr: Annotated[float, typer.Option(help="Last learning rate.")] = 1.0,
    data_dir: Annotated[
        str | None, typer.Option(help="Data root (default: $TORCHDOJO_DATA).")
    ] = None,
    output: Annotated[
        Path | None, typer.Option(help="PNG to write (default: lr_find_<recipe>.png).")
    ] = None,
) -> None:
    """Sweep the learning rate exponentially, plot the loss and suggest a learning rate."""
    from torchdojo.recipes import ConfigError
    from torchdojo.recipes._lr_find import lr_find_recipe
    from torchdojo.viz import save_figure

    try:
        result, figure = lr_find_recipe(
            recipe, smoke=smoke, data_dir=data_dir, start_lr=start_lr, end_lr=end_lr, steps=steps
        )
    except (ValueError, ConfigError, FileNotFoundError) as err:
        raise fail(str(err)) from None
    path = save_figure(figure, output or Path(f"lr_find_{recipe}.png"))
    stop = "the loss diverged" if result.diverged else "all steps done"
    console.print(
        f"steepest descent at lr={result.suggestion:.3g} ({len(result.lrs)} steps, {stop}); "
        f"plot: {path}"
    )


@app.command("show-batch")
def show_batch(
    recipe: Annotated[str, typer.Argument(help="A recipe with an image dataset.")],
    smoke: Annotated[bool, typer.Option(help="Use the recipe's tiny offline data.")] = False,
    count: Annotated[int, typer.Option(help="Images in the grid.")] = 32,
    mix: Annotated[str, typer.Option(help="none, mixup or cutmix.")] = "none",
    data_dir: Annotated[
        str | None, typer.Option(help="Data root (default: $TORCHDOJO_DATA).")
    ] = None,
    output: Annotated[
        Path | None, typer.Option(help="PNG to write (default: batch_<recipe>.png).")
    ] = None,
) -> None:
    """Save a grid of training images as the recipe feeds them (optionally mixed)."""
    from torchdojo.recipes import ConfigError
    from torchdojo.recipes._lr_find import show_batch_recipe
    from torchdojo.viz import save_figure

    if count < 1:
        raise fail(f"--count must be >= 1, got {count}")
    try:
        figure = show_batch_recipe(recipe, smoke=smoke, data_dir=data_dir, count=count, mix=mix)
    except (ValueError, ConfigError, FileNotFoundError) as err:
        raise fail(str(err)) from None
    path = save_figure(figure, output or Path(f"batch_{recipe}.png"))
    console.print(f"batch grid: {path}")
