"""What the video recipe shares: clip batches with ECO's frame sampling, and accuracy per family.

``ClipLoader`` keeps whole clips in memory as uint8 (N, C, T, H, W) and samples ``segments``
frames from each at batch time: one random frame per segment in training, drawn from a generator
seeded by ``(seed, epoch, batch)`` so a resumed run replays the same frames, and the centre frame
of each segment in evaluation. Taught in lessons/28_video.py; recipe ``video-actions``.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor, nn

from torchdojo.data.video import MOTION_CLASSES, MOTION_FAMILIES, sample_frames, segment_indices
from torchdojo.engine import TensorLoader
from torchdojo.engine.loader import epoch_permutation


class ClipLoader(TensorLoader):
    """``(clips, labels)`` batches of (B, C, N, H, W) floats, ``N = segments`` sampled frames.

    Args:
        x: uint8 clips (N, C, T, H, W).
        y: Class indices (N,).
        segments: Frames sampled per clip, one per segment.
        mean: Per-channel mean of the [0, 1] frames.
        std: Per-channel std likewise.
        train: Random frame per segment and shuffled batches (else centre frames, in order).
        batch_size: Clips per batch.
        seed: Seeds the order and the sampled frames of every epoch.
    """

    def __init__(
        self,
        x: Tensor,
        y: Tensor,
        *,
        segments: int,
        mean: tuple[float, ...],
        std: tuple[float, ...],
        train: bool,
        batch_size: int,
        seed: int = 0,
    ) -> None:
        super().__init__(x, y, batch_size=batch_size, shuffle=train, seed=seed)
        self.segments, self.train = segments, train
        self.mean = torch.tensor(mean).view(1, -1, 1, 1, 1)
        self.std = torch.tensor(std).view(1, -1, 1, 1, 1)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        n, total = len(self.x), self.x.shape[2]
        order = (
            epoch_permutation(n, seed=self.seed, epoch=self.epoch)
            if self.shuffle
            else torch.arange(n)
        )
        start, self.start_batch = self.start_batch, 0
        for b in range(start, len(self)):
            idx = order[b * self.batch_size : (b + 1) * self.batch_size]  # (B,)
            generator = torch.Generator().manual_seed(
                (self.seed * 1_000_003 + self.epoch) * 100_003 + b
            )
            frames = segment_indices(
                total, self.segments, train=self.train, generator=generator, batch=len(idx)
            )  # (B, N)
            clips = sample_frames(self.x[idx], frames)  # (B, C, N, H, W) uint8
            yield (clips.float() / 255 - self.mean) / self.std, self.y[idx]


def family_accuracy(logits: Tensor, targets: Tensor, classes: list[str]) -> dict[str, float]:
    """Accuracy when the model only has to choose among the classes of the true class's motion
    family (right/left/bounce, up/down, cw/ccw, in/out), and what chance gives there.

    A model that only sees *which frames* a clip has (not their order) is at chance here.
    """
    if sorted(classes) != sorted(MOTION_CLASSES):
        return {}
    family_of = torch.empty(len(classes), dtype=torch.long)
    for f, members in enumerate(MOTION_FAMILIES.values()):
        for name in members:
            family_of[classes.index(name)] = f
    same = family_of[targets][:, None] == family_of[None, :]  # (B, K): the true family's classes
    masked = logits.masked_fill(~same, float("-inf"))  # (B, K)
    correct = (masked.argmax(1) == targets).float().mean()
    sizes = same.sum(1).float()  # (B,): classes in each clip's family
    return {"family_acc": float(correct), "family_chance": float((1 / sizes).mean())}


@torch.inference_mode()
def clip_logits(model: nn.Module, loader: ClipLoader) -> tuple[Tensor, Tensor]:
    """Logits and targets of ``model`` over every batch of ``loader``."""
    model.eval()
    device = next(model.parameters()).device
    logits, targets = [], []
    for x, y in loader:
        logits.append(model(x.to(device)).float().cpu())
        targets.append(y)
    return torch.cat(logits), torch.cat(targets)


__all__ = ["ClipLoader", "clip_logits", "family_accuracy"]
