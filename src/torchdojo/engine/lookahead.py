"""Lookahead as hlb-CIFAR10 and airbench94 use it: every few steps, pull the weights to their EMA.

Zhang et al., 2019 ("Lookahead Optimizer: k steps forward, 1 step back",
https://arxiv.org/abs/1907.08610); this variant, from tysam-code/hlb-CIFAR10 and Keller Jordan's
airbench94, keeps an exponential moving average of the weights and, every ``every`` steps, sets
both the average and the weights to a blend of the two, with a blend weight that grows with the
run's progress. A callback, so it composes with the others. Used by the cifar10-fast recipe
(``--set optimizer=sgd``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from torchdojo.engine.callbacks import Callback, StepOutput

if TYPE_CHECKING:
    from torchdojo.engine.trainer import History, Trainer


class Lookahead(Callback):
    """Every ``every`` steps pull the weights to an EMA of themselves (hlb-CIFAR10's lookahead).

    The EMA's decay per pull is ``decay ** every * progress() ** 3``: almost no averaging early,
    strong averaging late. At the end of training the weights become the EMA. Every
    floating-point entry of the model's ``state_dict`` (BatchNorm statistics too) is pulled.

    Args:
        every: Optimizer steps between pulls.
        decay: Per-step decay at full progress.
        progress: The run's progress in [0, 1] (e.g. the LR schedule's ``progress``); may be
            set after construction as the ``progress`` attribute.
    """

    def __init__(
        self,
        *,
        every: int = 5,
        decay: float = 0.95,
        progress: Callable[[], float] | None = None,
    ) -> None:
        self.every, self.decay = every, decay
        self.progress: Callable[[], float] = progress or (lambda: 1.0)
        self.ema: list[Tensor] = []

    def on_fit_start(self, trainer: Trainer) -> None:
        values = list(trainer.unwrapped_model.state_dict().values())
        if self.ema:  # a resumed run loaded its average
            self.ema = [e.to(t.device) for e, t in zip(self.ema, values, strict=True)]
        else:
            self.ema = [t.detach().clone() for t in values]

    def on_batch_end(self, trainer: Trainer, output: StepOutput) -> None:
        if trainer.state.step % self.every == 0:
            decay = self.decay**self.every * self.progress() ** 3
            self._pull(trainer.unwrapped_model, decay)

    def on_fit_end(self, trainer: Trainer, history: History) -> None:
        self._pull(trainer.unwrapped_model, 1.0)

    @torch.no_grad()
    def _pull(self, model: nn.Module, decay: float) -> None:
        for ema, t in zip(self.ema, model.state_dict().values(), strict=True):
            if t.is_floating_point():
                ema.lerp_(t, 1 - decay)
                t.copy_(ema)

    def state_dict(self) -> dict[str, Any]:
        return {"ema": list(self.ema)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state:
            self.ema = [t.clone() for t in state["ema"]]


__all__ = ["Lookahead"]
