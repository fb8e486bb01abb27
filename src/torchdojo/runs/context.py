"""What a recipe's ``run`` gets besides its config: where to write, how to train, how to talk."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from rich.console import Console
from torch import nn
from torchmetrics import Metric

from torchdojo.engine import (
    EvalFn,
    History,
    MetricsLogger,
    ProgressBar,
    StepFn,
    Trainer,
    TrainerConfig,
)
from torchdojo.engine import distributed as dist
from torchdojo.engine.callbacks import Callback
from torchdojo.models import ModelSpec, save_bundle
from torchdojo.runs.contract import ConfigError, Recipe, RunOptions, Setup
from torchdojo.utils.paths import data_root

TRAINER_FIELDS = frozenset(f.name for f in dataclasses.fields(TrainerConfig))


class RunContext:
    """Where a run writes, how it trains (the CLI's options), and how it talks to the user.

    Args:
        recipe: The recipe being run.
        options: The CLI's run options.
        run_dir: This run's folder (a tool's own folder under the run tree for diagnose & co).
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
        self.fallback_reason = ""
        self.figures: list[Path] = []
        self.sections: list[tuple[str, str]] = []  # (heading, HTML) blocks for report.html
        self.env: dict[str, Any] = {}
        self.last_trainer: Trainer | None = None

    @property
    def data_dir(self) -> Path:
        """The data root: ``--data-dir``, else ``$TORCHDOJO_DATA``, else ``~/.cache/torchdojo``."""
        return data_root(self.options.data_dir)

    @property
    def smoke(self) -> bool:
        return self.options.smoke

    def echo(self, message: str) -> None:
        """Print one line for the user (rank 0 only)."""
        if dist.is_main_process():
            self.console.print(message, highlight=False)

    def note_data(self, source: str, *, reference: bool = True, reason: str = "") -> None:
        """Record and print, once, which data the run uses; ``reference=False`` for stand-ins
        (embedded subsets, synthetic twins) on which the recipe's floors are not checked, with
        ``reason`` saying why the real data was not used."""
        self.reference_data = self.reference_data and reference
        if reason and not self.fallback_reason:
            self.fallback_reason = reason
        if source and source != self.data_source:
            self.data_source = source if not self.data_source else f"{self.data_source}; {source}"
            self.echo(f"[bold]data:[/bold] {source}")
            if reason:
                self.echo(f"[yellow]not the reference data:[/yellow] {reason}")

    def trainer(
        self,
        *,
        metrics: Mapping[str, Metric] | None = None,
        callbacks: Iterable[Callback] = (),
        checkpoint_dir: Path | None = None,
        log_dir: Path | None = None,
        **config: Any,
    ) -> Trainer:
        """A Trainer wired to this run: logging, progress, checkpoints, CLI options.

        ``config`` holds :class:`~torchdojo.engine.TrainerConfig` fields; an unknown key raises
        (a setting that is silently dropped is a bug). The CLI's ``--device``, ``--precision``,
        ``--compile``, ``--threads``, ``--time-budget``, ``--cpu-budget`` (each trainer's),
        ``--checkpoint-every`` and ``--seed`` override the recipe's values, except a
        ``time_budget`` the recipe passes: its share of ``--time-budget`` (cifar10-zoo splits
        it between its models). Checkpoints go to ``checkpoint_dir`` (default
        ``run_dir/checkpoints``) and ``metrics.jsonl`` to ``log_dir`` (default ``run_dir``): a
        run that trains several models in turn gives each its own.
        """
        unknown = sorted(set(config) - TRAINER_FIELDS)
        if unknown:
            raise TypeError(
                f"unknown trainer setting(s) {', '.join(unknown)}; "
                f"TrainerConfig has: {', '.join(sorted(TRAINER_FIELDS))}"
            )
        opts = self.options
        cli = {
            "device": opts.device,
            "precision": opts.precision,
            "compile": opts.compile or None,
            "num_threads": opts.threads,
            "time_budget": opts.time_budget,
            "cpu_budget": opts.cpu_budget,
            "checkpoint_every": opts.checkpoint_every,
            "seed": opts.seed,
        }
        if "time_budget" in config:  # the recipe's share of --time-budget (cifar10-zoo: per model)
            cli.pop("time_budget")
        merged = {**config, **{k: v for k, v in cli.items() if v is not None}}
        extra: list[Callback] = []
        if dist.is_main_process():
            extra.append(MetricsLogger(log_dir or self.run_dir))
            if opts.progress:
                extra.append(ProgressBar(self.console))
        trainer = Trainer(
            TrainerConfig(**merged),
            callbacks=[*extra, *callbacks],
            metrics=metrics,
            checkpoint_dir=checkpoint_dir or self.run_dir / "checkpoints",
        )
        self.last_trainer = trainer
        return trainer

    def fit(
        self,
        setup: Setup,
        *,
        metrics: Mapping[str, Metric] | None = None,
        callbacks: Iterable[Callback] = (),
        step: StepFn | None = None,
        eval_step: EvalFn | None = None,
        checkpoint_dir: Path | None = None,
        log_dir: Path | None = None,
        **config: Any,
    ) -> History:
        """Train ``setup`` for ``setup.epochs`` with a :meth:`trainer`; resumes when asked.
        ``step`` and ``eval_step`` replace the default training and validation steps (dict
        batches of text models; see :class:`Trainer`);
        ``checkpoint_dir`` and ``log_dir`` as in :meth:`trainer`."""
        trainer = self.trainer(
            metrics=metrics,
            callbacks=callbacks,
            checkpoint_dir=checkpoint_dir,
            log_dir=log_dir,
            epochs=setup.epochs,
            **config,
        )
        return trainer.fit(
            setup.model,
            setup.loaders,
            setup.loss_fn,
            setup.optimizer,
            setup.scheduler,
            step=step,
            eval_step=eval_step,
            resume=checkpoint_dir if self.resume and checkpoint_dir else self.resume,
        )

    def save_model(self, model: nn.Module, spec: ModelSpec) -> None:
        """Save the trained model (rank 0) so predict/export can rebuild it."""
        if dist.is_main_process():
            save_bundle(self.run_dir, getattr(model, "module", model), spec)

    def save_figure(self, fig: Any, name: str) -> None:
        """Save a matplotlib figure into ``plots/`` and show it in the report."""
        if dist.is_main_process():
            from torchdojo.viz import save_figure

            self.figures.append(save_figure(fig, self.run_dir / "plots" / f"{name}.png"))

    def add_section(self, heading: str, block: str) -> None:
        """Show an HTML block (built with escaping helpers, e.g. the attention colouring of
        :func:`torchdojo.viz.attention.attention_section`) in the report, after the plots."""
        if dist.is_main_process():
            self.sections.append((heading, block))


def require_setup(recipe: Recipe, tool: str) -> None:
    """Raise the one-line error a tool gives for a recipe without ``setup``."""
    if recipe.setup is None:
        raise ConfigError(
            f"{tool} does not apply to recipe {recipe.name!r}: it has no single model to build "
            "(see `torchdojo list`; it works on the classification recipes)"
        )


__all__ = ["RunContext", "require_setup"]
