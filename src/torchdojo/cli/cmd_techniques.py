"""Training-technique commands: `torchdojo lr-find RECIPE`, `torchdojo show-batch RECIPE`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from torchdojo.cli.app import app, console

Target = Annotated[
    str,
    typer.Argument(
        metavar="RECIPE|RUN_DIR",
        help="A recipe name (see `torchdojo list`) or a run folder (runs/<recipe>/<time>).",
    ),
]
Smoke = Annotated[bool, typer.Option(help="Use the recipe's tiny offline data.")]
Overrides = Annotated[
    list[str] | None,
    typer.Option("--set", help="Override a config field: key=value (repeatable)."),
]
DataDir = Annotated[str | None, typer.Option(help="Data root (default: $TORCHDOJO_DATA).")]


def _out(tool: str) -> Any:
    return typer.Option(help=f"Root folder for run folders: writes OUT/<recipe>/{tool}-<time>/.")


@app.command("lr-find")
def lr_find(
    target: Target,
    smoke: Smoke = False,
    overrides: Overrides = None,
    steps: Annotated[int, typer.Option(help="Batches in the sweep.")] = 100,
    start_lr: Annotated[float, typer.Option(help="First learning rate.")] = 1e-6,
    end_lr: Annotated[float, typer.Option(help="Last learning rate.")] = 1.0,
    data_dir: DataDir = None,
    out: Annotated[str, _out("lr-find")] = "runs",
    output: Annotated[
        Path | None, typer.Option(help="Write only the plot, to this PNG, instead of OUT.")
    ] = None,
) -> None:
    """Sweep the learning rate of the recipe's own optimizer exponentially over its training
    batches, plot the loss and suggest a learning rate (RUN_DIR/lr-find/ for a run folder)."""
    from torchdojo.services.lr_find import lr_find_recipe

    report = lr_find_recipe(
        target,
        smoke=smoke,
        overrides=tuple(overrides or ()),
        data_dir=data_dir,
        out=out,
        output=output,
        start_lr=start_lr,
        end_lr=end_lr,
        steps=steps,
    )
    result = report.result
    stop = "the loss diverged" if result.diverged else "all steps done"
    console.print(
        f"{report.recipe} ({report.optimizer}): steepest descent at lr={result.suggestion:.3g} "
        f"({len(result.lrs)} steps, {stop}); plot: {report.plot}",
        highlight=False,
    )


@app.command("show-batch")
def show_batch(
    target: Target,
    smoke: Smoke = False,
    overrides: Overrides = None,
    count: Annotated[int, typer.Option(help="Images in the grid.")] = 32,
    mix: Annotated[str, typer.Option(help="none, mixup or cutmix.")] = "none",
    data_dir: DataDir = None,
    out: Annotated[str, _out("show-batch")] = "runs",
    output: Annotated[
        Path | None, typer.Option(help="Write the grid to this PNG instead of OUT.")
    ] = None,
) -> None:
    """Save a grid of training images as the recipe feeds them, optionally mixed
    (RUN_DIR/show-batch/ for a run folder)."""
    from torchdojo.services.show_batch import show_batch_recipe

    report = show_batch_recipe(
        target,
        smoke=smoke,
        overrides=tuple(overrides or ()),
        data_dir=data_dir,
        out=out,
        output=output,
        count=count,
        mix=mix,
    )
    console.print(f"batch grid of {report.recipe}: {report.path}", highlight=False)
