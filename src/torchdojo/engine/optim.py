"""Optimizers and LR schedules by name, so recipe configs stay plain data."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

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
