"""The progress callback: right counts and ETA for every epoch, in a terminal and when piped.

A rich Console writing to a StringIO stands in for the terminal (``force_terminal=True``) and for
a pipe or log file (``force_terminal=False``). A fake trainer drives the events exactly; a tiny
real Trainer checks the wiring.
"""

from __future__ import annotations

import io
import re
import time
from types import SimpleNamespace
from typing import Any

import pytest
import torch
from rich.console import Console
from rich.progress import Progress
from torch import nn

from torchdojo.engine import Loaders, ProgressBar, TensorLoader, Trainer, TrainerConfig
from torchdojo.engine.callbacks import StepOutput
from torchdojo.engine.progress import _EtaColumn
from torchdojo.engine.trainer import History

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
RECORD = {"train_loss": 0.123456, "val_loss": 0.2, "val_acc": 0.97123, "train_time": 1.0}
PLAIN_LINE = re.compile(
    r"^epoch (\d+)/(\d+)  loss 0\.1235  val_loss 0\.2  val_acc 0\.9712  \d+\.\d s$"
)


def console(*, terminal: bool, width: int = 100) -> tuple[Console, io.StringIO]:
    buffer = io.StringIO()
    return Console(file=buffer, force_terminal=terminal, width=width, color_system=None), buffer


def drive(
    bar: ProgressBar,
    *,
    epochs: int = 3,
    batches: int = 23,
    stop_at: int | None = None,
    start_batch: int = 0,
    pause: float = 0.0,
    record: dict[str, float] | None = None,
) -> None:
    """Send the trainer's events for ``epochs`` epochs of ``batches`` batches; the loss is read
    only on the last batch, as with ``log_every`` larger than an epoch (digits-mlp: 23 batches)."""
    trainer = SimpleNamespace(
        config=SimpleNamespace(epochs=epochs),
        num_train_batches=batches,
        state=SimpleNamespace(batch_in_epoch=start_batch),
    )
    history = History()
    bar.on_fit_start(trainer)  # type: ignore[arg-type]
    for epoch in range(epochs):
        bar.on_epoch_start(trainer, epoch)  # type: ignore[arg-type]
        last = stop_at if stop_at is not None else batches
        for batch in range(trainer.state.batch_in_epoch, last):
            time.sleep(pause)
            trainer.state.batch_in_epoch = batch + 1
            log = {"loss": 0.5, "samples_per_s": 1234.0} if batch + 1 == last else None
            output = StepOutput(loss=torch.tensor(0.5), batch_size=8, log=log)
            bar.on_batch_end(trainer, output)  # type: ignore[arg-type]
        if stop_at is None:
            trainer.state.batch_in_epoch = 0  # the trainer resets it after a whole epoch
        history.append({"epoch": float(epoch), **(record or RECORD)})
        bar.on_epoch_end(trainer, history)  # type: ignore[arg-type]
        if stop_at is not None:
            break
    bar.on_fit_end(trainer, history)  # type: ignore[arg-type]


def screen_lines(raw: str) -> list[str]:
    """Every line the terminal drew, live redraws included, without control codes."""
    return [line for line in re.split(r"[\r\n]", ANSI.sub("", raw)) if line.strip()]


def kept_lines(raw: str) -> list[str]:
    """The lines that stay on screen: each ends with a newline; live redraws never do."""
    return [ANSI.sub("", line).split("\r")[-1] for line in raw.split("\n")[:-1]]


# ------------------------------------------------------------------------------ not a terminal


def test_piped_output_is_one_plain_line_per_epoch() -> None:
    out, buffer = console(terminal=False)
    drive(ProgressBar(out), epochs=40)
    lines = buffer.getvalue().splitlines()
    assert len(lines) == 40
    for number, line in enumerate(lines, start=1):
        match = PLAIN_LINE.match(line)
        assert match, line
        assert match.groups() == (str(number), "40")
    assert "\x1b" not in buffer.getvalue() and "\r" not in buffer.getvalue()


def test_piped_output_does_not_wrap_long_lines() -> None:
    out, buffer = console(terminal=False, width=40)
    record = {**RECORD, **{f"val_metric_with_a_long_name_{i}": 0.5 for i in range(5)}}
    drive(ProgressBar(out), epochs=2, record=record)
    lines = buffer.getvalue().splitlines()
    assert len(lines) == 2
    assert all(line.endswith(" s") and "val_metric_with_a_long_name_4" in line for line in lines)


def test_piped_cut_epoch_says_where_it_stopped() -> None:
    out, buffer = console(terminal=False)
    drive(ProgressBar(out), epochs=5, batches=16, stop_at=8)
    [line] = buffer.getvalue().splitlines()
    assert line.startswith("epoch 1/5  stopped at batch 8/16  loss 0.1235")


# ---------------------------------------------------------------------------------- a terminal


