"""Optimizers and LR schedules by name, so recipe configs stay plain data."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor, nn

from torchdojo.utils.registry import unknown_name_message

OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("none", "onecycle", "cosine", "step", "warmup-cosine")


def build_optimizer(
    name: str,
    params: Iterable[nn.Parameter] | Iterable[dict[str, Any]],
    *,
    lr: float,
    weight_decay: float = 0.0,
    momentum: float = 0.9,
    betas: tuple[float, float] = (0.9, 0.999),
) -> torch.optim.Optimizer:
    """``"sgd"`` (Nesterov momentum), ``"adam"`` or ``"adamw"``."""
    if name == "sgd":
        return torch.optim.SGD(
            params, lr=lr, momentum=momentum, nesterov=momentum > 0, weight_decay=weight_decay
        )
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, betas=betas, weight_decay=weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, betas=betas, weight_decay=weight_decay)
    raise ValueError(unknown_name_message("optimizer", name, list(OPTIMIZERS)))


def build_scheduler(
    name: str,
    optimizer: torch.optim.Optimizer,
    *,
    total_steps: int,
    warmup_fraction: float = 0.25,
    step_size: int = 1,
    gamma: float = 0.7,
) -> Any:
    """A per-step LR schedule over ``total_steps`` (``"step"`` decays every ``step_size``
    steps by ``gamma``); ``"none"`` returns None."""
    total_steps = max(1, total_steps)
    if name == "none":
        return None
    if name == "onecycle":
        max_lr = [g["lr"] for g in optimizer.param_groups]
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=max_lr, total_steps=total_steps, pct_start=warmup_fraction
        )
    if name == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps)
    if name == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=step_size, gamma=gamma)
    if name == "warmup-cosine":
        warmup = max(1, int(total_steps * warmup_fraction))
        return torch.optim.lr_scheduler.SequentialLR(
            optimizer,
            [
                torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=0.01, total_iters=warmup),
                torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps - warmup),
            ],
            milestones=[warmup],
        )
    raise ValueError(unknown_name_message("schedule", name, list(SCHEDULES)))


def orthogonalize(g: Tensor, *, steps: int = 3, eps: float = 1e-7) -> Tensor:
    """Approximately U V^T of ``g`` (out, in) = U S V^T, by a quintic Newton-Schulz iteration.

    Keller Jordan's coefficients (Muon, 2024) push every singular value toward ~1 in a few steps
    without converging exactly (S' ends up in about [0.5, 1.5]), which trains as well as U V^T.
    """
    a, b, c = 3.4445, -4.7750, 2.0315
    x = g / (g.norm() + eps)  # top singular value <= 1
    tall = x.size(0) > x.size(1)
    if tall:
        x = x.T
    for _ in range(steps):
        gram = x @ x.T  # (m, m) with m the short side
        x = a * x + (b * gram + c * gram @ gram) @ x
    return x.T if tall else x


class Muon(torch.optim.Optimizer):
    """Muon for the groups marked ``muon=True``, Nesterov SGD for the rest, in one optimizer.

    A Muon group's weights (matrices, or conv filters read as (out, in*k*k)) step along the
    orthogonalized Nesterov momentum; before each step they are rescaled to norm sqrt(out), so
    ``lr`` is an angle per step, as in airbench94_muon, and ``weight_decay`` does not apply. That
    only suits weights followed by a normalization (BatchNorm here), which makes the loss blind to
    their scale. Other groups get plain SGD with Nesterov momentum and (coupled) weight decay,
    exactly ``torch.optim.SGD(nesterov=True)``.
    """

    def __init__(
        self,
        params: Iterable[dict[str, Any]],
        *,
        lr: float,
        momentum: float = 0.6,
        weight_decay: float = 0.0,
        ns_steps: int = 3,
    ) -> None:
        defaults = {"lr": lr, "momentum": momentum, "weight_decay": weight_decay, "muon": False}
        super().__init__(params, defaults)
        self.ns_steps = ns_steps

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, momentum, decay = group["lr"], group["momentum"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad if group["muon"] or not decay else p.grad.add(p, alpha=decay)
                state = self.state[p]
                if "momentum_buffer" not in state:
                    state["momentum_buffer"] = torch.zeros_like(p)
                buf = state["momentum_buffer"]
                buf.mul_(momentum).add_(g)
                g = g.add(buf, alpha=momentum)  # Nesterov
                if group["muon"]:
                    p.mul_(len(p) ** 0.5 / p.norm())
                    g = orthogonalize(g.reshape(len(g), -1), steps=self.ns_steps).view_as(p)
                p.add_(g, alpha=-lr)
        return loss
