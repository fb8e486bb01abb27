"""In-memory datasets: one tensor of inputs, one of targets, and what they mean."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor


@dataclass
class ArrayDataset:
    """A dataset held as tensors.

    Args:
        x: Inputs, (N, C, H, W) uint8 images or (N, D) float features.
        y: Targets, (N,) int64 class indices or (N, ...) float values.
        classes: Class names (empty for regression).
        source: One line saying where the data came from (shown to the user).
        mean: Per-channel mean of ``x`` scaled to [0, 1] (images) for normalization.
        std: Per-channel std likewise.
        reference: False for stand-ins (embedded subsets, synthetic twins, subsets): a
            recipe's measured floors do not apply to them.
        fallback_reason: Why a stand-in replaced the real data (e.g. the files were missing
            and there was no network), shown to the user; "" when nothing was replaced.
    """

    x: Tensor
    y: Tensor
    classes: list[str] = field(default_factory=list)
    source: str = ""
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()
    reference: bool = True
    fallback_reason: str = ""

    def __len__(self) -> int:
        return len(self.x)

    def subset(self, n: int | None, *, seed: int = 0) -> ArrayDataset:
        """A seeded random subset of ``n`` samples (all when ``n`` is None or too large)."""
        if n is None or n >= len(self):
            return self
        idx = torch.randperm(len(self), generator=torch.Generator().manual_seed(seed))[:n]
        return ArrayDataset(
            self.x[idx],
            self.y[idx],
            self.classes,
            f"{self.source} (subset of {n})",
            self.mean,
            self.std,
            reference=False,
            fallback_reason=self.fallback_reason,
        )


class Normalize:
    """uint8 image batch -> float, scaled to [0, 1], minus mean, over std (per channel)."""

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        self.mean = torch.tensor(mean).view(1, -1, 1, 1)
        self.std = torch.tensor(std).view(1, -1, 1, 1)
        self.scale = 1.0 / 255.0

    def __call__(self, x: Tensor) -> Tensor:
        if self.mean.device != x.device:
            self.mean, self.std = self.mean.to(x.device), self.std.to(x.device)
        x = x.float() * self.scale
        return (x - self.mean) / self.std  # (B, C, H, W)
