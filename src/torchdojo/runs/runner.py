"""Run a recipe: make the run folder, train, then write metrics, plots and report.html.

A run folder ``runs/<recipe>/<timestamp>/`` holds ``config.yaml``, ``env.json``,
``metrics.jsonl``, ``tensorboard/``, ``checkpoints/``, ``plots/*.png``, ``summary.json``,
``report.html`` and, for finished runs, ``model.safetensors`` + ``model.json``.
"""

from __future__ import annotations

import dataclasses
import json
import platform
import shutil
import subprocess
import time
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml

from torchdojo.data.errors import DataError
from torchdojo.engine import distributed as dist
from torchdojo.runs.context import RunContext
from torchdojo.runs.contract import (
    ConfigError,
    Recipe,
    RunOptions,
    apply_overrides,
    parse_overrides,
    validate_config,
)
from torchdojo.utils.io import atomic_write_json, atomic_write_text
from torchdojo.utils.seed import seed_everything


@dataclass
class RunResult:
    """What a finished run hands back to the CLI."""

    recipe: str
    run_dir: Path
    metrics: dict[str, float]
    checks: dict[str, str] = field(default_factory=dict)
    data_source: str = ""


def run(recipe: Recipe, options: RunOptions) -> RunResult:
    """Run ``recipe`` with ``options`` (see :class:`RunOptions`): the config and options are
    checked before the run folder is made; a run that fails marks its folder as failed."""
    options.validated()
    owns_group = not dist.is_initialized() and dist.init_distributed()
    try:
        return _run(recipe, options)
    finally:
        if owns_group:  # left to interpreter exit, gloo's threads can abort the process
            dist.destroy_distributed()


def _run(recipe: Recipe, options: RunOptions) -> RunResult:
    config = resolve_config(recipe, options)
    run_dir = _make_run_dir(recipe, options)
    ctx = RunContext(recipe, options, run_dir)
    if dist.is_main_process():
        _write_config(run_dir, recipe, config, options)
        atomic_write_json(run_dir / "env.json", collect_env())
        _forget_outcome(run_dir)
    ctx.echo(f"[bold]{recipe.name}[/bold] -> {run_dir}")
    # Seed before the recipe builds its model: torch seeds itself randomly in each process.
    seed_everything(options.seed if options.seed is not None else getattr(config, "seed", 0))
    started, cpu_started = time.perf_counter(), _cpu_seconds()
    try:
        metrics = recipe.run(config, ctx)
    except BaseException as error:
        if dist.is_main_process():
            _leave_honest_folder(run_dir, recipe.name, error, resumed=bool(options.resume))
        raise
    wall, cpu = time.perf_counter() - started, _cpu_seconds() - cpu_started
    why_not = "smoke run" if options.smoke else "" if ctx.reference_data else "stand-in data"
    result = RunResult(
        recipe.name, run_dir, metrics, _checks(recipe, metrics, why_not), ctx.data_source
    )
    if dist.is_main_process():
        _finish_run_dir(ctx, config, result, wall, cpu)
    return result


def _cpu_seconds() -> float:
    """User + system CPU seconds of this process and its finished children (loader workers)."""
    try:
        import resource
    except ImportError:  # Windows: this process only
        return time.process_time()
    usage = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    return sum(u.ru_utime + u.ru_stime for u in usage)


def resolve_config(recipe: Recipe, options: RunOptions) -> Any:
    """The config a run of ``recipe`` with ``options`` uses (the saved one on resume), checked."""
    if options.resume:
        saved = read_run_config(Path(options.resume), recipe)
        return apply_overrides(recipe.config(), from_yaml(recipe.config, saved["config"]))
    config = validate_config(recipe.smoke if options.smoke else recipe.config())
    if options.epochs is not None:
        if "epochs" not in {f.name for f in dataclasses.fields(config)}:
            raise ConfigError(f"--epochs: recipe {recipe.name!r} has no epochs setting")
        config = apply_overrides(config, {"epochs": options.epochs})
    return apply_overrides(config, parse_overrides(options.overrides))


STATUS_FILE = "summary.json"


def mark_failed(run_dir: Path, recipe: str, error: BaseException) -> None:
    """Write ``summary.json`` with status ``failed`` (or ``interrupted``) and the reason, so
    nothing in the folder passes for a finished run; a checkpoint stays resumable."""
    interrupted = isinstance(error, KeyboardInterrupt) or type(error).__name__ == (
        "TrainingInterrupted"
    )
    summary: dict[str, Any] = {
        "recipe": recipe,
        "status": "interrupted" if interrupted else "failed",
        "error": f"{type(error).__name__}: {error}".strip()[:2000],
        "metrics": {},
        "checks": {},
    }
    atomic_write_json(run_dir / STATUS_FILE, summary)


USER_ERRORS = (ConfigError, DataError, FileNotFoundError, NotADirectoryError)


def _leave_honest_folder(
    run_dir: Path, recipe: str, error: BaseException, *, resumed: bool
) -> None:
    """A new run that a bad input stopped before its first checkpoint leaves no folder (the
    error says what to fix); any other failure marks the folder failed or interrupted."""
    checkpoints = run_dir / "checkpoints"
    started = checkpoints.is_dir() and any(checkpoints.iterdir())
    if isinstance(error, USER_ERRORS) and not resumed and not started:
        shutil.rmtree(run_dir, ignore_errors=True)
        return
    mark_failed(run_dir, recipe, error)


