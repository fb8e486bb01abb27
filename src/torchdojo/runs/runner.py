"""Run a recipe: make the run folder, train, then write metrics, plots and report.html.

A run folder ``runs/<recipe>/<timestamp>/`` holds ``config.yaml``, ``env.json``,
``metrics.jsonl``, ``tensorboard/``, ``checkpoints/``, ``plots/*.png``, ``summary.json``,
``report.html`` and, for finished runs, ``model.safetensors`` + ``model.json``.
"""

from __future__ import annotations

import dataclasses
import json
import platform
import subprocess
import time
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml
from rich.console import Console
from torch import nn
from torchmetrics import Metric

from torchdojo.engine import MetricsLogger, ProgressBar, Trainer, TrainerConfig
from torchdojo.engine import distributed as dist
from torchdojo.engine.callbacks import Callback
from torchdojo.models import ModelSpec, save_bundle
from torchdojo.recipes import get_recipe
from torchdojo.recipes._api import ConfigError, Recipe, RunOptions, apply_overrides
from torchdojo.utils.io import atomic_write_json, atomic_write_text
from torchdojo.utils.paths import data_root
from torchdojo.utils.seed import seed_everything


@dataclass
class RunResult:
    """What a finished run hands back to the CLI."""

    recipe: str
    run_dir: Path
    metrics: dict[str, float]
    checks: dict[str, str] = field(default_factory=dict)
    data_source: str = ""


class RunContext:
    """What a recipe's ``run`` gets besides its config: where to write, how to train, how to talk.

    Args:
        recipe: The recipe being run.
        options: The CLI's run options.
        run_dir: This run's folder.
        console: Where ``echo`` prints (rank 0 only).
    """

    def __init__(
        self, recipe: Recipe, options: RunOptions, run_dir: Path, console: Console | None = None
    ) -> None:
        self.recipe, self.options, self.run_dir = recipe, options, run_dir
        self.console = console or Console(stderr=True)
        self.resume: Path | None = Path(options.resume) / "checkpoints" if options.resume else None
        self.data_source = ""
        self.reference_data = True
        self.figures: list[Path] = []
        self.env: dict[str, Any] = {}

    @property
    def data_dir(self) -> Path:
        return data_root(self.options.data_dir)

    @property
    def smoke(self) -> bool:
        return self.options.smoke

    def echo(self, message: str) -> None:
        """Print one line for the user (rank 0 only)."""
        if dist.is_main_process():
            self.console.print(message, highlight=False)

    def note_data(self, source: str, *, reference: bool = True) -> None:
        """Record and print, once, which data the run uses; ``reference=False`` for stand-ins
        (embedded subsets, synthetic twins) on which the recipe's floors are not checked."""
        self.reference_data = self.reference_data and reference
        if source and source != self.data_source:
            self.data_source = source if not self.data_source else f"{self.data_source}; {source}"
            self.echo(f"[bold]data:[/bold] {source}")

    def trainer(
        self,
        *,
        metrics: Mapping[str, Metric] | None = None,
        trainer_cls: type[Trainer] = Trainer,
        callbacks: Iterable[Callback] = (),
        **config: Any,
    ) -> Trainer:
        """A Trainer wired to this run: logging, progress, checkpoints, CLI options."""
        opts = self.options
        defaults: dict[str, Any] = {
            "device": opts.device,
            "precision": opts.precision,
            "compile": opts.compile,
            "num_threads": opts.threads,
            "time_budget": opts.time_budget,
            "checkpoint_every": opts.checkpoint_every,
        }
        if opts.seed is not None:
            defaults["seed"] = opts.seed
        fields = {f.name for f in dataclasses.fields(TrainerConfig)}
        merged = {
            **config,
            **{k: v for k, v in defaults.items() if v is not None or k not in config},
        }
        merged = {k: v for k, v in merged.items() if k in fields and v is not None}
        extra: list[Callback] = []
        if dist.is_main_process():
            extra.append(MetricsLogger(self.run_dir))
            if opts.progress:
                extra.append(ProgressBar(self.console))
        trainer = trainer_cls(
            TrainerConfig(**merged),
            callbacks=[*extra, *callbacks],
            metrics=metrics,
            checkpoint_dir=self.run_dir / "checkpoints",
        )
        self._trainer = trainer
        return trainer

    def save_model(self, model: nn.Module, spec: ModelSpec) -> None:
        """Save the trained model (rank 0) so predict/export can rebuild it."""
        if dist.is_main_process():
            save_bundle(self.run_dir, getattr(model, "module", model), spec)

    def save_figure(self, fig: Any, name: str) -> None:
        """Save a matplotlib figure into ``plots/`` and show it in the report."""
        if dist.is_main_process():
            from torchdojo.viz import save_figure

            self.figures.append(save_figure(fig, self.run_dir / "plots" / f"{name}.png"))


