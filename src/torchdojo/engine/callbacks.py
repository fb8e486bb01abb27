"""Training callbacks: a few typed events, and the callbacks every run uses.

Events, in order: ``on_fit_start`` -> (``on_epoch_start`` -> (``on_batch_start`` ->
``on_before_step``* -> ``on_batch_end``)* -> ``on_validation_start`` -> ``on_validation_end``
-> ``on_epoch_end``)* -> ``on_fit_end``. Techniques are callbacks, so they compose: EMA
(validates on the average), mixing (changes the batch), freezing (sets what trains at each epoch
start), gradient clipping (before each optimizer step), early stopping. Taught in
lessons/00_tour.py.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

if TYPE_CHECKING:
    from torchdojo.engine.trainer import History, Trainer


@dataclass
class StepOutput:
    """What one training step returns.

    Args:
        loss: The (unscaled) loss tensor of the step.
        batch_size: Samples in the step (on this rank).
        log: Floats to log; set by the trainer on logging steps only (every ``log_every``).
        optimizer_stepped: False on the micro-steps of gradient accumulation.
        values: Other per-step numbers to average and log (a GAN's ``d_loss``, ``g_loss``).
        extra: Anything else callbacks may want (not logged).
    """

    loss: Tensor
    batch_size: int
    log: dict[str, float] | None = None
    optimizer_stepped: bool = True
    values: dict[str, Tensor] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class EvalOutput:
    """What one validation step returns; ``preds`` and ``target`` go to every metric's
    ``update(preds, target)`` as they are (tensors, or lists of box dicts for mAP, ...).

    Args:
        loss: The batch's loss, or None when validation has no loss (samples, boxes).
        preds: Predictions in the form the metrics take.
        target: Targets in the form the metrics take.
        batch_size: Samples in the batch (weights the mean loss).
    """

    loss: Tensor | None
    preds: Any
    target: Any
    batch_size: int


class Callback:
    """Base class for training callbacks; override only the events you need."""

    def on_fit_start(self, trainer: Trainer) -> None:
        """Called once the model, optimizer and (on resume) state are ready."""

    def on_epoch_start(self, trainer: Trainer, epoch: int) -> None:
        """Called before the first batch of ``epoch``."""

    def on_batch_start(self, trainer: Trainer, batch: Any) -> Any:
        """Called with each training batch (on the device); returns the batch to train on."""
        return batch

    def on_before_step(self, trainer: Trainer, optimizer: torch.optim.Optimizer) -> None:
        """Called after the backward pass, before ``optimizer.step()`` (gradients unscaled)."""

    def on_batch_end(self, trainer: Trainer, output: StepOutput) -> None:
        """Called after each training step; ``output.log`` is set on logging steps."""

    def on_validation_start(self, trainer: Trainer) -> None:
        """Called before a validation pass (e.g. to swap in averaged weights)."""

    def on_validation_end(self, trainer: Trainer) -> None:
        """Called after a validation pass, with the models back in train mode."""

    def on_epoch_end(self, trainer: Trainer, history: History) -> None:
        """Called after validation of each epoch; ``history`` already holds this epoch's stats."""

    def on_fit_end(self, trainer: Trainer, history: History) -> None:
        """Called once when training ends, normally or by a stop request."""

    def state_dict(self) -> dict[str, Any]:
        """State to keep in checkpoints (JSON-able)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""


class GradientClipping(Callback):
    """Clip the global gradient norm of the parameters an optimizer steps to ``max_norm``.

    Args:
        max_norm: The largest gradient norm allowed.
    """

    def __init__(self, max_norm: float) -> None:
        if not max_norm > 0:
            raise ValueError(f"max_norm must be > 0, got {max_norm}; 1.0 is a common choice")
        self.max_norm = max_norm

    def on_before_step(self, trainer: Trainer, optimizer: torch.optim.Optimizer) -> None:
        params = [p for group in optimizer.param_groups for p in group["params"]]
        nn.utils.clip_grad_norm_(params, self.max_norm)


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved for ``patience`` epochs.

    Args:
        monitor: A key of the epoch record, e.g. ``"val_loss"`` or ``"val_acc"``.
        mode: ``"min"`` or ``"max"``.
        patience: Epochs without improvement before stopping.
        min_delta: The smallest change that counts as an improvement.
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        *,
        mode: str = "min",
        patience: int = 3,
        min_delta: float = 0.0,
    ) -> None:
        if mode not in {"min", "max"}:
            raise ValueError(f"mode must be 'min' or 'max', not {mode!r}")
        self.monitor, self.mode, self.patience, self.min_delta = monitor, mode, patience, min_delta
        self.best = math.inf if mode == "min" else -math.inf
        self.bad_epochs = 0

    def on_epoch_end(self, trainer: Trainer, history: History) -> None:
        value = history.last().get(self.monitor)
        if value is None:
            raise KeyError(
                f"EarlyStopping monitors {self.monitor!r}, which the run does not log; "
                f"logged: {', '.join(history.last())}"
            )
        better = (
            value < self.best - self.min_delta
            if self.mode == "min"
            else (value > self.best + self.min_delta)
        )
        if better:
            self.best, self.bad_epochs = value, 0
        else:
            self.bad_epochs += 1
            if self.bad_epochs >= self.patience:
                trainer.request_stop(
                    f"early stopping: {self.monitor} did not improve for "
                    f"{self.patience} epochs (best {self.best:.4g})"
                )

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "bad_epochs": self.bad_epochs}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best, self.bad_epochs = state["best"], state["bad_epochs"]


class MetricsLogger(Callback):
    """Append every log row to ``metrics.jsonl`` and TensorBoard event files in ``run_dir``."""

    def __init__(self, run_dir: str | Path, *, tensorboard: bool = True) -> None:
        self.run_dir = Path(run_dir)
        self.tensorboard = tensorboard
        self._writer: Any = None

    def on_fit_start(self, trainer: Trainer) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if trainer.resumed_from is not None:
            self._forget_after(trainer.state.step)
        if self.tensorboard and self._writer is None:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(log_dir=str(self.run_dir / "tensorboard"))

    def _forget_after(self, step: int) -> None:
        """Drop rows a killed run logged after the checkpoint it resumes from."""
        path = self.run_dir / "metrics.jsonl"
        if path.is_file():
            rows = [
                r
                for r in path.read_text(encoding="utf-8").splitlines()
                if r and json.loads(r)["step"] <= step
            ]
            path.write_text("".join(r + "\n" for r in rows), encoding="utf-8")

    def write(self, row: dict[str, Any]) -> None:
        """Append one row (also to TensorBoard, as ``split/key`` scalars at ``row['step']``)."""
        with open(self.run_dir / "metrics.jsonl", "a", encoding="utf-8") as fh:
            fh.write(json.dumps(row) + "\n")
        if self._writer is not None:
            for key, value in row.items():
                if key not in {"split", "step", "epoch"} and isinstance(value, int | float):
                    self._writer.add_scalar(f"{row['split']}/{key}", value, row["step"])

    def on_batch_end(self, trainer: Trainer, output: StepOutput) -> None:
        if output.log is not None:
            self.write(
                {
                    "split": "train",
                    "epoch": trainer.state.epoch,
                    "step": trainer.state.step,
                    **output.log,
                }
            )

    def on_epoch_end(self, trainer: Trainer, history: History) -> None:
        record = history.last()
        val = {k.removeprefix("val_"): v for k, v in record.items() if k.startswith("val_")}
        self.write({"split": "val", "epoch": record["epoch"], "step": trainer.state.step, **val})

    def on_fit_end(self, trainer: Trainer, history: History) -> None:
        if self._writer is not None:
            self._writer.flush()
            self._writer.close()
            self._writer = None