def _forget_outcome(run_dir: Path) -> None:
    """A resumed run is not finished until it finishes again."""
    (run_dir / STATUS_FILE).unlink(missing_ok=True)


def from_yaml(config_cls: type[Any], values: dict[str, Any]) -> dict[str, Any]:
    """``config.yaml`` values as field values (YAML lists back to tuples)."""

    hints = typing.get_type_hints(config_cls)
    return {
        k: tuple(v) if isinstance(v, list) and typing.get_origin(hints.get(k)) is tuple else v
        for k, v in values.items()
    }


def read_run_config(run_dir: Path, recipe: Recipe | None = None) -> dict[str, Any]:
    """A run folder's ``config.yaml`` (recipe, config, options); checks it is ``recipe``'s."""
    path = run_dir / "config.yaml"
    if not run_dir.exists():
        raise ConfigError(f"{run_dir} does not exist; pass a run folder (runs/<recipe>/<time>)")
    if not path.is_file():
        raise ConfigError(
            f"{run_dir} has no config.yaml: not a run folder; pass one (runs/<recipe>/<time>)"
        )
    try:
        saved: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
        recipe_name = saved["recipe"]
    except (yaml.YAMLError, KeyError, TypeError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path} is not a readable run config ({err})") from None
    if recipe is None:
        return saved
    if recipe_name != recipe.name:
        raise ConfigError(
            f"--resume {run_dir} is a run of {saved.get('recipe')!r}, not {recipe.name!r}"
        )
    return saved


def _make_run_dir(recipe: Recipe, options: RunOptions) -> Path:
    if options.resume:
        return Path(options.resume)
    chosen = [""]
    if dist.is_main_process():
        base = Path(options.out) / recipe.name / time.strftime("%Y%m%d-%H%M%S")
        run_dir, n = base, 1
        while run_dir.exists():
            run_dir, n = base.with_name(f"{base.name}-{n}"), n + 1
        run_dir.mkdir(parents=True)
        chosen[0] = str(run_dir)
    if dist.is_initialized():  # every rank must agree on the folder rank 0 made
        torch.distributed.broadcast_object_list(chosen, src=0)
    return Path(chosen[0])


def _write_config(run_dir: Path, recipe: Recipe, config: Any, options: RunOptions) -> None:
    if options.resume:
        return
    doc = {
        "recipe": recipe.name,
        "config": _plain(dataclasses.asdict(config)),
        "options": _plain(dataclasses.asdict(options)),
    }
    atomic_write_text(run_dir / "config.yaml", yaml.safe_dump(doc, sort_keys=False))


def _plain(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_plain(v) for v in obj]
    return obj


def collect_env() -> dict[str, Any]:
    """Versions, git sha, CPU and device facts for ``env.json``."""
    import torchvision

    env: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cuda": torch.cuda.is_available(),
        "git_sha": _git_sha(),
    }
    return env


def _git_sha() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def _checks(recipe: Recipe, metrics: dict[str, float], why_not: str) -> dict[str, str]:
    """Each expected metric against its floor; "n/a (why)" on smoke runs and stand-in data."""
    checks = {}
    for key, exp in recipe.expected.items():
        value = metrics.get(key)
        if why_not or value is None:
            checks[key] = f"n/a ({why_not or 'not reported'})"
        else:
            ok = value >= exp.floor if exp.mode == "max" else value <= exp.floor
            checks[key] = "pass" if ok else "below floor"
    return checks


def _finish_run_dir(
    ctx: RunContext, config: Any, result: RunResult, wall: float, cpu: float
) -> None:
    from torchdojo import viz

    run_dir = result.run_dir
    env = {
        **collect_env(),
        **(ctx.last_trainer.env if ctx.last_trainer is not None else {}),
        "seed": getattr(config, "seed", None),
        "wall_time_s": round(wall, 2),
        "cpu_time_s": round(cpu, 2),  # user + system, all threads: what docs/recipes.md lists
    }
    atomic_write_json(run_dir / "env.json", env)
    summary = {
        "recipe": result.recipe,
        "metrics": result.metrics,
        "checks": result.checks,
        "status": "finished",
        "data": result.data_source,
        "smoke": ctx.smoke,
        "reference_data": ctx.reference_data,
        "fallback_reason": ctx.fallback_reason,
    }
    atomic_write_json(run_dir / "summary.json", summary)
    records = _read_metrics(run_dir / "metrics.jsonl")
    plots = viz.plot_curves(records, run_dir / "plots") if records else []
    expected = {k: dataclasses.asdict(e) for k, e in ctx.recipe.expected.items()}
    viz.write_report(
        run_dir,
        title=f"{result.recipe} run",
        summary=f"{ctx.recipe.description} Data: {result.data_source or 'n/a'}."
        + (f" Not the reference data: {ctx.fallback_reason}." if ctx.fallback_reason else "")
        + (f" No measured floor yet: {ctx.recipe.unmeasured}" if ctx.recipe.unmeasured else ""),
        config={**dataclasses.asdict(config), "smoke": ctx.smoke},
        metrics=result.metrics,
        expected=expected,
        images=[*plots, *ctx.figures],
        env=env,
        sections=ctx.sections,
    )


def _read_metrics(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
