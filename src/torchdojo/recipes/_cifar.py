"""What the CIFAR-10 recipes share: the airbench net, GPU-style batch augmentation on CPU tensors,
lookahead, a time-aware triangular LR schedule and flip test-time augmentation.

The net and its tricks follow Keller Jordan's airbench94 (https://github.com/KellerJordan/
cifar10-airbench, "94% on CIFAR-10 in 3.29 seconds on a single GPU", 2024), itself descended from
tysam-code/hlb-CIFAR10 and David Page's "How to train your ResNet" (2018).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from torchdojo.data import Normalize
from torchdojo.engine.callbacks import Callback, StepOutput
from torchdojo.engine.loader import epoch_permutation


# ------------------------------------------------------------------------------ the net
class AugmentedLoader:
    """uint8 CIFAR tensors -> normalized, randomly translated and flipped float batches.

    Augmentation runs on whole batches in torch (reflect-pad 2 px, random crop, flip), like
    airbench does on the GPU. Flips *alternate*: sample i is flipped in epoch e iff
    ``bit_i xor (e odd)``, so every image is seen both ways every two epochs (airbench's
    "alternating flip", worth about 0.5 epoch). Resumable like ``TensorLoader``.
    """

    def __init__(
        self, x: Tensor, y: Tensor, *, batch_size: int, normalize: Normalize, seed: int = 0,
        translate: int = 2, flip: bool = True,
    ) -> None:  # fmt: skip
        self.x, self.y, self.batch_size, self.normalize = x, y, batch_size, normalize
        self.seed, self.translate, self.flip = seed, translate, flip
        generator = torch.Generator().manual_seed(seed + 17)
        self.flip_bits = torch.rand(len(x), generator=generator) < 0.5
        self.epoch, self.start_batch = 0, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def set_start(self, batch_index: int) -> None:
        self.start_batch = batch_index

    def __len__(self) -> int:
        return len(self.x) // self.batch_size  # drop the ragged last batch, as airbench

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        order = epoch_permutation(len(self.x), seed=self.seed, epoch=self.epoch)
        generator = torch.Generator().manual_seed(self.seed * 7919 + self.epoch)
        start, self.start_batch = self.start_batch, 0
        for b in range(len(self)):
            idx = order[b * self.batch_size : (b + 1) * self.batch_size]  # (B,)
            shifts = torch.randint(0, 2 * self.translate + 1, (len(idx), 2), generator=generator)
            if b < start:
                continue  # keep the generator in step for an exact resume
            x = self.normalize(self.x[idx])  # (B, 3, 32, 32) float
            x = random_translate(x, shifts, self.translate)
            if self.flip:
                flip = self.flip_bits[idx] ^ bool(self.epoch % 2)
                x = torch.where(flip[:, None, None, None], x.flip(3), x)
            yield x, self.y[idx]


def random_translate(x: Tensor, shifts: Tensor, pad: int) -> Tensor:
    """Reflect-pad by ``pad`` and crop back at per-sample ``shifts`` (B, 2) in [0, 2*pad]."""
    if pad == 0:
        return x
    B, C, H, W = x.shape
    padded = F.pad(x, (pad, pad, pad, pad), mode="reflect")  # (B, C, H+2p, W+2p)
    out = torch.empty_like(x)
    for dy in range(2 * pad + 1):
        for dx in range(2 * pad + 1):
            mask = (shifts[:, 0] == dy) & (shifts[:, 1] == dx)  # (B,)
            out[mask] = padded[mask, :, dy : dy + H, dx : dx + W]
    return out


# --------------------------------------------------------------------- optimization
def param_groups(
    model: nn.Module, *, lr: float, weight_decay: float, bias_scale: float
) -> list[dict[str, Any]]:
    """airbench's groups: biases (BN and whitening) learn ``bias_scale`` x faster."""
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    biases = [p for n, p in trainable if p.ndim < 2]
    weights = [p for n, p in trainable if p.ndim >= 2]
    return [  # weights first: the logged "lr" is theirs
        {"params": weights, "lr": lr, "weight_decay": weight_decay},
        {"params": biases, "lr": lr * bias_scale, "weight_decay": weight_decay / bias_scale},
    ]


