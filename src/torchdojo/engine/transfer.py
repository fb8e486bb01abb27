"""Transfer learning: freeze the body, then fine-tune everything with discriminative LRs.

fastai's ``fine_tune`` (Howard & Gugger, 2020, https://arxiv.org/abs/2002.04688): train only the
new head for ``frozen_epochs`` with the pretrained body frozen, then unfreeze everything with
lower learning rates for earlier layers (``slice(lr / lr_mult, lr)``), each phase one LR cycle.
The :class:`Freeze` callback keeps the body in eval mode while frozen, so its BatchNorm
statistics stay ImageNet's. Taught in lessons/10_transfer_learning.py.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from torchdojo.engine.callbacks import Callback

if TYPE_CHECKING:
    from torchdojo.engine.trainer import Trainer


def classifier_name(model: nn.Module) -> str:
    """Qualified name of the model's last ``nn.Linear`` (the head a transfer run replaces)."""
    linears = [name for name, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError(f"{type(model).__name__} has no nn.Linear head to fine-tune")
    return linears[-1]


def _is_head(param_name: str, head: str) -> bool:
    return param_name.startswith(f"{head}.")


def param_groups(
    model: nn.Module, *, lr: float, lr_mult: float = 100.0, num_groups: int = 3
) -> list[dict[str, Any]]:
    """Optimizer groups with discriminative learning rates, earliest layers first.

    The body (every parameter but the head's, in registration order, which follows depth) is cut
    into ``num_groups - 1`` contiguous groups; the head is the last group. Group ``j`` of ``n``
    gets ``lr / lr_mult ** ((n - 1 - j) / (n - 1))``: ``lr / lr_mult`` for the stem, ``lr`` for
    the head, geometric in between (fastai's ``slice(lr / lr_mult, lr)``).

    Args:
        model: A classifier whose last ``nn.Linear`` is the head.
        lr: Learning rate of the head.
        lr_mult: Ratio of the head's LR to the first group's.
        num_groups: Groups in all, head included (at least 2).
    """
    if num_groups < 2:
        raise ValueError(f"num_groups={num_groups} must be >= 2 (at least one body group + head)")
    head = classifier_name(model)
    named = list(model.named_parameters())
    body = [p for n, p in named if not _is_head(n, head)]
    chunks = [c for c in np.array_split(np.arange(len(body)), num_groups - 1) if len(c)]
    groups = [[body[i] for i in chunk] for chunk in chunks]
    groups.append([p for n, p in named if _is_head(n, head)])
    n = len(groups)
    names = [f"body{j}" for j in range(n - 1)] + ["head"]
    return [
        {"params": params, "lr": lr / lr_mult ** ((n - 1 - j) / (n - 1)), "name": names[j]}
        for j, params in enumerate(groups)
    ]


def one_cycle(
    t: float, *, warmup: float = 0.25, div: float = 25.0, final_div: float = 1e4
) -> float:
    """LR factor at progress ``t`` in [0, 1] of a one-cycle schedule (cosine up, cosine down).

    Matches ``torch.optim.lr_scheduler.OneCycleLR``'s shape: from ``1/div`` up to 1 over the
    first ``warmup`` of the cycle, then down to ``1/(div * final_div)``.
    """
    low, end = 1.0 / div, 1.0 / (div * final_div)
    if t < warmup:
        return low + (1.0 - low) * (1 - math.cos(math.pi * t / warmup)) / 2
    t = min(1.0, (t - warmup) / max(1e-12, 1.0 - warmup))
    return end + (1.0 - end) * (1 + math.cos(math.pi * t)) / 2


def two_phase_schedule(
    optimizer: torch.optim.Optimizer,
    *,
    frozen_steps: int,
    unfrozen_steps: int,
    frozen_scale: Sequence[float],
) -> torch.optim.lr_scheduler.LambdaLR:
    """One LR cycle over the frozen phase, a second over the unfrozen phase, per step.

    Args:
        optimizer: Its groups' ``lr`` are the unfrozen phase's peaks.
        frozen_steps: Optimizer steps with the body frozen.
        unfrozen_steps: Optimizer steps after unfreezing.
        frozen_scale: Per group, the frozen phase's peak as a multiple of the group's ``lr``
            (0 for frozen groups).
    """

    def factor(scale: float) -> Any:
        def at(step: int) -> float:
            if step < frozen_steps:
                return scale * one_cycle(step / frozen_steps)
            return one_cycle((step - frozen_steps) / max(1, unfrozen_steps))

        return at

    return torch.optim.lr_scheduler.LambdaLR(optimizer, [factor(s) for s in frozen_scale])


class Freeze(Callback):
    """Keep the body of the first model frozen (no grads, eval mode) for the first epochs.

    The phase depends only on the epoch, and it is set at each epoch start (after the trainer
    has put the model in train mode), so a resumed run freezes exactly as the original did.
    With ``bn_frozen`` BatchNorm layers stay in eval mode after unfreezing too (their affine
    weights still train): the ImageNet statistics beat those of small batches from a small
    folder (Keras' transfer-learning guide gives the same advice).

    Args:
        frozen_epochs: Epochs with only the head training.
        head: Qualified name of the head (default: the model's last ``nn.Linear``).
        bn_frozen: Keep BatchNorm statistics fixed after unfreezing.
    """

    def __init__(self, frozen_epochs: int, *, head: str = "", bn_frozen: bool = False) -> None:
        self.frozen_epochs, self.head, self.bn_frozen = frozen_epochs, head, bn_frozen

    def on_fit_start(self, trainer: Trainer) -> None:
        self.head = self.head or classifier_name(trainer.unwrapped_model)

    def on_epoch_start(self, trainer: Trainer, epoch: int) -> None:
        frozen = epoch < self.frozen_epochs
        model = trainer.unwrapped_model
        for name, param in model.named_parameters():
            param.requires_grad_(not frozen or _is_head(name, self.head))
        if frozen:
            model.eval()  # only the head trains
            model.get_submodule(self.head).train()
        elif self.bn_frozen:
            for module in model.modules():
                if isinstance(module, nn.modules.batchnorm._BatchNorm):
                    module.eval()

    def on_validation_end(self, trainer: Trainer) -> None:
        self.on_epoch_start(trainer, trainer.state.epoch)  # evaluation left train mode on


__all__ = ["Freeze", "classifier_name", "one_cycle", "param_groups", "two_phase_schedule"]
