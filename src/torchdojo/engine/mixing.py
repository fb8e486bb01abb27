"""MixUp and CutMix: train on blends of two samples with blended (soft) targets.

MixUp (Zhang et al., 2018, https://arxiv.org/abs/1710.09412) blends whole inputs,
``x = lam * a + (1 - lam) * b`` and ``y = lam * onehot(a) + (1 - lam) * onehot(b)``;
CutMix (Yun et al., 2019, https://arxiv.org/abs/1905.04899) pastes a box of ``b`` into ``a``
and sets ``lam`` to the share of ``a`` that is left. Images go through torchvision's
``transforms.v2.MixUp`` / ``CutMix`` (partner = the batch rolled by one); other inputs (1-D
signals, features) use :func:`mixup` here. ``nn.CrossEntropyLoss`` takes soft targets as they
are, so the :class:`Mix` callback only changes each training batch; validation stays clean.
Taught in lessons on augmentation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor
from torch.nn import functional as F  # noqa: N812

from torchdojo.engine.callbacks import Callback

if TYPE_CHECKING:
    from torchdojo.engine.trainer import Trainer


def mixup(x: Tensor, y: Tensor, *, lam: float, num_classes: int) -> tuple[Tensor, Tensor]:
    """Blend each sample with the previous one in the batch (``x.roll(1, 0)``), torchvision's
    pairing; returns ``(x_mixed, soft_targets)`` with soft targets of shape (B, num_classes)."""
    target = F.one_hot(y, num_classes).to(x.dtype)  # (B, num_classes)
    x_mixed = x.mul(lam).add_(x.roll(1, 0), alpha=1.0 - lam)
    y_soft = target.mul(lam).add_(target.roll(1, 0), alpha=1.0 - lam)
    return x_mixed, y_soft


class BatchMixer:
    """Apply MixUp or CutMix (one of the two, chosen per batch) with probability ``p``.

    Args:
        num_classes: Classes, for the one-hot targets.
        mixup_alpha: Beta(alpha, alpha) draws MixUp's ``lam``; 0 disables MixUp.
        cutmix_alpha: Beta(alpha, alpha) draws CutMix's ``lam``; 0 disables it (4-D images only).
        p: Chance that a batch is mixed; unmixed batches still get one-hot targets.
    """

    def __init__(
        self,
        num_classes: int,
        *,
        mixup_alpha: float = 0.2,
        cutmix_alpha: float = 1.0,
        p: float = 1.0,
    ) -> None:
        from torchvision.transforms import v2

        if mixup_alpha <= 0 and cutmix_alpha <= 0:
            raise ValueError("enable MixUp or CutMix: set mixup_alpha or cutmix_alpha above 0")
        self.num_classes, self.p = num_classes, p
        self.mixup_alpha, self.cutmix_alpha = mixup_alpha, cutmix_alpha
        choices: list[Any] = []
        if mixup_alpha > 0:
            choices.append(v2.MixUp(alpha=mixup_alpha, num_classes=num_classes))
        if cutmix_alpha > 0:
            choices.append(v2.CutMix(alpha=cutmix_alpha, num_classes=num_classes))
        self.image_mix = v2.RandomChoice(choices)

    def __call__(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """``(x, y)`` with y class indices (B,) -> ``(x_mixed, soft_targets)``, (B, classes)."""
        if self.p < 1.0 and float(torch.rand(())) >= self.p:
            return x, F.one_hot(y, self.num_classes).to(x.dtype)
        if x.dim() == 4:
            x_mixed, y_soft = self.image_mix(x, y)
            return x_mixed, y_soft.to(x.dtype)
        if self.mixup_alpha <= 0:
            raise ValueError(f"CutMix needs (B, C, H, W) images, got shape {tuple(x.shape)}")
        beta = torch.distributions.Beta(self.mixup_alpha, self.mixup_alpha)
        return mixup(x, y, lam=float(beta.sample()), num_classes=self.num_classes)


class Mix(Callback):
    """Mix every ``(x, y)`` training batch with a :class:`BatchMixer`: the step then sees
    ``(x_mixed, soft_targets)``; validation batches are left alone.

    Args:
        mixer: The :class:`BatchMixer` to apply.
    """

    def __init__(self, mixer: BatchMixer) -> None:
        self.mixer = mixer

    def on_batch_start(self, trainer: Trainer, batch: Any) -> Any:
        x, y = batch
        return self.mixer(x, y)


__all__ = ["BatchMixer", "Mix", "mixup"]
