"""The learning-rate range test (Smith, 2017, https://arxiv.org/abs/1506.01186; fastai's lr_find).

Train for ``steps`` batches while the LR grows exponentially from ``start_lr`` to ``end_lr``,
record the smoothed loss, stop once it diverges, then put the model's weights (and the RNG)
back as they were. The suggestion is the LR where the smoothed loss falls fastest per unit of
log-LR: a good peak LR for one-cycle is usually near it, or up to ~10x above.
Taught in lessons on training techniques; CLI: ``torchdojo lr-find RECIPE``.
"""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

log = logging.getLogger(__name__)
LossFn = Callable[[Tensor, Tensor], Tensor]
OptimizerFactory = Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer]


@dataclass(frozen=True)
class LRFinderResult:
    """What the range test saw.

    Args:
        lrs: The LR of each step taken.
        losses: The smoothed (bias-corrected EMA) loss after each step.
        suggestion: The LR of steepest descent of the smoothed loss (NaN if too few steps).
        raw_losses: The loss of each batch.
        diverged: True when the sweep stopped early because the loss blew up.
    """

    lrs: list[float]
    losses: list[float]
    suggestion: float
    raw_losses: list[float]
    diverged: bool


def find_lr(
    model: nn.Module,
    loader: Iterable[Any],
    loss_fn: LossFn,
    optimizer_factory: OptimizerFactory,
    *,
    start_lr: float = 1e-7,
    end_lr: float = 10.0,
    steps: int = 100,
    smoothing: float = 0.9,
    diverge_factor: float = 4.0,
    device: torch.device | str | None = None,
) -> LRFinderResult:
    """Run the LR range test on ``model`` and restore its weights afterwards.

    Args:
        model: The model to probe (left unchanged: weights, buffers and mode are restored).
        loader: Yields ``(x, y)`` batches; cycled when shorter than ``steps``.
        loss_fn: ``loss_fn(model(x), y)``.
        optimizer_factory: Builds a fresh optimizer from parameters, e.g.
            ``lambda p: torch.optim.Adam(p, lr=1e-3)`` (its LR is overwritten each step).
        start_lr: First LR.
        end_lr: Last LR (reached at step ``steps``).
        steps: Batches in the sweep.
        smoothing: EMA factor of the loss curve (0 = none; 0.9 averages ~10 steps: fastai's
            0.98 lags a 100-step sweep enough to push the suggestion to the right).
        diverge_factor: Stop when the smoothed loss exceeds this times its best value.
        device: Where to run (default: where the model's parameters are).
    """
    if not 0 < start_lr < end_lr:
        raise ValueError(f"need 0 < start_lr < end_lr, got start_lr={start_lr}, end_lr={end_lr}")
    if steps < 2:
        raise ValueError(f"steps must be >= 2, got {steps}")
    first = next(iter(model.parameters()), None)
    device = (
        torch.device(device)
        if device is not None
        else (first.device if first is not None else torch.device("cpu"))
    )
    saved_weights = copy.deepcopy(model.state_dict())
    saved_rng, was_training = torch.get_rng_state(), model.training
    try:
        lrs, raw = _sweep(
            model,
            loader,
            loss_fn,
            optimizer_factory(model.parameters()),
            lr_schedule(start_lr, end_lr, steps),
            device,
            smoothing,
            diverge_factor,
        )
    finally:
        model.load_state_dict(saved_weights)
        model.train(was_training)
        torch.set_rng_state(saved_rng)
    losses = smooth(raw, smoothing)
    diverged = len(lrs) < steps
    return LRFinderResult(lrs, losses, steepest_descent(lrs, losses), raw, diverged)


def lr_schedule(start_lr: float, end_lr: float, steps: int) -> list[float]:
    """``steps`` LRs from ``start_lr`` to ``end_lr``, equally spaced in log scale."""
    ratio = end_lr / start_lr
    return [start_lr * ratio ** (i / (steps - 1)) for i in range(steps)]


def _sweep(
    model: nn.Module,
    loader: Iterable[Any],
    loss_fn: LossFn,
    optimizer: torch.optim.Optimizer,
    schedule: list[float],
    device: torch.device,
    smoothing: float,
    diverge_factor: float,
) -> tuple[list[float], list[float]]:
    model.train()
    lrs: list[float] = []
    raw: list[float] = []
    best = math.inf
    for lr, (x, y) in zip(schedule, _cycle(loader), strict=False):
        for group in optimizer.param_groups:
            group["lr"] = lr
        loss = loss_fn(model(x.to(device)), y.to(device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        lrs.append(lr)
        raw.append(float(loss.detach()))
        current = smooth(raw, smoothing)[-1]
        if not math.isfinite(current) or current > diverge_factor * best:
            log.info("lr finder: loss diverged at lr=%.3g after %d steps", lr, len(lrs))
            break
        best = min(best, current)
    return lrs, raw


def _cycle(loader: Iterable[Any]) -> Iterator[Any]:
    while True:
        empty = True
        for batch in loader:
            empty = False
            yield batch
        if empty:
            raise ValueError("the loader yielded no batches")


def smooth(values: list[float], smoothing: float) -> list[float]:
    """Bias-corrected exponential moving average: ``avg_i / (1 - smoothing ** (i + 1))``."""
    out, avg = [], 0.0
    for i, value in enumerate(values):
        avg = smoothing * avg + (1 - smoothing) * value
        out.append(avg / (1 - smoothing ** (i + 1)))
    return out


def steepest_descent(lrs: list[float], losses: list[float], *, skip_end: int = 2) -> float:
    """The LR where ``d loss / d log(lr)`` is most negative, ignoring the first tenth of the
    sweep (the smoothing has not settled yet) and the last ``skip_end`` points (divergence)."""
    skip_start = max(1, len(lrs) // 10)
    window = slice(skip_start, max(skip_start + 2, len(lrs) - skip_end))
    log_lrs = np.log(np.asarray(lrs[window]))
    values = np.asarray(losses[window])
    if len(values) < 3:
        return math.nan
    slopes = np.gradient(values, log_lrs)
    return float(np.exp(log_lrs[int(np.argmin(slopes))]))


__all__ = ["LRFinderResult", "find_lr", "lr_schedule", "smooth", "steepest_descent"]
