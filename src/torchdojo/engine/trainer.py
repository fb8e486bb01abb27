"""The training loop: one explicit ``fit`` built from small named steps.

Taught in lessons/00_tour.py. The loop keeps metrics as tensors and reads them only every
``log_every`` steps, so a step costs no host sync on an accelerator; on this 2-core CPU the
whole loop stays within 5 % of a bare tensor loop (benchmarks/engine_overhead.py).
"""

from __future__ import annotations

import contextlib
import logging
import math
import signal
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor, nn
from torchmetrics import Metric, MetricCollection

from torchdojo.engine import distributed as dist
from torchdojo.engine.callbacks import Callback, StepOutput
from torchdojo.engine.checkpoint import Checkpoint, CheckpointManager, load_checkpoint
from torchdojo.engine.loader import position_loader
from torchdojo.utils.device import choose_device, forward_flops, pick_num_threads
from torchdojo.utils.seed import rng_state, seed_everything, set_deterministic, set_rng_state

log = logging.getLogger(__name__)
LossFn = Callable[[Tensor, Tensor], Tensor]
Precision = Literal["32", "bf16", "16"]


@dataclass(frozen=True)
class TrainerConfig:
    """How to train; what to train is given to :meth:`Trainer.fit`.

    Args:
        epochs: Passes over the training data.
        max_steps: Stop after this many optimizer steps (None: no limit).
        time_budget: Stop cleanly after this many seconds of training (None: no limit).
        device: ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ...
        precision: ``"32"``, ``"bf16"`` (autocast) or ``"16"`` (autocast + GradScaler, CUDA only).
        compile: Wrap the model in ``torch.compile`` (off by default: on CPU it is slower to
            train small models, measured 0.85x plus compile time).
        channels_last: Use the channels-last memory format for 4-D inputs (CNNs).
        grad_clip: Clip the global gradient norm to this value.
        accumulate: Optimizer step every ``accumulate`` batches.
        scheduler_interval: Step the LR scheduler every ``"step"`` or every ``"epoch"``.
        log_every: Read and log the running loss every this many steps.
        checkpoint_every: Save a checkpoint every this many steps (None: epoch ends only).
        keep_last: Step checkpoints to keep.
        monitor: The epoch metric that picks ``best.safetensors`` (e.g. ``"val_acc"``).
        monitor_mode: ``"max"`` or ``"min"``.
        seed: Seeds Python, NumPy and torch at the start of ``fit``.
        deterministic: Call ``torch.use_deterministic_algorithms(True)``.
        num_threads: CPU intra-op threads (None: the policy in
            :func:`torchdojo.utils.device.pick_num_threads`).
        nan_guard: Stop with a diagnosis when the loss becomes NaN or infinite.
    """

    epochs: int = 1
    max_steps: int | None = None
    time_budget: float | None = None
    device: str = "auto"
    precision: Precision = "32"
    compile: bool = False
    channels_last: bool = False
    grad_clip: float | None = None
    accumulate: int = 1
    scheduler_interval: Literal["step", "epoch"] = "step"
    log_every: int = 50
    checkpoint_every: int | None = None
    keep_last: int = 2
    monitor: str | None = None
    monitor_mode: Literal["min", "max"] = "max"
    seed: int = 0
    deterministic: bool = False
    num_threads: int | None = None
    nan_guard: bool = True


@dataclass
class Loaders:
    """The batches to train on and to validate on (``val`` may be None)."""

    train: Iterable[Any]
    val: Iterable[Any] | None = None


@dataclass
class TrainState:
    """Where training is: what a checkpoint must restore besides weights."""

    epoch: int = 0
    step: int = 0
    batch_in_epoch: int = 0
    best: float | None = None
    train_time: float = 0.0
    num_threads: int = 0  # the CPU thread count chosen at the first step, kept on resume


class History:
    """One record per epoch: ``{"epoch", "train_loss", "val_loss", "val_<metric>", ...}``."""

    def __init__(self, records: list[dict[str, float]] | None = None) -> None:
        self.records: list[dict[str, float]] = list(records or [])

    def append(self, record: dict[str, float]) -> None:
        self.records.append(record)

    def last(self) -> dict[str, float]:
        return self.records[-1] if self.records else {}

    def best(self, key: str, mode: str = "max") -> float | None:
        values = [r[key] for r in self.records if key in r]
        if not values:
            return None
        return max(values) if mode == "max" else min(values)

    def summary(self) -> str:
        """One line with the last epoch's numbers."""
        return ", ".join(f"{k}={v:.4g}" for k, v in self.last().items())


