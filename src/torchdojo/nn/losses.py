"""Losses that torch does not ship: focal loss and Dice loss.

Label smoothing needs no code here: ``torch.nn.CrossEntropyLoss(label_smoothing=0.1)``.
Focal loss: Lin et al., 2017 (https://arxiv.org/abs/1708.02002). Dice loss: Milletari et al.,
2016 (https://arxiv.org/abs/1606.04797). Taught in lessons/06_losses.py.

Both take raw logits. An integer ``target`` of shape ``(B, ...)`` means multi-class logits of
shape ``(B, C, ...)`` (softmax); a float ``target`` of the logits' own shape means independent
binary labels (sigmoid).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

Reduction = Literal["mean", "sum", "none"]


def _reduce(loss: Tensor, reduction: Reduction) -> Tensor:
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    raise ValueError(f"unknown reduction {reduction!r}; choose mean, sum or none")


def focal_loss(
    logits: Tensor,
    target: Tensor,
    *,
    gamma: float = 2.0,
    alpha: float | Tensor | None = None,
    reduction: Reduction = "mean",
    ignore_index: int = -100,
) -> Tensor:
    """Cross-entropy scaled by ``(1 - p_t) ** gamma`` so easy examples count less.

    ``FL = -alpha_t * (1 - p_t) ** gamma * log(p_t)``; ``gamma=0`` and no ``alpha`` give plain
    cross-entropy.

    Args:
        logits: ``(B, C, ...)`` for integer targets, or the target's shape for float targets.
        target: Class indices ``(B, ...)``, or binary labels in [0, 1] of the logits' shape.
        gamma: Focusing strength.
        alpha: Binary: weight of the positive class (negatives get ``1 - alpha``).
            Multi-class: one weight per class as a ``(C,)`` tensor, or one float for all.
        reduction: ``"mean"`` (over non-ignored elements), ``"sum"`` or ``"none"``.
        ignore_index: Multi-class target value that contributes no loss.
    """
    if target.is_floating_point():
        ce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
        p = torch.sigmoid(logits)
        p_t = p * target + (1 - p) * (1 - target)  # probability given to the true label
        loss = ce * (1 - p_t) ** gamma
        if alpha is not None:
            loss = loss * (alpha * target + (1 - alpha) * (1 - target))
        return _reduce(loss, reduction)
    keep = target != ignore_index
    safe_target = target.where(keep, 0)
    log_p = F.log_softmax(logits, dim=1)  # (B, C, ...)
    log_p_t = log_p.gather(1, safe_target.unsqueeze(1)).squeeze(1)  # (B, ...)
    loss = -((1 - log_p_t.exp()) ** gamma) * log_p_t
    if isinstance(alpha, Tensor):
        loss = loss * alpha.to(loss)[safe_target]
    elif alpha is not None:
        loss = loss * alpha
    loss = loss * keep
    if reduction == "mean":
        return loss.sum() / keep.sum().clamp_min(1)
    return _reduce(loss, reduction)


def dice_loss(
    logits: Tensor, target: Tensor, *, smooth: float = 1.0, reduction: Reduction = "mean"
) -> Tensor:
    """One minus the soft Dice coefficient, per sample and class.

    ``dice = (2 * sum(p * t) + smooth) / (sum(p) + sum(t) + smooth)``, summed over the spatial
    dimensions; ``smooth`` keeps an empty class (no pixels, none predicted) at loss 0.

    Args:
        logits: ``(B, C, ...)`` for integer targets, or the target's shape for float targets.
        target: Class indices ``(B, ...)``, or binary masks in [0, 1] of the logits' shape.
        smooth: Additive smoothing in numerator and denominator.
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (a ``(B, C)`` tensor).
    """
    if target.is_floating_point():
        probs = torch.sigmoid(logits)
        one_hot = target
    else:
        probs = logits.softmax(dim=1)  # (B, C, ...)
        one_hot = F.one_hot(target, logits.shape[1]).movedim(-1, 1).to(probs)  # (B, C, ...)
    if probs.dim() < 3:  # (B, C): treat as one pixel per class
        probs, one_hot = probs.unsqueeze(-1), one_hot.unsqueeze(-1)
    dims = tuple(range(2, probs.dim()))
    intersection = (probs * one_hot).sum(dims)  # (B, C)
    total = probs.sum(dims) + one_hot.sum(dims)  # (B, C)
    dice = (2 * intersection + smooth) / (total + smooth)
    return _reduce(1 - dice, reduction)


class FocalLoss(nn.Module):
    """Module form of :func:`focal_loss`.

    Taught in lessons/06_losses.py.

    Args:
        gamma: Focusing strength.
        alpha: Class weighting, see :func:`focal_loss`.
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.
        ignore_index: Multi-class target value that contributes no loss.
    """

    def __init__(
        self,
        *,
        gamma: float = 2.0,
        alpha: float | Tensor | None = None,
        reduction: Reduction = "mean",
        ignore_index: int = -100,
    ) -> None:
        super().__init__()
        self.gamma = gamma
        self.alpha = alpha
        self.reduction: Reduction = reduction
        self.ignore_index = ignore_index

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        return focal_loss(
            logits,
            target,
            gamma=self.gamma,
            alpha=self.alpha,
            reduction=self.reduction,
            ignore_index=self.ignore_index,
        )


class DiceLoss(nn.Module):
    """Module form of :func:`dice_loss`.

    Taught in lessons/06_losses.py.

    Args:
        smooth: Additive smoothing in numerator and denominator.
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.
    """

    def __init__(self, *, smooth: float = 1.0, reduction: Reduction = "mean") -> None:
        super().__init__()
        self.smooth = smooth
        self.reduction: Reduction = reduction

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        return dice_loss(logits, target, smooth=self.smooth, reduction=self.reduction)
