"""Per-epoch progress: a live bar in a terminal, one plain line per epoch anywhere else.

In a terminal the running epoch is one bar (batches done/total, ETA, loss, samples/s); when the
epoch ends, one line with its count, metrics and time is printed above the bar and stays::

    epoch 3/40  23/23  loss 0.1234  val_loss 0.1532  val_acc 0.9712  12.3 s

When the console is not a terminal (piped, redirected into a log) there is no bar and there are
no control codes, only the same line per epoch without the count. Lines never wrap: what does not
fit the console's width is cut with an ellipsis.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
)
from rich.table import Column
from rich.text import Text

from torchdojo.engine import distributed as dist
from torchdojo.engine.callbacks import Callback, StepOutput

if TYPE_CHECKING:
    from torchdojo.engine.trainer import History, Trainer


class ProgressBar(Callback):
    """Show training progress on rank 0. It reads only what the trainer already logged, so it
    adds no host sync to the loop.

    Args:
        console: Where to write (default: stderr). A terminal gets the live bar, anything
            else one line per epoch.
        min_interval: Seconds between redraws of the live bar (a redraw costs milliseconds;
            steps may not).
    """

    def __init__(self, console: Console | None = None, *, min_interval: float = 0.5) -> None:
        self.console = console or Console(stderr=True)
        self.min_interval = min_interval
        self._active = False
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        self._epoch_label = ""
        self._epoch_started = 0.0
        self._last_draw = 0.0
        self._done = 0  # batches of this epoch seen so far, counting a resumed epoch's start
        self._step_stats = ""

    @property
    def live(self) -> bool:
        """Whether the console gets a live bar (a terminal) or plain lines (anything else)."""
        return self.console.is_terminal and not self.console.is_dumb_terminal

    def on_fit_start(self, trainer: Trainer) -> None:
        self._active = dist.is_main_process()
        if not self._active or not self.live:
            return
        width = len(f"epoch {trainer.config.epochs}/{trainer.config.epochs}")
        bar_width = max(10, min(30, self.console.width // 5))
        self._progress = Progress(
            TextColumn("[bold]{task.description}", table_column=_fixed(width)),
            BarColumn(bar_width=bar_width, table_column=_fixed(bar_width)),
            MofNCompleteColumn(table_column=_fixed(None)),
            _EtaColumn(table_column=_fixed(len("ETA 0:00:00"))),
            TextColumn("{task.fields[stats]}", table_column=_fixed(None, ratio=1)),
            console=self.console,
            expand=True,  # the stats column takes what is left and is cut, never wrapped
            transient=True,  # finished epochs are printed as lines; the bar itself goes away
            auto_refresh=False,  # no 10 Hz redraw thread competing with the loop for the GIL
        )
        self._progress.start()

    def on_epoch_start(self, trainer: Trainer, epoch: int) -> None:
        if not self._active:
            return
        self._epoch_label = f"epoch {epoch + 1}/{trainer.config.epochs}"
        self._epoch_started = time.monotonic()
        self._done = trainer.state.batch_in_epoch  # > 0 when resuming mid-epoch
        self._step_stats = ""
        if self._progress is not None:
            self._task = self._progress.add_task(
                self._epoch_label, total=trainer.num_train_batches, completed=self._done, stats=""
            )
            self._draw()

    def on_batch_end(self, trainer: Trainer, output: StepOutput) -> None:
        if not self._active:
            return
        self._done = trainer.state.batch_in_epoch
        if output.log is not None:
            self._step_stats = (
                f"loss {output.log['loss']:.4f}  {output.log['samples_per_s']:,.0f} samples/s"
            )
        if self._progress is not None and time.monotonic() - self._last_draw >= self.min_interval:
            self._draw()

    def on_epoch_end(self, trainer: Trainer, history: History) -> None:
        if not self._active:
            return
        total = trainer.num_train_batches
        parts = [self._epoch_label]
        if total is not None and self._done < total:  # a time budget or a step limit cut it
            parts.append(f"stopped at batch {self._done}/{total}")
        elif self._progress is not None:
            parts.append(f"{self._done}/{self._done if total is None else total}")
        parts += [*_metrics(history.last()), f"{time.monotonic() - self._epoch_started:.1f} s"]
        line = "  ".join(parts)
        if self._progress is None or self._task is None:
            self.console.out(line, highlight=False)
            return
        self._progress.remove_task(self._task)
        self._task = None
        self._progress.refresh()
        self._progress.console.print(
            Text(line), no_wrap=True, overflow="ellipsis", crop=True, highlight=False
        )

    def on_fit_end(self, trainer: Trainer, history: History) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
        self._active = False

    def _draw(self) -> None:
        assert self._progress is not None and self._task is not None
        self._last_draw = time.monotonic()
        self._progress.update(
            self._task, completed=self._done, stats=self._step_stats, refresh=True
        )


class _EtaColumn(ProgressColumn):
    """``ETA 0:01:23`` while an epoch runs, from rich's recent batches/s; ``-:--:--`` until known."""

    def render(self, task: Task) -> Text:
        remaining = task.time_remaining
        if remaining is None:
            return Text("ETA -:--:--", style="progress.remaining")
        minutes, seconds = divmod(int(remaining), 60)
        hours, minutes = divmod(minutes, 60)
        return Text(f"ETA {hours:d}:{minutes:02d}:{seconds:02d}", style="progress.remaining")


def _fixed(width: int | None, *, ratio: int | None = None) -> Column:
    """A table column that never wraps: text that does not fit is cut with an ellipsis."""
    return Column(width=width, ratio=ratio, no_wrap=True, overflow="ellipsis")


def _metrics(record: dict[str, float]) -> list[str]:
    """``["loss 0.1234", "val_loss 0.1532", "val_acc 0.9712"]`` from one History record."""
    parts = [f"loss {record['train_loss']:.4g}"] if "train_loss" in record else []
    return parts + [f"{key} {value:.4g}" for key, value in record.items() if key.startswith("val_")]