class NonFiniteLossError(RuntimeError):
    """The loss became NaN/inf; the message names the step, the loss and the guilty op."""


class TrainingInterrupted(RuntimeError):
    """SIGTERM or Ctrl-C stopped the run after writing a checkpoint."""

    def __init__(self, checkpoint: Path | None) -> None:
        self.checkpoint = checkpoint
        super().__init__(f"training interrupted; checkpoint: {checkpoint}")


class Trainer:
    """Train a model with an explicit loop, callbacks, AMP, checkpoints and exact resume.

    Subclass and override :meth:`training_step` / :meth:`validation_step` for tasks whose batch
    is not ``(x, y)`` with a loss on ``model(x)``.

    Args:
        config: How to train.
        callbacks: Extra callbacks (a progress bar, a metrics logger, early stopping, ...).
        metrics: torchmetrics for validation, keyed by name (logged as ``val_<name>``).
        checkpoint_dir: Where checkpoints go (None: no checkpoints).
    """

    def __init__(
        self,
        config: TrainerConfig | None = None,
        *,
        callbacks: Iterable[Callback] = (),
        metrics: Mapping[str, Metric] | None = None,
        checkpoint_dir: str | Path | None = None,
    ) -> None:
        self.config = config or TrainerConfig()
        self.callbacks = list(callbacks)
        self.metrics = MetricCollection(dict(metrics)) if metrics else None
        self.checkpoints = (
            CheckpointManager(checkpoint_dir, keep_last=self.config.keep_last)
            if checkpoint_dir
            else None
        )
        self.state = TrainState()
        self.history = History()
        self.device = torch.device("cpu")
        self.env: dict[str, Any] = {}
        self.resumed_from: Path | None = None
        self.stop_reason: str | None = None
        self._best_now = False
        self.last_checkpoint: Path | None = None
        self._signal: int | None = None
        self.model: nn.Module
        self.optimizer: torch.optim.Optimizer
        self.scheduler: Any = None
        self.loss_fn: LossFn
        self.num_train_batches: int | None = None

    # ----------------------------------------------------------------- the loop
    def fit(
        self,
        model: nn.Module,
        loaders: Loaders,
        loss_fn: LossFn,
        optimizer: torch.optim.Optimizer,
        scheduler: Any = None,
        *,
        resume: str | Path | Checkpoint | None = None,
    ) -> History:
        """Train ``model`` and return its per-epoch history."""
        self._setup(model, loss_fn, optimizer, scheduler, loaders, resume)
        self._emit("on_fit_start", self)
        with self._signals_handled():
            for epoch in range(self.state.epoch, self.config.epochs):
                self.state.epoch = epoch
                self._emit("on_epoch_start", self, epoch)
                train_loss = self._train_epoch(loaders.train)
                if self._signal is not None:
                    self._interrupt()
                self._end_epoch(train_loss, loaders.val)
                if self.stop_reason:
                    break
        self._emit("on_fit_end", self, self.history)
        return self.history

    def _train_epoch(self, loader: Iterable[Any]) -> float:
        self.model.train()
        if not position_loader(
            loader, epoch=self.state.epoch, start_batch=self.state.batch_in_epoch
        ):
            raise ValueError(
                "this loader cannot resume mid-epoch; build it with "
                "torchdojo.engine.make_loader or TensorLoader"
            )
        meter = _LossMeter(self.device)
        window = _LossMeter(self.device)
        tick = time.perf_counter()
        for batch in loader:
            if not self._threads_chosen:  # once, before the clock starts: it is set-up time
                self._choose_threads(self._to_device(batch))
                tick = time.perf_counter()
                window.reset()
            output = self._optimizer_step(batch)
            window.add(output.loss, output.batch_size)
            now = time.perf_counter()
            self.state.train_time += now - tick
            tick = now
            if output.optimizer_stepped and self._is_log_step():
                meter.merge(window)
                output.log = self._log_row(window)
            self._emit("on_batch_end", self, output)
            if self._should_stop_early():
                break
        else:
            self.state.batch_in_epoch = 0
        meter.merge(window)
        return meter.mean()

    def _optimizer_step(self, batch: Any) -> StepOutput:
        cfg = self.config
        batch = self._to_device(batch)
        with self._autocast():
            output = self.training_step(batch)
        if (
            cfg.nan_guard
            and self._check_finite_now()
            and not math.isfinite(float(output.loss.detach()))
        ):
            raise self._diagnose_nonfinite(batch, output.loss)
        self._backward(output.loss / cfg.accumulate)
        self.state.batch_in_epoch += 1
        output.optimizer_stepped = self.state.batch_in_epoch % cfg.accumulate == 0
        if output.optimizer_stepped:
            self._apply_gradients()
            self.state.step += 1
            if self.scheduler is not None and cfg.scheduler_interval == "step":
                self.scheduler.step()
        return output

    def training_step(self, batch: Any) -> StepOutput:
        """Forward one ``(x, y)`` batch and return its loss; override for other tasks."""
        x, y = batch
        logits = self.model(x)
        return StepOutput(loss=self.loss_fn(logits, y), batch_size=len(y))

    def validation_step(self, batch: Any) -> tuple[Tensor, Tensor, Tensor]:
        """Return ``(loss, predictions, targets)`` for one batch; override for other tasks."""
        x, y = batch
        logits = self.model(x)
        return self.loss_fn(logits, y), logits, y

    @torch.inference_mode()
    def evaluate(self, loader: Iterable[Any]) -> dict[str, float]:
        """Mean loss and every metric over ``loader`` (reduced across DDP ranks)."""
        self.model.eval()
        if self.metrics is not None:
            self.metrics.reset()
        meter = _LossMeter(self.device)
        for batch in loader:
            batch = self._to_device(batch)
            with self._autocast():
                loss, preds, target = self.validation_step(batch)
            meter.add(loss, len(target))
            if self.metrics is not None:
                self.metrics.update(preds.float(), target)
        results = {"loss": meter.mean(reduce=True)}
        if self.metrics is not None:
            results.update({k: float(v) for k, v in self.metrics.compute().items()})
        self.model.train()
        return results

    def _end_epoch(self, train_loss: float, val_loader: Iterable[Any] | None) -> None:
        if self.scheduler is not None and self.config.scheduler_interval == "epoch":
            self.scheduler.step()
        record: dict[str, float] = {"epoch": self.state.epoch, "train_loss": train_loss}
        if val_loader is not None:
            record.update({f"val_{k}": v for k, v in self.evaluate(val_loader).items()})
        record["train_time"] = self.state.train_time
        self.history.append(record)
        finished_epoch = self.state.batch_in_epoch == 0
        if finished_epoch:
            self.state.epoch += 1
        self._update_best(record)
        self._emit("on_epoch_end", self, self.history)
        self.save_checkpoint(is_best=self._best_now)

    # ----------------------------------------------------------- stop requests
    def request_stop(self, reason: str) -> None:
        """Ask the loop to stop after this step (callbacks use it)."""
        if self.stop_reason is None:
            self.stop_reason = reason
            log.info("stopping: %s", reason)

    def _should_stop_early(self) -> bool:
        cfg = self.config
        if cfg.max_steps is not None and self.state.step >= cfg.max_steps:
            self.request_stop(f"reached max_steps={cfg.max_steps}")
        if cfg.time_budget is not None and self.state.train_time >= cfg.time_budget:
            self.request_stop(f"time budget of {cfg.time_budget:g} s spent")
        if self._signal is not None:
            return True
        if (
            self.checkpoints
            and cfg.checkpoint_every
            and self._at_step_boundary()
            and (self.state.step % cfg.checkpoint_every == 0)
        ):
            self.save_checkpoint()
        return self.stop_reason is not None

    def _interrupt(self) -> None:
        path = self.save_checkpoint() if self._at_step_boundary() else self.last_checkpoint
        raise TrainingInterrupted(path)

    @contextlib.contextmanager
    def _signals_handled(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def handler(signum: int, frame: Any) -> None:
            if self._signal is not None:  # a second Ctrl-C stops at once
                raise KeyboardInterrupt
            self._signal = signum

        previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            yield
        finally:
            for s, h in previous.items():
                signal.signal(s, h)

    # ------------------------------------------------------------- checkpoints
    def save_checkpoint(self, *, is_best: bool = False) -> Path | None:
        """Write a checkpoint now (rank 0 only); returns its path."""
        if self.checkpoints is None or not dist.is_main_process():
            return None
        self.last_checkpoint = self.checkpoints.save(
            self.state_dict(), step=self.state.step, is_best=is_best
        )
        return self.last_checkpoint

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue training bit for bit."""
        return {
            "model": self.unwrapped_model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "scaler": self._scaler.state_dict() if self._scaler is not None else None,
            "trainer": asdict(self.state),
            "history": self.history.records,
            "rng": rng_state(),
            "callbacks": {type(c).__name__: c.state_dict() for c in self.callbacks},
            "config": asdict(self.config),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned (call after ``_setup``)."""
        self.unwrapped_model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None and state["scheduler"] is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        if self._scaler is not None and state["scaler"] is not None:
            self._scaler.load_state_dict(state["scaler"])
        self.state = TrainState(**state["trainer"])
        self.history = History(state["history"])
        for c in self.callbacks:
            c.load_state_dict(state["callbacks"].get(type(c).__name__, {}))
        set_rng_state(state["rng"])

    # ------------------------------------------------------------------- setup
    def _setup(
        self,
        model: nn.Module,
        loss_fn: LossFn,
        optimizer: torch.optim.Optimizer,
        scheduler: Any,
        loaders: Loaders,
        resume: str | Path | Checkpoint | None,
    ) -> None:
        cfg = self.config
        self.device = dist.device_for_rank(choose_device(cfg.device))
        num_params = sum(p.numel() for p in model.parameters())
        self._threads_chosen = self.device.type != "cpu" or cfg.num_threads is not None
        if cfg.num_threads is not None:
            torch.set_num_threads(cfg.num_threads)
        seed_everything(cfg.seed)
        if cfg.deterministic:
            set_deterministic(True)
        if cfg.precision == "16" and self.device.type != "cuda":
            raise ValueError(
                "precision '16' needs CUDA: fp16 has no fast path on CPU "
                "(measured 2.5 GFLOP/s); use --precision bf16"
            )
        model.to(self.device)
        if cfg.channels_last:
            model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        self.unwrapped_model = model
        self.model = dist.wrap_model(model, self.device)
        if cfg.compile:
            self.model = torch.compile(self.model)  # type: ignore[assignment]
        self.loss_fn, self.optimizer, self.scheduler = loss_fn, optimizer, scheduler
        self._scaler = torch.amp.GradScaler("cuda") if cfg.precision == "16" else None
        if self.metrics is not None:
            self.metrics.to(self.device)
        with contextlib.suppress(TypeError):
            self.num_train_batches = len(loaders.train)  # type: ignore[arg-type]
        self.env = {
            "device": str(self.device),
            "num_threads": torch.get_num_threads(),
            "num_params": num_params,
            "precision": cfg.precision,
            "world_size": dist.world_size(),
            "torch": torch.__version__,
        }
        if resume is not None:
            self._resume(resume)

    def _resume(self, resume: str | Path | Checkpoint) -> None:
        if isinstance(resume, Checkpoint):
            checkpoint: Checkpoint | None = resume
        elif Path(resume).is_dir():
            checkpoint = CheckpointManager(resume).load_latest()
        else:
            checkpoint = load_checkpoint(resume)
        if checkpoint is None:
            raise FileNotFoundError(f"no readable checkpoint in {resume}; start a new run instead")
        self.load_state_dict(checkpoint.state)
        self.resumed_from = checkpoint.path
        log.info(
            "resumed from %s at epoch %d, step %d",
            checkpoint.path,
            self.state.epoch,
            self.state.step,
        )

    # ----------------------------------------------------------------- helpers
    def _choose_threads(self, batch: Any) -> None:
        """CPU thread policy from the first batch's cost (see ``pick_num_threads``)."""
        self._threads_chosen = True
        if self.state.num_threads:  # a resumed run keeps its thread count: same arithmetic
            torch.set_num_threads(self.state.num_threads)
            self.env.update(num_threads=self.state.num_threads)
            return
        try:
            x = batch[0]  # count one sample (cheap), scale to the batch; x 3 for the backward
            flops: float = 3 * len(x) * forward_flops(self.unwrapped_model, x[:1])
        except Exception:  # noqa: BLE001 - custom batches: fall back to all cores
            flops = float("inf")
        threads = pick_num_threads(flops)
        torch.set_num_threads(threads)
        self.state.num_threads = threads
        self.env.update(num_threads=threads, step_gflops=round(flops / 1e9, 3))

    def _update_best(self, record: dict[str, float]) -> None:
        key, value = self.config.monitor, None
        if key is not None:
            value = record.get(key)
        better = value is not None and (
            self.state.best is None
            or (
                value > self.state.best
                if self.config.monitor_mode == "max"
                else value < self.state.best
            )
        )
        self._best_now = better
        if better:
            self.state.best = value

    def _at_step_boundary(self) -> bool:
        return self.state.batch_in_epoch % self.config.accumulate == 0

    def _is_log_step(self) -> bool:
        return self.state.step % self.config.log_every == 0 or (
            self.num_train_batches is not None
            and self.state.batch_in_epoch == self.num_train_batches
        )

    def _check_finite_now(self) -> bool:
        # On CPU a check costs ~0.3 us; on an accelerator it is a host sync, so check on log steps.
        return self.device.type == "cpu" or self.state.step % self.config.log_every == 0

    def _log_row(self, window: _LossMeter) -> dict[str, float]:
        elapsed = max(window.elapsed(), 1e-9)
        row = {
            "loss": window.mean(),
            "lr": self.optimizer.param_groups[0]["lr"],
            "samples_per_s": window.count / elapsed,
        }
        window.reset()
        return row

    def _to_device(self, batch: Any) -> Any:
        if isinstance(batch, Tensor):
            x = batch.to(self.device, non_blocking=True)
            if self.config.channels_last and x.dim() == 4:
                x = x.contiguous(memory_format=torch.channels_last)
            return x
        if isinstance(batch, list | tuple):
            return type(batch)(self._to_device(b) for b in batch)
        if isinstance(batch, dict):
            return {k: self._to_device(v) for k, v in batch.items()}
        return batch

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        precision = self.config.precision
        if precision == "32":
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if precision == "bf16" else torch.float16
        return torch.autocast(device_type=self.device.type, dtype=dtype)

    def _backward(self, loss: Tensor) -> None:
        if self._scaler is not None:
            self._scaler.scale(loss).backward()
        else:
            loss.backward()

    def _apply_gradients(self) -> None:
        if self.config.grad_clip is not None:
            if self._scaler is not None:
                self._scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
        if self._scaler is not None:
            self._scaler.step(self.optimizer)
            self._scaler.update()
        else:
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)

    def _diagnose_nonfinite(self, batch: Any, loss: Tensor) -> NonFiniteLossError:
        culprit = _first_nonfinite_module(self.unwrapped_model, lambda: self.training_step(batch))
        backward_op = "none found"
        with warnings.catch_warnings():  # its warnings repeat what the error below says
            warnings.filterwarnings("ignore", "Anomaly Detection has been enabled")
            warnings.filterwarnings("ignore", "Error detected in")
            with torch.autograd.detect_anomaly(check_nan=True):
                try:
                    self.training_step(batch).loss.backward()
                except RuntimeError as err:
                    backward_op = str(err).splitlines()[0]
        self.optimizer.zero_grad(set_to_none=True)
        return NonFiniteLossError(
            f"loss became {loss.item()} at step {self.state.step} (epoch {self.state.epoch}, batch "
            f"{self.state.batch_in_epoch}); first module with a non-finite output: {culprit}; "
            f"anomaly mode on backward: {backward_op}. Try a lower lr, grad_clip, or fp32."
        )

    def _emit(self, event: str, *args: Any) -> None:
        for callback in self.callbacks:
            getattr(callback, event)(*args)


