"""Diagnose a training setup before a long run: activations, gradients, dead units, one batch.

Taught in lessons/07_training_stability.py. :func:`layer_statistics` runs one forward and backward pass
with hooks on every leaf module and records, per layer, the mean and std of its output, the
share of dead units after ReLU-like layers and the norm of its weight gradient.
:func:`overfit_one_batch` checks the cheapest sanity test there is (Karpathy, "A recipe for
training neural networks", 2019): a model that cannot drive the loss of ONE batch towards zero
has a bug, a bad init or a bad learning rate. :func:`diagnose` does both and names the problems.
The engine knows no model or dataset: the caller passes the model, batches, loss and optimizer.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

LossFn = Callable[[Tensor, Tensor], Tensor]

_RELU_LIKE = (nn.ReLU, nn.ReLU6)
_MAX_GRAD_SAMPLE = 4096


@dataclass
class LayerStats:
    """One leaf module's numbers on one batch.

    Args:
        name: The module's qualified name (``"net.3"``).
        kind: Its class name (``"Linear"``, ``"ReLU"``, ...).
        act_mean: Mean of its output.
        act_std: Standard deviation of its output.
        dead_fraction: ReLU-like layers: share of units that output 0 for every sample of the
            batch; None for other layers.
        grad_norm: L2 norm of its weight gradient; None for layers without weights.
        grad_sample: Up to 4096 of its weight-gradient values (for violin plots).
    """

    name: str
    kind: str
    act_mean: float
    act_std: float
    dead_fraction: float | None = None
    grad_norm: float | None = None
    grad_sample: Tensor | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """The numbers, without the gradient sample (JSON-able)."""
        return {k: v for k, v in vars(self).items() if k != "grad_sample"}


@dataclass
class Diagnosis:
    """What :func:`diagnose` found.

    Args:
        layers: Per-layer statistics at the start, before any optimizer step.
        layers_after: The same after overfitting one batch.
        losses: The loss at each step of :func:`overfit_one_batch`.
        loss_drop: ``1 - last / first`` of ``losses`` (1.0: the loss went to zero).
        problems: One plain sentence per problem found; empty when the setup looks healthy.
    """

    layers: list[LayerStats]
    layers_after: list[LayerStats]
    losses: list[float]
    loss_drop: float
    problems: list[str]

    @property
    def healthy(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {
            "healthy": self.healthy,
            "problems": self.problems,
            "loss_drop": self.loss_drop,
            "losses": self.losses,
            "layers": [s.to_dict() for s in self.layers],
            "layers_after": [s.to_dict() for s in self.layers_after],
        }


def layer_statistics(model: nn.Module, x: Tensor, y: Tensor, loss_fn: LossFn) -> list[LayerStats]:
    """Forward and backward ``(x, y)`` once and return the statistics of every leaf module.

    Gradients are zeroed before and left in ``.grad`` afterwards; no optimizer step is taken.
    Layers appear in the order they ran.
    """
    found: dict[str, LayerStats] = {}
    handles = [
        module.register_forward_hook(_recorder(name, found))
        for name, module in model.named_modules()
        if not list(module.children()) and name
    ]
    model.zero_grad(set_to_none=True)
    try:
        loss_fn(model(x), y).backward()
    finally:
        for handle in handles:
            handle.remove()
    modules = dict(model.named_modules())
    for name, stats in found.items():
        weight = getattr(modules[name], "weight", None)
        if isinstance(weight, Tensor) and weight.grad is not None:
            grad = weight.grad.detach().flatten().float().cpu()
            stats.grad_norm = float(grad.norm())
            stats.grad_sample = _sample(grad, _MAX_GRAD_SAMPLE)
    return list(found.values())


def _recorder(name: str, found: dict[str, LayerStats]) -> Callable[..., None]:
    def hook(module: nn.Module, inputs: Any, output: Any) -> None:
        if not isinstance(output, Tensor) or name in found or output.numel() < 2:
            return
        out = output.detach().float()  # read now: an in-place op may change it later
        dead = None
        if isinstance(module, _RELU_LIKE) and out.dim() >= 2:
            dead = float((out == 0).all(dim=0).float().mean())  # units silent for the batch
        found[name] = LayerStats(
            name, type(module).__name__, float(out.mean()), float(out.std()), dead
        )

    return hook


def _sample(values: Tensor, limit: int) -> Tensor:
    if values.numel() <= limit:
        return values.clone()
    g = torch.Generator().manual_seed(0)
    return values[torch.randperm(values.numel(), generator=g)[:limit]]


def overfit_one_batch(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    loss_fn: LossFn,
    optimizer: torch.optim.Optimizer,
    *,
    steps: int = 50,
) -> list[float]:
    """Train ``steps`` optimizer steps on the single batch ``(x, y)``; returns each step's loss.

    The model is trained in place (in train mode); stops early if the loss is not finite.
    """
    model.train()
    losses: list[float] = []
    for _ in range(steps):
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        losses.append(float(loss.detach()))
        if not math.isfinite(losses[-1]):
            break
        loss.backward()
        optimizer.step()
    return losses


def diagnose(
    model: nn.Module,
    batches: Iterable[tuple[Tensor, Tensor]],
    loss_fn: LossFn,
    optimizer: torch.optim.Optimizer,
    *,
    steps: int = 50,
    required_drop: float = 0.9,
    vanishing_ratio: float = 1e-3,
    dead_limit: float = 0.5,
) -> Diagnosis:
    """Check a setup: statistics at init, then overfit the first batch for ``steps`` steps.

    The model is trained in place; build a fresh one for the real run.

    Args:
        model: The model to check.
        batches: ``(x, y)`` batches already on the model's device; the first one is used.
        loss_fn: ``loss_fn(model(x), y)`` -> scalar loss.
        optimizer: An optimizer over ``model``'s parameters.
        steps: Optimizer steps on the single batch.
        required_drop: The loss must fall by at least this fraction (0.9: to a tenth).
        vanishing_ratio: Flag vanishing (exploding) gradients when the first weighted layer's
            gradient norm is below this fraction (above the inverse) of the last one's.
        dead_limit: Flag a ReLU layer when more than this share of its units is dead.
    """
    x, y = next(iter(batches), (None, None))
    if x is None or y is None:
        raise ValueError("diagnose needs at least one (x, y) batch; the batch iterator was empty")
    model.train()
    before = layer_statistics(model, x, y, loss_fn)
    losses = overfit_one_batch(model, x, y, loss_fn, optimizer, steps=steps)
    after = layer_statistics(model, x, y, loss_fn)
    model.zero_grad(set_to_none=True)
    drop = 1.0 - losses[-1] / losses[0] if losses and losses[0] > 0 else float("nan")
    problems = find_problems(
        before, vanishing_ratio=vanishing_ratio, dead_limit=dead_limit
    ) + _loss_problems(losses, drop, required_drop, steps)
    return Diagnosis(before, after, losses, drop, problems)


def find_problems(
    layers: list[LayerStats], *, vanishing_ratio: float = 1e-3, dead_limit: float = 0.5
) -> list[str]:
    """Plain sentences naming what looks wrong in ``layers`` (empty: nothing found)."""
    problems = []
    for s in layers:
        if not (math.isfinite(s.act_mean) and math.isfinite(s.act_std)):
            problems.append(f"non-finite activations in {s.name} ({s.kind})")
        if s.dead_fraction is not None and s.dead_fraction > dead_limit:
            problems.append(
                f"dead ReLUs: {s.dead_fraction:.0%} of the units of {s.name} never fire on this "
                "batch (check the init, the learning rate, or use LeakyReLU/BatchNorm)"
            )
    weighted = [s for s in layers if s.grad_norm is not None]
    if len(weighted) >= 2:
        problems += _ratio_problems(weighted[0], weighted[-1], vanishing_ratio)
    return problems


def _ratio_problems(first: LayerStats, last: LayerStats, limit: float) -> list[str]:
    problems = []
    act_ratio = first.act_std / last.act_std if last.act_std > 0 else math.inf
    if act_ratio > 1 / limit:
        problems.append(
            f"vanishing activations: the output std falls from {first.act_std:.2g} "
            f"({first.name}) to {last.act_std:.2g} ({last.name}); the init scale is too small"
        )
    elif act_ratio < limit:
        problems.append(
            f"exploding activations: the output std grows from {first.act_std:.2g} "
            f"({first.name}) to {last.act_std:.2g} ({last.name}); the init scale is too large"
        )
    g_first, g_last = first.grad_norm or 0.0, last.grad_norm or 0.0
    if g_first == 0.0 and g_last == 0.0:
        problems.append("zero gradients: no gradient reaches the first or the last layer")
    elif g_last > 0 and g_first / g_last < limit:
        problems.append(
            f"vanishing gradients: the first layer's gradient norm is {g_first / g_last:.1e} of "
            "the last layer's (try Kaiming/Xavier init, ReLU, BatchNorm or residual connections)"
        )
    elif g_last == 0.0 or g_first / g_last > 1 / limit:
        problems.append(
            f"exploding gradients: the first layer's gradient norm ({g_first:.2g}) dwarfs the "
            f"last layer's ({g_last:.2g}) (lower the init scale, normalize, or clip gradients)"
        )
    return problems


def _loss_problems(losses: list[float], drop: float, required: float, steps: int) -> list[str]:
    if not losses or not math.isfinite(losses[-1]):
        return ["the loss became NaN/inf while overfitting one batch (learning rate too high?)"]
    if not drop >= required:
        return [
            f"cannot overfit one batch: the loss fell by {drop:.0%} in {steps} steps "
            f"(from {losses[0]:.3g} to {losses[-1]:.3g}; expected at least {required:.0%}); "
            "check the learning rate, the init and the labels"
        ]
    return []