class TriangularSchedule:
    """LR factor 0.2 -> 1 at 23 % -> 0.07, over progress = max(steps, time) spent.

    With a time budget the schedule ends when the budget does, so a run cut by
    ``--time-budget`` still anneals instead of stopping at full LR.
    """

    def __init__(
        self, optimizer: torch.optim.Optimizer, *, total_steps: int,
        clock: Callable[[], float] | None = None, time_budget: float | None = None,
        peak: float = 0.23, start: float = 0.2, end: float = 0.07,
    ) -> None:  # fmt: skip
        self.optimizer, self.total_steps = optimizer, total_steps
        self.clock, self.time_budget = clock, time_budget
        self.peak, self.start, self.end = peak, start, end
        self.base_lrs = [g["lr"] for g in optimizer.param_groups]
        self.steps = 0
        self._apply()

    def progress(self) -> float:
        by_steps = self.steps / self.total_steps
        if self.clock is None or not self.time_budget:
            return min(by_steps, 1.0)
        return min(max(by_steps, self.clock() / self.time_budget), 1.0)

    def factor(self) -> float:
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


class Lookahead(Callback):
    """Every ``every`` steps pull the weights to an EMA of themselves (hlb-CIFAR10's lookahead).

    The EMA decay grows as progress**3, and at the end the weights become the EMA.
    """

    def __init__(self, *, every: int = 5, decay: float = 0.95) -> None:
        self.every, self.decay = every, decay
        self.progress: Callable[[], float] = lambda: 1.0  # set to the LR schedule's progress
        self.ema: list[Tensor] = []

    def on_fit_start(self, trainer: Any) -> None:
        self.ema = [t.detach().clone() for t in trainer.unwrapped_model.state_dict().values()]

    def on_batch_end(self, trainer: Any, output: StepOutput) -> None:
        if trainer.state.step % self.every == 0:
            decay = self.decay**self.every * self.progress() ** 3
            self._pull(trainer.unwrapped_model, decay)

    def on_fit_end(self, trainer: Any, history: Any) -> None:
        self._pull(trainer.unwrapped_model, 1.0)

    @torch.no_grad()
    def _pull(self, model: nn.Module, decay: float) -> None:
        for ema, t in zip(self.ema, model.state_dict().values(), strict=True):
            if t.is_floating_point():
                ema.lerp_(t, 1 - decay)
                t.copy_(ema)


@torch.inference_mode()
def tta_logits(model: nn.Module, x: Tensor, *, level: int = 1, batch_size: int = 2000) -> Tensor:
    """Test-time augmentation logits, airbench's levels.

    0: the image alone; 1: mean over the image and its mirror; 2: half of level 1 plus half the
    level-1 logits of two copies shifted one pixel up-left and down-right (reflect padding):
    6 forward passes per image.
    """
    if level not in (0, 1, 2):
        raise ValueError(f"tta level {level} is not 0, 1 or 2")
    model.eval()

    def views(chunk: Tensor) -> Tensor:
        chunk = chunk.contiguous(memory_format=torch.channels_last)
        if level == 0:
            return model(chunk).float()
        return 0.5 * (model(chunk) + model(chunk.flip(3))).float()

    outs = []
    for chunk in x.split(batch_size):
        logits = views(chunk)
        if level == 2:
            H, W = chunk.shape[-2:]
            padded = F.pad(chunk, (1, 1, 1, 1), mode="reflect")  # (B, C, H+2, W+2)
            shifted = (views(padded[..., :H, :W]) + views(padded[..., 2:, 2:])) / 2
            logits = 0.5 * logits + 0.5 * shifted
        outs.append(logits)
    return torch.cat(outs)


def steps_for(n: int, batch_size: int, epochs: float) -> int:
    return max(1, math.ceil(epochs * (n // batch_size)))
