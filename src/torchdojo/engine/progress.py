"""A rich progress bar: loss, the monitored metric, samples/s and ETA, updated on log steps."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from torchdojo.engine import distributed as dist
from torchdojo.engine.callbacks import Callback, StepOutput

if TYPE_CHECKING:
    from torchdojo.engine.trainer import History, Trainer


class ProgressBar(Callback):
    """Show one bar per epoch on rank 0. It reads only what the trainer already logged, so it
    adds no host sync to the loop.

    Args:
        console: Where to draw (default: stderr).
        min_interval: Seconds between redraws (a redraw costs milliseconds; steps may not).
    """

    def __init__(self, console: Console | None = None, *, min_interval: float = 0.5) -> None:
        self.console = console or Console(stderr=True)
        self.min_interval = min_interval
        self._last_draw = 0.0
        self._progress: Progress | None = None
        self._task: Any = None
        self._last_val = ""

    def on_fit_start(self, trainer: Trainer) -> None:
        if not dist.is_main_process():
            return
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[stats]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=self.console,
            transient=False,
            auto_refresh=False,  # no 10 Hz redraw thread competing with the loop for the GIL
        )
        self._progress.start()

    def on_epoch_start(self, trainer: Trainer, epoch: int) -> None:
        if self._progress is None:
            return
        total = trainer.num_train_batches
        self._task = self._progress.add_task(
            f"epoch {epoch + 1}/{trainer.config.epochs}",
            total=total,
            completed=trainer.state.batch_in_epoch,
            stats=self._last_val,
        )
        self._progress.refresh()

    def on_batch_end(self, trainer: Trainer, output: StepOutput) -> None:
        if self._progress is None or output.log is None:
            return
        now = time.monotonic()
        if now - self._last_draw < self.min_interval:
            return
        self._last_draw = now
        stats = f"loss {output.log['loss']:.4f}  {output.log['samples_per_s']:,.0f} samples/s"
        self._progress.update(
            self._task,
            completed=trainer.state.batch_in_epoch,
            stats=f"{stats} {self._last_val}",
            refresh=True,
        )

    def on_epoch_end(self, trainer: Trainer, history: History) -> None:
        if self._progress is None:
            return
        val = {k: v for k, v in history.last().items() if k.startswith("val_")}
        self._last_val = "  ".join(f"{k} {v:.4f}" for k, v in val.items())
        self._progress.update(self._task, stats=self._last_val, refresh=True)

    def on_fit_end(self, trainer: Trainer, history: History) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
