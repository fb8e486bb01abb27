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
from torchmetrics import Metric

from torchdojo.engine import distributed as dist
from torchdojo.engine.callbacks import Callback, EvalOutput, GradientClipping, StepOutput
from torchdojo.engine.checkpoint import Checkpoint, CheckpointManager, load_checkpoint
from torchdojo.engine.loader import position_loader
from torchdojo.utils.device import choose_device, choose_threads, forward_flops
from torchdojo.utils.seed import rng_state, seed_everything, set_deterministic, set_rng_state

log = logging.getLogger(__name__)
LossFn = Callable[[Any, Any], Tensor]
Precision = Literal["32", "bf16", "16"]
StepFn = Callable[["Trainer", Any], StepOutput]
EvalFn = Callable[["Trainer", Any], EvalOutput]
Named = Mapping[str, Any]


@dataclass(frozen=True)
class TrainerConfig:
    """How to train; what to train is given to :meth:`Trainer.fit`.

    Args:
        epochs: Passes over the training data.
        max_steps: Stop after this many optimizer steps (None: no limit).
        time_budget: Stop cleanly after this many seconds of training (None: no limit).
        cpu_budget: Stop cleanly after the training steps used this many seconds of this
            process's CPU time (``time.process_time``: all its threads; None: no limit). Unlike
            ``time_budget`` it does not shrink when other jobs share the machine, so runs
            compared "at equal CPU time" are.
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
            :func:`torchdojo.utils.device.choose_threads`).
        nan_guard: Stop with a diagnosis when the loss becomes NaN or infinite.
    """

    epochs: int = 1
    max_steps: int | None = None
    time_budget: float | None = None
    cpu_budget: float | None = None
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
    train_cpu: float = 0.0  # process CPU seconds of the training steps (all threads)
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
    """Train one or several models with an explicit loop, callbacks, AMP, checkpoints and exact
    resume.

    The common case is one model, one optimizer and ``(x, y)`` batches with a loss on
    ``model(x)``: ``fit(model, loaders, loss_fn, optimizer, scheduler)``. Any other task passes
    dicts of models, optimizers and schedulers, and a ``step(trainer, batch) -> StepOutput`` that
    does its own backward passes and optimizer steps through :meth:`backward` and
    :meth:`step_optimizer` (a GAN's two players, each stepped in turn); ``eval_step(trainer,
    batch) -> EvalOutput`` hands validation metrics any structure (a list of box dicts for mAP,
    masks, samples). Batches may be any nest of tensors, lists, tuples and dicts. Taught in
    lessons/00_tour.py.

    Args:
        config: How to train.
        callbacks: Extra callbacks (a progress bar, a metrics logger, EMA, mixing, freezing,
            early stopping, ...).
        metrics: torchmetrics for validation, keyed by name (logged as ``val_<name>``); a metric
            whose ``compute`` returns a dict logs each scalar entry as ``val_<name>_<key>``.
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
        clipping = [GradientClipping(self.config.grad_clip)] if self.config.grad_clip else []
        self.callbacks = [*clipping, *callbacks]
        self.metrics = dict(metrics or {})
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
        self.models: dict[str, nn.Module] = {}  # as trained (DDP / compiled wrappers)
        self.unwrapped_models: dict[str, nn.Module] = {}
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.schedulers: dict[str, Any] = {}
        self.loss_fn: LossFn | None = None
        self.step_fn: StepFn | None = None
        self.eval_fn: EvalFn | None = None
        self.num_train_batches: int | None = None
        self._scaler: torch.amp.GradScaler | None = None

    # ------------------------------------------------------ the first model, for one-model tasks
    @property
    def model(self) -> nn.Module:
        """The first model as trained (wrapped in DDP / compile when those are on)."""
        return next(iter(self.models.values()))

    @property
    def unwrapped_model(self) -> nn.Module:
        """The first model itself."""
        return next(iter(self.unwrapped_models.values()))

    @property
    def optimizer(self) -> torch.optim.Optimizer:
        """The first optimizer (its first group's LR is the one logged)."""
        return next(iter(self.optimizers.values()))

    @property
    def scheduler(self) -> Any:
        """The first scheduler, or None."""
        return next(iter(self.schedulers.values()), None)

    # ----------------------------------------------------------------- the loop
    def fit(
        self,
        model: nn.Module | Mapping[str, nn.Module],
        loaders: Loaders,
        loss_fn: LossFn | None = None,
        optimizer: torch.optim.Optimizer | Mapping[str, torch.optim.Optimizer] | None = None,
        scheduler: Any = None,
        *,
        step: StepFn | None = None,
        eval_step: EvalFn | None = None,
        resume: str | Path | Checkpoint | None = None,
    ) -> History:
        """Train and return the per-epoch history.

        Args:
            model: A model, or a dict of named models (a GAN's ``{"G": ..., "D": ...}``).
            loaders: Training batches and (optionally) validation batches.
            loss_fn: ``loss_fn(model(x), y)`` for the default step; unused by a custom ``step``.
            optimizer: An optimizer or a dict of named optimizers.
            scheduler: An LR scheduler, a dict of named ones, or None.
            step: A custom training step (manual optimization, see the class docstring).
            eval_step: A custom validation step returning :class:`EvalOutput`.
            resume: A checkpoint file, a checkpoint folder or a loaded :class:`Checkpoint`.
        """
        if optimizer is None:
            raise ValueError("fit needs an optimizer (or a dict of named optimizers)")
        if step is None and loss_fn is None:
            raise ValueError("fit needs loss_fn for the default (x, y) step, or a custom step")
        if step is not None and self.config.accumulate != 1:
            raise ValueError("a custom step does its own optimizer steps; use accumulate=1")
        self.loss_fn, self.step_fn, self.eval_fn = loss_fn, step, eval_step
        self._setup(
            _named(model, "model"),
            _named(optimizer, "optimizer"),
            _named(scheduler, "scheduler"),
            loaders,
            resume,
        )
        self._emit("on_fit_start", self)
        with self._signals_handled():
            for epoch in range(self.state.epoch, self.config.epochs):
                self.state.epoch = epoch
                self._set_train_mode(True)
                self._emit("on_epoch_start", self, epoch)
                train_stats = self._train_epoch(loaders.train)
                if self._signal is not None and self.state.batch_in_epoch:  # mid-epoch
                    self._interrupt()
                self._end_epoch(train_stats, loaders.val)
                if self._signal is not None:  # came after the last batch: the epoch counts
                    raise TrainingInterrupted(self.last_checkpoint)
                if self.stop_reason:
                    break
        self._emit("on_fit_end", self, self.history)
        return self.history

    def _train_epoch(self, loader: Iterable[Any]) -> dict[str, float]:
        """One pass over ``loader`` (from where a resumed run stopped); the epoch's mean loss as
        ``train_loss`` and a custom step's other values as ``train_<name>``."""
        if not position_loader(
            loader, epoch=self.state.epoch, start_batch=self.state.batch_in_epoch
        ):
            raise ValueError(
                "this loader cannot resume mid-epoch; build it with "
                "torchdojo.engine.make_loader or TensorLoader"
            )
        meter = _LossMeter(self.device)
        window = _LossMeter(self.device)
        tick, cpu_tick = time.perf_counter(), time.process_time()
        for batch in loader:
            if not self._threads_chosen:  # once, before the clock starts: it is set-up time
                self._choose_threads(self._to_device(batch))
                tick, cpu_tick = time.perf_counter(), time.process_time()
                window.reset()
            output = self._run_step(batch)
            window.add(output.loss, output.batch_size, output.values)
            now, cpu_now = time.perf_counter(), time.process_time()
            self.state.train_time += now - tick
            self.state.train_cpu += cpu_now - cpu_tick
            tick, cpu_tick = now, cpu_now
            if output.optimizer_stepped and self._is_log_step():
                meter.merge(window)
                output.log = self._log_row(window)
            self._emit("on_batch_end", self, output)
            if self._should_stop_early():
                break
        else:
            self.state.batch_in_epoch = 0
        meter.merge(window)
        return {"train_loss": meter.mean(), **{f"train_{k}": v for k, v in meter.means().items()}}

    def _run_step(self, batch: Any) -> StepOutput:
        cfg = self.config
        batch = self._to_device(batch)
        for callback in self.callbacks:
            batch = callback.on_batch_start(self, batch)
        if self.step_fn is not None:  # manual optimization: the step calls step_optimizer
            output = self.step_fn(self, batch)
            # Gradients a step leaves behind (G's backward through D) must not reach the next
            # step: a checkpoint holds none, so a resumed run would differ.
            for model in self.unwrapped_models.values():
                model.zero_grad(set_to_none=True)
            self._check_finite(output, batch)
            self.state.batch_in_epoch += 1
            output.optimizer_stepped = True
            self._finish_optimizer_step()
            return output
        with self.autocast():
            output = self.training_step(batch)
        self._check_finite(output, batch)
        self.backward(output.loss / cfg.accumulate)
        self.state.batch_in_epoch += 1
        output.optimizer_stepped = self.state.batch_in_epoch % cfg.accumulate == 0
        if output.optimizer_stepped:
            for name in self.optimizers:
                self.step_optimizer(name)
            self._finish_optimizer_step()
        return output

    def _finish_optimizer_step(self) -> None:
        if self._scaler is not None:
            self._scaler.update()
        self.state.step += 1
        if self.config.scheduler_interval == "step":
            for scheduler in self.schedulers.values():
                scheduler.step()

    def training_step(self, batch: Any) -> StepOutput:
        """Forward one ``(x, y)`` batch and return its loss (the default step)."""
        x, y = batch
        logits = self.model(x)
        assert self.loss_fn is not None  # fit checks it
        return StepOutput(loss=self.loss_fn(logits, y), batch_size=len(y))

    def validation_step(self, batch: Any) -> EvalOutput:
        """Loss, predictions and targets of one batch: ``eval_step`` if given, else ``(x, y)``
        with a loss on the logits."""
        if self.eval_fn is not None:
            return self.eval_fn(self, batch)
        x, y = batch
        logits = self.model(x)
        loss = self.loss_fn(logits, y) if self.loss_fn is not None else None
        return EvalOutput(loss=loss, preds=logits, target=y, batch_size=len(y))

    # ------------------------------------------------------- manual optimization
    def backward(self, loss: Tensor) -> None:
        """``loss.backward()``, scaled by the GradScaler under fp16."""
        if self._scaler is not None:
            self._scaler.scale(loss).backward()
        else:
            loss.backward()

    def step_optimizer(self, name: str = "optimizer") -> None:
        """Step optimizer ``name`` after its backward pass: unscale (fp16), callbacks'
        ``on_before_step`` (gradient clipping), ``step``, then ``zero_grad``."""
        optimizer = self.optimizers[name]
        if self._scaler is not None:
            self._scaler.unscale_(optimizer)
        self._emit("on_before_step", self, optimizer)
        if self._scaler is not None:
            self._scaler.step(optimizer)
        else:
            optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        """The ``--precision`` autocast context (a no-op at fp32); custom steps use it."""
        precision = self.config.precision
        if precision == "32":
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if precision == "bf16" else torch.float16
        return torch.autocast(device_type=self.device.type, dtype=dtype)

    # ---------------------------------------------------------------- validation
    @torch.inference_mode()
    def evaluate(self, loader: Iterable[Any]) -> dict[str, float]:
        """Mean loss and every metric over ``loader`` (reduced across DDP ranks)."""
        self._emit("on_validation_start", self)
        self._set_train_mode(False)
        for metric in self.metrics.values():
            metric.reset()
        meter = _LossMeter(self.device)
        for batch in loader:
            batch = self._to_device(batch)
            with self.autocast():
                out = self.validation_step(batch)
            if out.loss is not None:
                meter.add(out.loss, out.batch_size)
            preds = out.preds.float() if _is_float_tensor(out.preds) else out.preds
            for metric in self.metrics.values():
                metric.update(preds, out.target)
        results = {"loss": meter.mean(reduce=True)} if meter.count else {}
        for name, metric in self.metrics.items():
            results.update(_scalars(name, metric.compute()))
        self._set_train_mode(True)
        self._emit("on_validation_end", self)
        return results

    def _end_epoch(self, train_stats: dict[str, float], val_loader: Iterable[Any] | None) -> None:
        if self.config.scheduler_interval == "epoch":
            for scheduler in self.schedulers.values():
                scheduler.step()
        record: dict[str, float] = {"epoch": self.state.epoch, **train_stats}
        if val_loader is not None:
            record.update({f"val_{k}": v for k, v in self.evaluate(val_loader).items()})
        record["train_time"] = self.state.train_time
        record["train_cpu"] = self.state.train_cpu
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
        if cfg.cpu_budget is not None and self.state.train_cpu >= cfg.cpu_budget:
            self.request_stop(f"CPU budget of {cfg.cpu_budget:g} CPU-s spent")
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
            "models": {k: m.state_dict() for k, m in self.unwrapped_models.items()},
            "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
            "schedulers": {k: s.state_dict() for k, s in self.schedulers.items()},
            "scaler": self._scaler.state_dict() if self._scaler is not None else None,
            "trainer": asdict(self.state),
            "history": self.history.records,
            "rng": rng_state(),
            "callbacks": {type(c).__name__: c.state_dict() for c in self.callbacks},
            "config": asdict(self.config),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned (call after ``_setup``)."""
        for kind, have in (
            ("models", self.unwrapped_models),
            ("optimizers", self.optimizers),
            ("schedulers", self.schedulers),
        ):
            if set(state[kind]) != set(have):
                raise ValueError(
                    f"the checkpoint holds {kind} {sorted(state[kind])}, this run has "
                    f"{sorted(have)}; resume with the same task that wrote it"
                )
            for name, obj in have.items():
                obj.load_state_dict(state[kind][name])
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
        models: dict[str, nn.Module],
        optimizers: dict[str, torch.optim.Optimizer],
        schedulers: dict[str, Any],
        loaders: Loaders,
        resume: str | Path | Checkpoint | None,
    ) -> None:
        cfg = self.config
        self.device = dist.device_for_rank(choose_device(cfg.device))
        num_params = sum(p.numel() for m in models.values() for p in m.parameters())
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
        self.unwrapped_models = dict(models)
        self.models = {}
        for name, model in models.items():
            model.to(self.device)
            if cfg.channels_last:
                _channels_last_4d(model)
            wrapped = dist.wrap_model(model, self.device)
            self.models[name] = torch.compile(wrapped) if cfg.compile else wrapped  # type: ignore[assignment]
        self.optimizers, self.schedulers = dict(optimizers), dict(schedulers)
        self._scaler = torch.amp.GradScaler("cuda") if cfg.precision == "16" else None
        for metric in self.metrics.values():
            metric.to(self.device)
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
        if cfg.num_threads is not None:
            self.env["threads_reason"] = "set by the run (--threads or the recipe's config)"
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
    def _set_train_mode(self, mode: bool) -> None:
        for model in self.models.values():
            model.train(mode)

    def _choose_threads(self, batch: Any) -> None:
        """CPU thread policy from the first batch's cost (see ``choose_threads``)."""
        self._threads_chosen = True
        if self.state.num_threads:  # a resumed run keeps its thread count: same arithmetic
            torch.set_num_threads(self.state.num_threads)
            self.env.update(
                num_threads=self.state.num_threads,
                threads_reason="kept from the run being resumed (same arithmetic)",
            )
            return
        flops = self._step_flops(batch)
        choice = choose_threads(flops)
        torch.set_num_threads(choice.threads)
        self.state.num_threads = choice.threads
        gflops = None if math.isinf(flops) else round(flops / 1e9, 3)
        self.env.update(num_threads=choice.threads, threads_reason=choice.reason)
        self.env.update(step_gflops=gflops)
        if choice.warning:
            log.warning(choice.warning)

    def _step_flops(self, batch: Any) -> float:
        """FLOPs of one training step of the first model: one sample counted, scaled to the
        batch, x 3 for the backward; infinite when the batch is not ``(x, ...)`` it can read."""
        if self.step_fn is not None or len(self.models) != 1:
            return float("inf")
        try:
            x = batch[0]
            return 3 * len(x) * forward_flops(self.unwrapped_model, x[:1])
        except Exception:  # noqa: BLE001 - custom batches: fall back to all cores
            return float("inf")

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

    def _check_finite(self, output: StepOutput, batch: Any) -> None:
        # On CPU a check costs ~0.3 us; on an accelerator it is a host sync, so check on log steps.
        if not self.config.nan_guard:
            return
        if self.device.type != "cpu" and self.state.step % self.config.log_every != 0:
            return
        if not math.isfinite(float(output.loss.detach())):
            raise self._diagnose_nonfinite(batch, output.loss)

    def _log_row(self, window: _LossMeter) -> dict[str, float]:
        elapsed = max(window.elapsed(), 1e-9)
        row = {
            "loss": window.mean(),
            **window.means(),
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

    def _diagnose_nonfinite(self, batch: Any, loss: Tensor) -> NonFiniteLossError:
        where = (
            f"loss became {loss.item()} at step {self.state.step} (epoch {self.state.epoch}, "
            f"batch {self.state.batch_in_epoch})"
        )
        if self.step_fn is not None:  # a custom step steps optimizers: never replay it
            return NonFiniteLossError(f"{where}. Try a lower lr, gradient clipping, or fp32.")
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
        for optimizer in self.optimizers.values():
            optimizer.zero_grad(set_to_none=True)
        return NonFiniteLossError(
            f"{where}; first module with a non-finite output: {culprit}; "
            f"anomaly mode on backward: {backward_op}. Try a lower lr, grad_clip, or fp32."
        )

    def _emit(self, event: str, *args: Any) -> None:
        for callback in self.callbacks:
            getattr(callback, event)(*args)


def _named(obj: Any, default_name: str) -> dict[str, Any]:
    """``{default_name: obj}`` for one object, a dict for a mapping, ``{}`` for None."""
    if obj is None:
        return {}
    if isinstance(obj, Mapping):
        return dict(obj)
    return {default_name: obj}


def _channels_last_4d(model: nn.Module) -> None:
    """Channels-last for the 4-D weights (Conv2d) only: ``Module.to(memory_format=
    channels_last)`` raises on the 5-D weights of a Conv3d (volumes), which keep their layout."""
    for tensor in [*model.parameters(), *model.buffers()]:
        if tensor.dim() == 4:
            tensor.data = tensor.data.to(memory_format=torch.channels_last)  # as Module.to does


def _is_float_tensor(value: Any) -> bool:
    return isinstance(value, Tensor) and value.is_floating_point()


def _scalars(name: str, value: Any) -> dict[str, float]:
    """A metric's result as floats: a scalar as ``name``; a dict's scalar entries as
    ``name_key`` (torchmetrics' MeanAveragePrecision returns ``map``, ``map_50``, ...)."""
    if isinstance(value, Mapping):
        out: dict[str, float] = {}
        for key, item in value.items():
            out.update(_scalars(f"{name}_{key}", item))
        return out
    if isinstance(value, Tensor) and value.numel() != 1:
        return {}  # per-class vectors and the like: not one number to log
    return {name: float(value)}


class _LossMeter:
    """Sums of loss x samples (and of a step's other values) as tensors: no host sync until read."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.reset()

    def reset(self) -> None:
        self.total = torch.zeros((), device=self.device, dtype=torch.float64)
        self.values: dict[str, Tensor] = {}
        self.count = 0
        self.started = time.perf_counter()

    def add(self, loss: Tensor, n: int, values: Mapping[str, Tensor] | None = None) -> None:
        self.total.add_(loss.detach(), alpha=n)  # one fused op, no host sync
        for key, value in (values or {}).items():
            total = self.values.setdefault(
                key, torch.zeros((), device=self.device, dtype=torch.float64)
            )
            total.add_(value.detach(), alpha=n)
        self.count += n

    def merge(self, other: _LossMeter) -> None:
        """Add ``other``'s running sums (once per log step, not per step)."""
        self.total += other.total
        for key, value in other.values.items():
            self.values[key] = self.values.get(key, 0) + value
        self.count += other.count

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def mean(self, *, reduce: bool = False) -> float:
        total, count = self.total, torch.tensor(float(self.count), device=self.device)
        if reduce:
            total, count = dist.all_reduce_sum(total.clone()), dist.all_reduce_sum(count)
        return float(total / count) if float(count) else math.nan

    def means(self) -> dict[str, float]:
        """Each extra value's mean (a GAN's ``d_loss``, ``g_loss``, ...)."""
        return {k: float(v) / self.count for k, v in self.values.items()} if self.count else {}


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
    "EvalFn",
    "History",
    "StepFn",
    "Loaders",
    "NonFiniteLossError",
    "Trainer",
    "TrainerConfig",
    "TrainState",
    "TrainingInterrupted",
]
