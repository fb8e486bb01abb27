"""The ``torchdojo`` CLI. Each command is a thin, typed function over one library call.

Every command runs inside one error boundary (:class:`ErrorBoundary`): an expected error (a
bad value, a missing file, a device that is not there) is one line ``error: ...`` and exit
code 2; a non-finite loss exits 3, an interrupted run 130; anything else is one line naming
the file that holds the full traceback (``--debug`` prints it instead).
"""

from __future__ import annotations

import sys
import tempfile
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from typer.core import TyperGroup
from typer.exceptions import TyperException

if TYPE_CHECKING:
    from torchdojo.runs import RunOptions
    from torchdojo.runs.runner import RunResult

console = Console()
err = Console(stderr=True)

# Errors a person causes (a value, a path, a missing package, a device): one line, exit 2.
EXPECTED_ERRORS: tuple[type[BaseException], ...] = (ValueError, OSError, ImportError, MemoryError)


class ErrorBoundary(TyperGroup):
    """The CLI's one error boundary: every command's exceptions end here as one line."""

    def invoke(self, ctx: Any) -> Any:  # typer.Context (its click base is vendored, private)
        _state.run_dir, _state.debug = None, False
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, TyperException, SystemExit, GeneratorExit):
            raise  # exits and usage errors: typer prints them
        except BaseException as error:  # the boundary: nothing passes as a traceback
            debug = bool(ctx.params.get("debug")) or _state.debug
            raise typer.Exit(report_error(error, debug=debug)) from None


class _State:
    """What the boundary needs to know about the command that failed."""

    debug: bool = False
    run_dir: Path | None = None  # the run folder the failing command made, if any


_state = _State()

app = typer.Typer(
    cls=ErrorBoundary,
    help="PyTorch course tasks as tested, runnable recipes.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _print_version(value: bool) -> None:
    if value:
        from torchdojo import __version__

        console.print(f"torchdojo {__version__}", highlight=False)
        raise typer.Exit()


@app.callback()
def _options(
    debug: Annotated[
        bool, typer.Option("--debug", help="Show the full traceback of an unexpected error.")
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version."
        ),
    ] = False,
) -> None:
    """PyTorch course tasks as tested, runnable recipes."""
    _state.debug = debug


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print one red line on stderr and return the Exit to raise."""
    err.print(f"[bold red]error:[/bold red] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def report_error(error: BaseException, *, debug: bool = False) -> int:
    """Print ``error`` as one line on stderr and return the exit code.

    Expected errors (:data:`EXPECTED_ERRORS`): their message, code 2. A non-finite loss: 3.
    An interrupted run: where its checkpoint is and how to resume, 130. Anything else: the
    exception in one line and the file holding the full traceback (``run_dir/traceback.txt``
    when the command made a run folder, else a temporary file), code 1; with ``debug`` the
    traceback is printed too.
    """
    trainer = sys.modules.get("torchdojo.engine.trainer")  # loaded if training started
    if isinstance(error, KeyboardInterrupt) or (
        trainer is not None and isinstance(error, trainer.TrainingInterrupted)
    ):
        checkpoint = getattr(error, "checkpoint", None)
        where = _state.run_dir or (checkpoint.parent.parent if checkpoint else None)
        resume = f"; resume with: torchdojo resume {where}" if where else ""
        err.print(f"[yellow]interrupted[/yellow]{resume}", highlight=False, soft_wrap=True)
        return 130
    if trainer is not None and isinstance(error, trainer.NonFiniteLossError):
        fail(_one_line(error))
        return 3
    if isinstance(error, EXPECTED_ERRORS):
        fail(_one_line(error))
        return 2
    where = _write_traceback(error)
    if debug:
        err.print("".join(traceback.format_exception(error)), highlight=False, markup=False)
    fail(
        f"unexpected {type(error).__name__}: {_one_line(error)} (a bug? full traceback in "
        f"{where}{'' if debug else '; --debug prints it here'})"
    )
    return 1


def _one_line(error: BaseException) -> str:
    """The error's message on one line (``KeyError('x')`` -> ``missing key 'x'``)."""
    text = " ".join(str(error).split())
    if isinstance(error, KeyError):
        text = f"missing key {text}"
    return text or type(error).__name__


