"""Exponential moving average (EMA) of the weights, a callback.

After each ``every``-th optimizer step: ``ema = decay * ema + (1 - decay) * weights`` for every
floating-point entry of the model's ``state_dict`` (parameters and BatchNorm statistics; integer
buffers such as ``num_batches_tracked`` are copied). The average usually validates better than
the last weights (Polyak & Juditsky, 1992; timm's ``ModelEmaV3``). With ``validate=True`` (the
default) every validation pass runs on the average, the raw weights coming back afterwards;
save with the average through :meth:`EMA.copy_to` or :meth:`EMA.swap`. A callback, so it
composes with mixing, freezing and clipping. Taught in lessons on training techniques.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from torchdojo.engine.callbacks import Callback, StepOutput

if TYPE_CHECKING:
    from torchdojo.engine.trainer import Trainer


class EMA(Callback):
    """Keep an exponential moving average of the model's weights during training.

    Args:
        decay: Weight of the old average at each update (0.999 ~ the last 1,000 updates).
        every: Update after every ``every``-th optimizer step (cheaper for large models).
        warmup_steps: Before this many updates, copy the weights instead of averaging, so the
            average does not start from random initial weights.
        validate: Run every validation pass on the average (the raw weights keep training).
    """

    def __init__(
        self,
        decay: float = 0.999,
        *,
        every: int = 1,
        warmup_steps: int = 0,
        validate: bool = True,
    ) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"decay must be in [0, 1), got {decay}; 0.999 is a common choice")
        if every < 1:
            raise ValueError(f"every must be >= 1, got {every}")
        self.decay, self.every, self.warmup_steps = decay, every, warmup_steps
        self.validate = validate
        self.shadow: dict[str, Tensor] = {}
        self.num_updates = 0
        self._swapped: contextlib.ExitStack | None = None

    def on_fit_start(self, trainer: Trainer) -> None:
        if not self.shadow:  # a resumed run already loaded its average
            self.reset(trainer.unwrapped_model)

    def on_batch_end(self, trainer: Trainer, output: StepOutput) -> None:
        if output.optimizer_stepped and trainer.state.step % self.every == 0:
            self.update(trainer.unwrapped_model)

    def on_validation_start(self, trainer: Trainer) -> None:
        if self.validate and self.shadow:
            self._swapped = contextlib.ExitStack()
            self._swapped.enter_context(self.swap(trainer.unwrapped_model))

    def on_validation_end(self, trainer: Trainer) -> None:
        if self._swapped is not None:
            self._swapped.close()  # the raw weights come back
            self._swapped = None

    def reset(self, model: nn.Module) -> None:
        """Start the average at ``model``'s current weights."""
        self.shadow = {k: v.detach().clone() for k, v in model.state_dict().items()}
        self.num_updates = 0

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Fold ``model``'s current weights into the average (one EMA update)."""
        if not self.shadow:
            self.reset(model)
        decay = 0.0 if self.num_updates < self.warmup_steps else self.decay
        averaged, targets, copied = [], [], []
        for key, value in model.state_dict().items():
            ema = self.shadow[key]
            if ema.is_floating_point():
                averaged.append(ema)
                targets.append(value.detach().to(ema.dtype))
            else:
                copied.append((ema, value))
        if averaged:
            torch._foreach_mul_(averaged, decay)
            torch._foreach_add_(averaged, targets, alpha=1.0 - decay)
        for ema, value in copied:
            ema.copy_(value)
        self.num_updates += 1

    @contextlib.contextmanager
    def swap(self, model: nn.Module) -> Iterator[nn.Module]:
        """Within the block ``model`` holds the averaged weights; its own come back afterwards."""
        if not self.shadow:
            raise RuntimeError("EMA has no average yet: train first (or call reset/update)")
        backup = {k: v.detach().clone() for k, v in model.state_dict().items()}
        model.load_state_dict(self.shadow)
        try:
            yield model
        finally:
            model.load_state_dict(backup)

    def copy_to(self, model: nn.Module) -> None:
        """Load the averaged weights into ``model`` for good (e.g. before saving it)."""
        model.load_state_dict(self.shadow)

    def state_dict(self) -> dict[str, Any]:
        return {"shadow": dict(self.shadow), "num_updates": self.num_updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state:
            self.shadow = {k: v.clone() for k, v in state["shadow"].items()}
            self.num_updates = int(state["num_updates"])


@contextlib.contextmanager
def averaged(model: nn.Module, ema: EMA | None) -> Iterator[nn.Module]:
    """``model`` with the EMA weights inside the block when there is an average, else as is."""
    if ema is not None and ema.shadow:
        with ema.swap(model):
            yield model
    else:
        yield model


__all__ = ["EMA", "averaged"]