class _LossMeter:
    """Sum of loss x samples as a tensor: no host sync until read."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.reset()

    def reset(self) -> None:
        self.total = torch.zeros((), device=self.device, dtype=torch.float64)
        self.count = 0
        self.started = time.perf_counter()

    def add(self, loss: Tensor, n: int) -> None:
        self.total.add_(loss.detach(), alpha=n)  # one fused op, no host sync
        self.count += n

    def merge(self, other: _LossMeter) -> None:
        """Add ``other``'s running sums (once per log step, not per step)."""
        self.total += other.total
        self.count += other.count

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def mean(self, *, reduce: bool = False) -> float:
        total, count = self.total, torch.tensor(float(self.count), device=self.device)
        if reduce:
            total, count = dist.all_reduce_sum(total.clone()), dist.all_reduce_sum(count)
        return float(total / count) if float(count) else math.nan


def _first_nonfinite_module(model: nn.Module, forward: Callable[[], Any]) -> str:
    found: list[str] = []

    def hook(name: str) -> Callable[..., None]:
        def check(module: nn.Module, inputs: Any, output: Any) -> None:
            if not found and isinstance(output, Tensor) and not torch.isfinite(output).all():
                found.append(f"{name or 'model'} ({type(module).__name__})")

        return check

    handles = [m.register_forward_hook(hook(n)) for n, m in model.named_modules()]
    try:
        with torch.no_grad():
            forward()
    finally:
        for h in handles:
            h.remove()
    return found[0] if found else "none (the loss function itself)"


__all__ = [
    "History",
    "Loaders",
    "NonFiniteLossError",
    "Trainer",
    "TrainerConfig",
    "TrainState",
    "TrainingInterrupted",
]