def test_terminal_keeps_one_line_per_epoch_with_its_full_count() -> None:
    out, buffer = console(terminal=True)
    drive(ProgressBar(out, min_interval=3600), epochs=40)  # no redraw between epoch edges
    kept = kept_lines(buffer.getvalue())
    assert len(kept) == 40
    for number, line in enumerate(kept, start=1):
        assert line.startswith(f"epoch {number}/40  23/23  loss 0.1235  val_loss 0.2"), line
        assert line.endswith(" s")


def test_terminal_resumed_epoch_counts_from_its_start() -> None:
    out, buffer = console(terminal=True)
    drive(ProgressBar(out), epochs=2, start_batch=10)
    drawn = screen_lines(buffer.getvalue())
    assert any(re.search(r"epoch 1/2\s.*\b10/23 ", line) for line in drawn)
    assert [line[:17] for line in kept_lines(buffer.getvalue())] == [
        "epoch 1/2  23/23 ",
        "epoch 2/2  23/23 ",
    ]


def test_terminal_cut_epoch_says_where_it_stopped() -> None:
    out, buffer = console(terminal=True)
    drive(ProgressBar(out), epochs=5, batches=16, stop_at=8)
    [line] = kept_lines(buffer.getvalue())
    assert line.startswith("epoch 1/5  stopped at batch 8/16  loss")


@pytest.mark.parametrize("width", [40, 80, 120])
def test_terminal_lines_never_wrap(width: int) -> None:
    out, buffer = console(terminal=True, width=width)
    record = {**RECORD, **{f"val_metric_with_a_long_name_{i}": 0.5 for i in range(5)}}
    drive(ProgressBar(out, min_interval=0), epochs=3, record=record)
    raw = buffer.getvalue()
    assert raw.count("\n") == 3  # one kept line per epoch; a wrapped row would add more
    assert all(len(line) <= width for line in screen_lines(raw))
    assert all(line.startswith(f"epoch {n}/3  23/23") for n, line in enumerate(kept_lines(raw), 1))


def test_terminal_eta_is_known_in_every_epoch() -> None:
    out, buffer = console(terminal=True)
    drive(ProgressBar(out, min_interval=0), epochs=3, batches=12, pause=0.005)
    drawn = screen_lines(buffer.getvalue())
    for number in (1, 2, 3):
        running = [
            line for line in drawn if line.startswith(f"epoch {number}/3 ") and "ETA" in line
        ]
        assert any(re.search(r"ETA 0:00:0\d", line) for line in running), running


def test_eta_column_formats_the_remaining_time() -> None:
    clock = [0.0]
    progress = Progress(get_time=lambda: clock[0])
    task_id = progress.add_task("epoch", total=100)
    column = _EtaColumn()
    task = progress.tasks[0]
    assert column.render(task).plain == "ETA -:--:--"  # no speed yet
    for _ in range(5):
        clock[0] += 1.0
        progress.advance(task_id, 10)  # 10 batches/s, so 50 left take 5 s
    assert column.render(task).plain == "ETA 0:00:05"


# ---------------------------------------------------------------------------- a real trainer


def tiny_fit(bar: ProgressBar, **config: Any) -> Trainer:
    torch.manual_seed(0)
    torch.set_num_threads(1)
    x, y = torch.randn(23 * 4, 3), torch.randint(0, 2, (23 * 4,))
    model = nn.Linear(3, 2)
    trainer = Trainer(TrainerConfig(device="cpu", log_every=50, **config), callbacks=[bar])
    trainer.fit(
        model,
        Loaders(TensorLoader(x, y, batch_size=4), TensorLoader(x, y, batch_size=8, shuffle=False)),
        nn.functional.cross_entropy,
        torch.optim.SGD(model.parameters(), lr=0.1),
    )
    return trainer


def test_real_trainer_piped() -> None:
    out, buffer = console(terminal=False)
    tiny_fit(ProgressBar(out), epochs=3)
    lines = buffer.getvalue().splitlines()
    assert [line.split("  ")[0] for line in lines] == ["epoch 1/3", "epoch 2/3", "epoch 3/3"]
    assert all(re.search(r"  loss [0-9.]+  val_loss [0-9.]+  \d+\.\d s$", line) for line in lines)


def test_real_trainer_in_a_terminal() -> None:
    out, buffer = console(terminal=True)
    tiny_fit(ProgressBar(out), epochs=3)
    kept = kept_lines(buffer.getvalue())
    assert [line[:17] for line in kept] == [f"epoch {n}/3  23/23 " for n in (1, 2, 3)]


def test_real_trainer_stopped_by_a_step_limit() -> None:
    out, buffer = console(terminal=True)
    tiny_fit(ProgressBar(out), epochs=3, max_steps=30)
    first, second = kept_lines(buffer.getvalue())
    assert first.startswith("epoch 1/3  23/23  loss ")
    assert second.startswith("epoch 2/3  stopped at batch 7/23  loss ")
