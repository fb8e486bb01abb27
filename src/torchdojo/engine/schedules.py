"""LR schedules that are not in ``torch.optim.lr_scheduler``.

:class:`TriangularSchedule` is airbench94's (https://github.com/KellerJordan/cifar10-airbench):
a linear warmup to a peak and a linear decay, over the larger of the share of steps and the
share of a time budget spent, so a run cut by its budget still anneals. Used by the
cifar10-fast and cifar10-zoo recipes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch


class TriangularSchedule:
    """LR factor ``start`` -> 1 at ``peak`` -> ``end``, linear in progress, stepped per step.

    Progress is ``max(steps / total_steps, clock() / time_budget)``, capped at 1. With a time
    budget the schedule ends when the budget does, so a run cut by ``--time-budget`` still
    anneals instead of stopping at full LR. The defaults (0.2 -> 1 at 23 % -> 0.07) are
    airbench94's.

    Args:
        optimizer: Its groups' ``lr`` are the peaks.
        total_steps: Optimizer steps of the whole run.
        clock: Seconds of training so far (e.g. ``lambda: trainer.state.train_time``); None
            (or no ``time_budget``): progress by steps only. May be set after construction.
        time_budget: Seconds of training the run may take.
        peak: Progress at which the factor reaches 1.
        start: Factor at progress 0.
        end: Factor at progress 1.
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        *,
        total_steps: int,
        clock: Callable[[], float] | None = None,
        time_budget: float | None = None,
        peak: float = 0.23,
        start: float = 0.2,
        end: float = 0.07,
    ) -> None:
        self.optimizer, self.total_steps = optimizer, total_steps
        self.clock, self.time_budget = clock, time_budget
        self.peak, self.start, self.end = peak, start, end
        self.base_lrs = [g["lr"] for g in optimizer.param_groups]
        self.steps = 0
        self._apply()

    def progress(self) -> float:
        """The share of the run done, in [0, 1]: of the steps or of the budget, the larger."""
        by_steps = self.steps / self.total_steps
        if self.clock is None or not self.time_budget:
            return min(by_steps, 1.0)
        return min(max(by_steps, self.clock() / self.time_budget), 1.0)

    def factor(self) -> float:
        """The LR multiplier at the current progress."""
        p = self.progress()
        if p < self.peak:
            return self.start + (1 - self.start) * p / self.peak
        return 1 + (self.end - 1) * (p - self.peak) / (1 - self.peak)

    def step(self) -> None:
        self.steps += 1
        self._apply()

    def _apply(self) -> None:
        for group, base in zip(self.optimizer.param_groups, self.base_lrs, strict=True):
            group["lr"] = base * self.factor()

    def state_dict(self) -> dict[str, Any]:
        return {"steps": self.steps}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.steps = int(state["steps"])
        self._apply()


__all__ = ["TriangularSchedule"]