def _write_traceback(error: BaseException) -> Path:
    """Write ``error``'s traceback to the failed run's folder, else to a temporary file."""
    text = "".join(traceback.format_exception(error))
    if _state.run_dir is not None and _state.run_dir.is_dir():
        path = _state.run_dir / "traceback.txt"
        try:
            path.write_text(text, encoding="utf-8")
            return path
        except OSError:  # a read-only or vanished folder: the temporary file still works
            pass
    handle = tempfile.NamedTemporaryFile(
        "w", prefix="torchdojo-traceback-", suffix=".txt", delete=False, encoding="utf-8"
    )
    with handle:
        handle.write(text)
    return Path(handle.name)


@app.command("list")
def list_cmd(
    recipe: Annotated[
        str | None, typer.Argument(help="Show this recipe's config keys (its --set options).")
    ] = None,
) -> None:
    """List every recipe with its one-line description; with RECIPE, its `--set` keys."""
    if recipe is not None:
        _describe_recipe(recipe)
        return
    from torchdojo.recipes import describe, list_recipes

    table = Table("recipe", "what it does", box=None, header_style="bold")
    for name in list_recipes():
        table.add_row(name, describe(name))
    console.print(table)
    console.print("config keys of one recipe: torchdojo list RECIPE")


def _describe_recipe(name: str) -> None:
    from torchdojo.recipes import get_recipe
    from torchdojo.runs import config_help

    recipe = get_recipe(name)
    console.print(f"[bold]{recipe.name}[/bold]: {recipe.description}", highlight=False)
    if recipe.lesson:
        console.print(f"lesson: {recipe.lesson}", highlight=False)
    table = Table("--set key", "accepts", "default", box=None, header_style="bold")
    for key, accepts, default in config_help(recipe.config):
        table.add_row(key, accepts, default)
    console.print(table)
    for metric, exp in recipe.expected.items():
        bound = ">=" if exp.mode == "max" else "<="
        console.print(f"expected {metric} {bound} {exp.floor:g} on {exp.data}", highlight=False)
    if recipe.unmeasured:
        console.print(f"not measured yet: {recipe.unmeasured}", highlight=False)


@app.command()
def run(
    recipe: Annotated[str, typer.Argument(help="Recipe name, see `torchdojo list`.")],
    smoke: Annotated[bool, typer.Option(help="Tiny offline data, seconds to run.")] = False,
    epochs: Annotated[int | None, typer.Option(help="Override the recipe's epochs.")] = None,
    overrides: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            help="Override a config field: key=value (repeatable). "
            "`torchdojo list RECIPE` lists the keys and what each accepts.",
        ),
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
    cpu_budget: Annotated[
        float | None,
        typer.Option(
            help="Stop training cleanly after this many CPU seconds of training steps "
            "(per model; unlike --time-budget, fair on a busy machine)."
        ),
    ] = None,
    checkpoint_every: Annotated[
        int | None, typer.Option(help="Also checkpoint every N optimizer steps.")
    ] = None,
    progress: Annotated[bool, typer.Option(help="Show the progress bar.")] = True,
    seed: Annotated[int | None, typer.Option(help="Override the trainer seed.")] = None,
) -> None:
    """Train one recipe; writes a run folder with metrics, plots, checkpoints and report.html.

    `torchdojo list RECIPE` shows the recipe's config keys for --set.
    """
    from torchdojo.runs import RunOptions

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
        cpu_budget=cpu_budget,
        checkpoint_every=checkpoint_every,
        progress=progress,
        seed=seed,
    )
    _run(recipe, options)


def _run(recipe: str, options: RunOptions) -> None:
    from torchdojo.recipes import run_recipe

    before = _run_folders(options, recipe)
    try:
        result = run_recipe(recipe, options)
    except BaseException:
        _state.run_dir = _made_run_folder(options, recipe, before)
        raise
    from torchdojo.engine import distributed as dist

    if dist.is_main_process():
        _print_result(result)


def _run_folders(options: RunOptions, recipe: str) -> set[Path]:
    folder = Path(options.out) / recipe
    return set(folder.iterdir()) if folder.is_dir() else set()


