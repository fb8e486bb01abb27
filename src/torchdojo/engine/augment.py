"""GPU-style batch augmentation on CPU tensors: random translation and alternating flips.

After Keller Jordan's airbench94 (https://github.com/KellerJordan/cifar10-airbench, "94% on
CIFAR-10 in 3.29 seconds on a single GPU", 2024): the images stay one uint8 tensor in memory
and every batch is normalized, translated and flipped in a few whole-batch torch ops, with no
per-sample Python. Used by the cifar10-fast and cifar10-zoo recipes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import Tensor

from torchdojo.engine.loader import epoch_permutation


class AugmentedLoader:
    """uint8 image tensors -> normalized, randomly translated and flipped float batches.

    Augmentation runs on whole batches in torch (reflect-pad ``translate`` px, random crop,
    flip), like airbench does on the GPU. Flips *alternate*: sample i is flipped in epoch e iff
    ``bit_i xor (e odd)``, so every image is seen both ways every two epochs (airbench's
    "alternating flip", worth about 0.5 epoch). Resumable mid-epoch like ``TensorLoader``;
    the ragged last batch is dropped, as in airbench.

    Args:
        x: Images (N, C, H, W), usually uint8.
        y: Labels (N,).
        batch_size: Samples per batch.
        normalize: uint8 batch -> float batch (e.g. ``torchdojo.data.Normalize``).
        seed: Seeds the per-epoch order, the shifts and the flip bits.
        translate: Largest shift in pixels (0: none).
        flip: Mirror images horizontally (alternating).
    """

    def __init__(
        self,
        x: Tensor,
        y: Tensor,
        *,
        batch_size: int,
        normalize: Callable[[Tensor], Tensor],
        seed: int = 0,
        translate: int = 2,
        flip: bool = True,
    ) -> None:
        self.x, self.y, self.batch_size, self.normalize = x, y, batch_size, normalize
        self.seed, self.translate, self.flip = seed, translate, flip
        generator = torch.Generator().manual_seed(seed + 17)
        self.flip_bits = torch.rand(len(x), generator=generator) < 0.5
        self.epoch, self.start_batch = 0, 0

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose order, shifts and flips the next iteration uses."""
        self.epoch = epoch

    def set_start(self, batch_index: int) -> None:
        """Skip the first ``batch_index`` batches of the next iteration (for exact resume)."""
        self.start_batch = batch_index

    def __len__(self) -> int:
        return len(self.x) // self.batch_size

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        order = epoch_permutation(len(self.x), seed=self.seed, epoch=self.epoch)
        generator = torch.Generator().manual_seed(self.seed * 7919 + self.epoch)
        start, self.start_batch = self.start_batch, 0
        for b in range(len(self)):
            idx = order[b * self.batch_size : (b + 1) * self.batch_size]  # (B,)
            shifts = torch.randint(0, 2 * self.translate + 1, (len(idx), 2), generator=generator)
            if b < start:
                continue  # keep the generator in step for an exact resume
            x = self.normalize(self.x[idx])  # (B, C, H, W) float
            x = random_translate(x, shifts, self.translate)
            if self.flip:
                flip = self.flip_bits[idx] ^ bool(self.epoch % 2)  # (B,)
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


__all__ = ["AugmentedLoader", "random_translate"]
