"""Diagnose command: `torchdojo diagnose RECIPE|RUN_DIR`."""

from __future__ import annotations

import math
from typing import Annotated

import typer
from rich.table import Table

from torchdojo.cli.app import app, console


@app.command()
def diagnose(
    target: Annotated[
        str,
        typer.Argument(
            metavar="RECIPE|RUN_DIR",
            help="A recipe name or a run folder (runs/<recipe>/<timestamp>).",
        ),
    ],
    smoke: Annotated[
        bool, typer.Option(help="Use the recipe's tiny offline smoke config.")
    ] = False,
    overrides: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override a config field: key=value (repeatable)."),
    ] = None,
    steps: Annotated[int, typer.Option(help="Steps of overfitting one batch.")] = 50,
    required_drop: Annotated[
        float, typer.Option(help="Share by which the one-batch loss must fall (0.9: to 1/10).")
    ] = 0.9,
    lr: Annotated[
        float | None,
        typer.Option(help="Peak LR of the recipe's optimizer (default: the recipe's)."),
    ] = None,
    data_dir: Annotated[
        str | None,
        typer.Option(help="Data root (default: $TORCHDOJO_DATA, else ~/.cache/torchdojo)."),
    ] = None,
    out: Annotated[
        str,
        typer.Option(help="Root folder for run folders: writes OUT/<recipe>/diagnose-<time>/."),
    ] = "runs",
) -> None:
    """Check a recipe's setup before training: per-layer activations and gradients, dead ReLUs,
    and whether it can overfit one batch. Writes into the run tree (RUN_DIR/diagnose/ for a run
    folder). Exits with 1 when it finds a problem."""
    from torchdojo.services.diagnose import diagnose_recipe

    report = diagnose_recipe(
        target,
        out=out,
        steps=steps,
        required_drop=required_drop,
        smoke=smoke,
        overrides=tuple(overrides or ()),
        data_dir=data_dir,
        lr=lr,
    )
    found = report.diagnosis
    console.print(f"[bold]{report.recipe}[/bold]", highlight=False)  # its data: said by setup
    console.print(_layer_table(found))
    first, last = found.losses[0], found.losses[-1]
    console.print(
        f"overfitting one batch of {report.batch_size} at lr={report.lr:.3g}"
        f"{', ' + report.note if report.note else ''}: loss {first:.4g} -> {last:.4g} in "
        f"{len(found.losses)} steps ({found.loss_drop:.1%} drop)"
    )
    console.print(f"wrote {report.out_dir}: {', '.join(f.name for f in report.files)}")
    if found.healthy:
        console.print("[green]no problems found[/green]")
        return
    for problem in found.problems:
        console.print(f"[red]problem:[/red] {problem}", highlight=False)
    raise typer.Exit(1)


def _layer_table(found: object) -> Table:
    table = Table(
        "layer",
        "kind",
        "act mean",
        "act std",
        "dead",
        "grad norm",
        "grad norm after",
        box=None,
        header_style="bold",
        title="per-layer statistics on one batch (init)",
    )
    after = {s.name: s for s in found.layers_after}  # type: ignore[attr-defined]
    for s in found.layers:  # type: ignore[attr-defined]
        later = after.get(s.name)
        table.add_row(
            s.name,
            s.kind,
            f"{s.act_mean:.3g}",
            f"{s.act_std:.3g}",
            "" if s.dead_fraction is None else f"{s.dead_fraction:.0%}",
            _num(s.grad_norm),
            _num(later.grad_norm if later else None),
        )
    return table


def _num(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:.2e}" if math.isfinite(value) else str(value)