def run(name: str, options: RunOptions) -> RunResult:
    """Run recipe ``name`` with ``options`` (see :class:`RunOptions`)."""
    recipe = get_recipe(name)
    owns_group = not dist.is_initialized() and dist.init_distributed()
    try:
        return _run(recipe, options)
    finally:
        if owns_group:  # left to interpreter exit, gloo's threads can abort the process
            dist.destroy_distributed()


def _run(recipe: Recipe, options: RunOptions) -> RunResult:
    config = _resolve_config(recipe, options)
    run_dir = _make_run_dir(recipe, options)
    ctx = RunContext(recipe, options, run_dir)
    if dist.is_main_process():
        _write_config(run_dir, recipe, config, options)
        atomic_write_json(run_dir / "env.json", collect_env())
    ctx.echo(f"[bold]{recipe.name}[/bold] -> {run_dir}")
    # Seed before the recipe builds its model: torch seeds itself randomly in each process.
    seed_everything(options.seed if options.seed is not None else getattr(config, "seed", 0))
    started = time.perf_counter()
    metrics = recipe.run(config, ctx)
    wall = time.perf_counter() - started
    checkable = not options.smoke and ctx.reference_data
    result = RunResult(
        recipe.name, run_dir, metrics, _checks(recipe, metrics, checkable), ctx.data_source
    )
    if dist.is_main_process():
        _finish_run_dir(ctx, config, result, wall)
    return result


def _resolve_config(recipe: Recipe, options: RunOptions) -> Any:
    from torchdojo.recipes._api import parse_overrides

    if options.resume:
        saved = _read_config(Path(options.resume), recipe)
        return apply_overrides(recipe.config(), _from_yaml(recipe.config, saved["config"]))
    config = recipe.smoke if options.smoke else recipe.config()
    if options.epochs is not None:
        config = apply_overrides(config, {"epochs": options.epochs})
    return apply_overrides(config, parse_overrides(options.overrides))


def _from_yaml(config_cls: type[Any], values: dict[str, Any]) -> dict[str, Any]:
    hints = typing.get_type_hints(config_cls)
    return {
        k: tuple(v) if isinstance(v, list) and typing.get_origin(hints.get(k)) is tuple else v
        for k, v in values.items()
    }


def _read_config(run_dir: Path, recipe: Recipe) -> dict[str, Any]:
    path = run_dir / "config.yaml"
    if not path.is_file():
        raise ConfigError(
            f"--resume {run_dir}: no config.yaml there; pass a run folder "
            "(runs/<recipe>/<timestamp>)"
        )
    saved: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    if saved.get("recipe") != recipe.name:
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


def _checks(recipe: Recipe, metrics: dict[str, float], checkable: bool) -> dict[str, str]:
    """Each expected metric against its floor; "n/a" on smoke runs and stand-in data."""
    checks = {}
    for key, exp in recipe.expected.items():
        value = metrics.get(key)
        if not checkable or value is None:
            checks[key] = "n/a"
        else:
            ok = value >= exp.floor if exp.mode == "max" else value <= exp.floor
            checks[key] = "pass" if ok else "below floor"
    return checks


def _finish_run_dir(ctx: RunContext, config: Any, result: RunResult, wall: float) -> None:
    from torchdojo import viz

    run_dir = result.run_dir
    env = {
        **collect_env(),
        **getattr(getattr(ctx, "_trainer", None), "env", {}),
        "seed": getattr(config, "seed", None),
        "wall_time_s": round(wall, 2),
    }
    atomic_write_json(run_dir / "env.json", env)
    summary = {
        "recipe": result.recipe,
        "metrics": result.metrics,
        "checks": result.checks,
        "data": result.data_source,
        "smoke": ctx.smoke,
    }
    atomic_write_json(run_dir / "summary.json", summary)
    records = _read_metrics(run_dir / "metrics.jsonl")
    plots = viz.plot_curves(records, run_dir / "plots") if records else []
    expected = {k: dataclasses.asdict(e) for k, e in ctx.recipe.expected.items()}
    viz.write_report(
        run_dir,
        title=f"{result.recipe} run",
        summary=f"{ctx.recipe.description} Data: {result.data_source or 'n/a'}.",
        config={**dataclasses.asdict(config), "smoke": ctx.smoke or not ctx.reference_data},
        metrics=result.metrics,
        expected=expected,
        images=[*plots, *ctx.figures],
        env=env,
    )


def _read_metrics(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
