"""The ``torchdojo`` CLI. Each command is a thin, typed function over one library call."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(
    help="PyTorch course tasks as tested, runnable recipes.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console()
err = Console(stderr=True)


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print one red line on stderr and return the Exit to raise."""
    err.print(f"[bold red]error:[/bold red] {message}", highlight=False)
    return typer.Exit(code)


@app.command("list")
def list_cmd() -> None:
    """List every recipe with its one-line description."""
    from torchdojo.recipes import describe, list_recipes

    table = Table("recipe", "what it does", box=None, header_style="bold")
    for name in list_recipes():
        table.add_row(name, describe(name))
    console.print(table)


@app.command()
def run(
    recipe: Annotated[str, typer.Argument(help="Recipe name, see `torchdojo list`.")],
    smoke: Annotated[bool, typer.Option(help="Tiny offline data, seconds to run.")] = False,
    epochs: Annotated[int | None, typer.Option(help="Override the recipe's epochs.")] = None,
    overrides: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override a config field: key=value (repeatable)."),
    ] = None,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda, cuda:1, mps.")] = "auto",
    precision: Annotated[str, typer.Option(help="32, bf16 or 16 (16: CUDA only).")] = "32",
    compile: Annotated[bool, typer.Option(help="torch.compile the model.")] = False,
    data_dir: Annotated[
        str | None,
        typer.Option(help="Data root (default: $TORCHDOJO_DATA, else ~/.cache/torchdojo)."),
    ] = None,
    out: Annotated[str, typer.Option(help="Root folder for run folders.")] = "runs",
    resume: Annotated[str | None, typer.Option(help="Resume the run in this folder.")] = None,
    threads: Annotated[int | None, typer.Option(help="CPU threads (default: auto).")] = None,
    time_budget: Annotated[
        float | None, typer.Option(help="Stop training cleanly after this many seconds.")
    ] = None,
    checkpoint_every: Annotated[
        int | None, typer.Option(help="Also checkpoint every N optimizer steps.")
    ] = None,
    progress: Annotated[bool, typer.Option(help="Show the progress bar.")] = True,
    seed: Annotated[int | None, typer.Option(help="Override the trainer seed.")] = None,
) -> None:
    """Train one recipe; writes a run folder with metrics, plots, checkpoints and report.html."""
    from torchdojo.recipes import RunOptions

    if precision not in {"32", "bf16", "16"}:
        raise fail(f"--precision must be 32, bf16 or 16, not {precision!r}")
    options = RunOptions(
        smoke=smoke,
        epochs=epochs,
        overrides=tuple(overrides or ()),
        device=device,
        precision=precision,
        compile=compile,
        data_dir=data_dir,
        out=out,
        resume=resume,
        threads=threads,
        time_budget=time_budget,
        checkpoint_every=checkpoint_every,
        progress=progress,
        seed=seed,
    )
    _run(recipe, options)


def _run(recipe: str, options: object) -> None:
    from torchdojo.engine import NonFiniteLossError, TrainingInterrupted
    from torchdojo.recipes import ConfigError, run_recipe

    try:
        result = run_recipe(recipe, options)  # type: ignore[arg-type]
    except (ConfigError, FileNotFoundError) as e:
        raise fail(str(e)) from None
    except TrainingInterrupted as e:
        err.print(
            f"[yellow]interrupted[/yellow]; checkpoint {e.checkpoint}. Resume with: "
            f"torchdojo resume {e.checkpoint.parent.parent if e.checkpoint else 'RUN_DIR'}"
        )
        raise typer.Exit(130) from None
    except NonFiniteLossError as e:
        raise fail(str(e), code=3) from None
    from torchdojo.engine import distributed as dist

    if dist.is_main_process():
        _print_result(result)


def _print_result(result: object) -> None:
    table = Table("metric", "value", "expected", box=None, header_style="bold")
    for key, value in result.metrics.items():  # type: ignore[attr-defined]
        table.add_row(key, f"{value:.4f}", result.checks.get(key, ""))  # type: ignore[attr-defined]
    console.print(table)
    console.print(f"run folder: {result.run_dir}  (report: {result.run_dir}/report.html)")  # type: ignore[attr-defined]


@app.command()
def resume(
    run_dir: Annotated[Path, typer.Argument(help="A run folder: runs/<recipe>/<timestamp>.")],
    progress: Annotated[bool, typer.Option(help="Show the progress bar.")] = True,
) -> None:
    """Resume an interrupted run from its newest readable checkpoint."""
    import yaml

    from torchdojo.recipes import RunOptions

    config = run_dir / "config.yaml"
    if not config.is_file():
        raise fail(f"{run_dir} has no config.yaml; pass a run folder (runs/<recipe>/<timestamp>)")
    saved = yaml.safe_load(config.read_text(encoding="utf-8"))
    opts = dict(saved.get("options", {}))
    opts.update(resume=str(run_dir), progress=progress, overrides=tuple(opts.get("overrides", ())))
    _run(saved["recipe"], RunOptions(**opts))


@app.command()
def show(run_dir: Annotated[Path, typer.Argument(help="A run folder.")]) -> None:
    """Print a run's summary: config, final metrics vs expected, where the report is."""
    summary_file = run_dir / "summary.json"
    if not summary_file.is_file():
        raise fail(
            f"{run_dir} has no summary.json (not a finished run folder?); "
            f"resume it with `torchdojo resume {run_dir}`"
        )
    summary = json.loads(summary_file.read_text(encoding="utf-8"))
    console.print(
        f"[bold]{summary['recipe']}[/bold]  {run_dir}"
        + ("  [yellow](smoke run)[/yellow]" if summary.get("smoke") else "")
    )
    console.print(f"data: {summary.get('data', '')}")
    table = Table("metric", "value", "check", box=None, header_style="bold")
    for key, value in summary["metrics"].items():
        table.add_row(key, f"{value:.4f}", summary["checks"].get(key, ""))
    console.print(table)
    console.print(f"report: {run_dir / 'report.html'}")


def _register_commands() -> None:
    """Import every ``torchdojo.cli.cmd_*`` module; each adds its commands to ``app``."""
    import importlib
    import pkgutil

    import torchdojo.cli as pkg

    for info in pkgutil.iter_modules(pkg.__path__):
        if info.name.startswith("cmd_"):
            importlib.import_module(f"torchdojo.cli.{info.name}")


def main() -> None:
    """Console-script entry point."""
    _register_commands()

    try:
        app()
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