def _made_run_folder(options: RunOptions, recipe: str, before: set[Path]) -> Path | None:
    """The run folder this run made (or resumed), for the traceback of an unexpected error."""
    if options.resume:
        return Path(options.resume)
    made = sorted(_run_folders(options, recipe) - before)
    return made[-1] if made else None


def _print_result(result: RunResult) -> None:
    table = Table("metric", "value", "expected", box=None, header_style="bold")
    for key, value in result.metrics.items():
        table.add_row(key, f"{value:.4f}", result.checks.get(key, ""))
    console.print(table)
    console.print(
        f"run folder: {result.run_dir}  (report: {result.run_dir}/report.html)", soft_wrap=True
    )


@app.command()
def resume(
    run_dir: Annotated[Path, typer.Argument(help="A run folder: runs/<recipe>/<timestamp>.")],
    progress: Annotated[bool, typer.Option(help="Show the progress bar.")] = True,
) -> None:
    """Resume an interrupted run from its newest readable checkpoint."""
    import dataclasses

    from torchdojo.runs import ConfigError, RunOptions
    from torchdojo.runs.runner import read_run_config
    from torchdojo.services.finished import has_checkpoint

    saved = read_run_config(run_dir)  # "does not exist" / "has no config.yaml"
    if not has_checkpoint(run_dir):
        raise ConfigError(
            f"{run_dir} has no checkpoint to resume from (the run stopped before its first "
            f"one); train again with `torchdojo run {saved['recipe']}`"
        )
    known = {f.name for f in dataclasses.fields(RunOptions)}
    opts = {k: v for k, v in dict(saved.get("options") or {}).items() if k in known}
    opts.update(resume=str(run_dir), progress=progress, overrides=tuple(opts.get("overrides", ())))
    _run(str(saved["recipe"]), RunOptions(**opts))


@app.command()
def show(run_dir: Annotated[Path, typer.Argument(help="A run folder.")]) -> None:
    """Print a run's summary: status, data, final metrics vs expected, where the report is."""
    from torchdojo.runs import ConfigError
    from torchdojo.services.finished import next_step, read_summary

    if not run_dir.is_dir():
        what = "is a file" if run_dir.exists() else "does not exist"
        raise ConfigError(f"{run_dir} {what}; pass a run folder (runs/<recipe>/<time>)")
    summary = read_summary(run_dir)
    if summary is None:
        if (run_dir / "config.yaml").is_file():
            raise ConfigError(
                f"{run_dir} has no summary.json: the run did not finish (still running, or "
                f"killed); {next_step(run_dir)}"
            )
        raise ConfigError(f"{run_dir} has no summary.json: not a run folder (runs/<recipe>/<time>)")
    _show_summary(run_dir, summary)


def _show_summary(run_dir: Path, summary: dict[str, Any]) -> None:
    from torchdojo.services.finished import next_step

    def say(text: str) -> None:
        console.print(text, highlight=False, soft_wrap=True)  # paths stay whole

    recipe, status = str(summary.get("recipe", "?")), str(summary.get("status", "finished"))
    say(
        f"[bold]{recipe}[/bold]  {run_dir}"
        + ("  [yellow](smoke run)[/yellow]" if summary.get("smoke") else "")
    )
    if status == "finished":
        say("status: finished")
    else:
        error = str(summary.get("error", "")).strip()
        say(f"status: [red]{status}[/red]" + (f" ({escape(error)})" if error else ""))
        say(next_step(run_dir, recipe))
    say(f"data: {escape(str(summary.get('data') or 'n/a'))}")
    if summary.get("reference_data") is False:
        reason = summary.get("fallback_reason") or "a stand-in for the reference data"
        say(
            f"[yellow]not the reference data:[/yellow] {escape(str(reason))}; the expected floors were not checked"
        )
    metrics, checks = summary.get("metrics") or {}, summary.get("checks") or {}
    if metrics:
        table = Table("metric", "value", "check", box=None, header_style="bold")
        for key, value in metrics.items():
            table.add_row(key, f"{value:.4f}", checks.get(key, ""))
        console.print(table)
    if (run_dir / "report.html").is_file():
        say(f"report: {run_dir / 'report.html'}")


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
    app()
