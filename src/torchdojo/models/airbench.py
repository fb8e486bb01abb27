"""The airbench CIFAR-10 net (Keller Jordan, cifar10-airbench): whitened first conv, conv groups.

Trained by the ``cifar10-fast`` recipe; ``init_whitening`` sets the first conv from the patch
covariance of training images, ``airbench_param_groups`` gives airbench94's SGD groups.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from torchdojo.models.registry import register_model


class ConvGroup(nn.Sequential):
    """conv -> 2x2 max-pool -> BN -> GELU -> conv -> BN -> GELU (pooling early saves 4x FLOPs)."""

    def __init__(self, in_channels: int, out_channels: int, *, bn_momentum: float) -> None:
        def bn() -> nn.BatchNorm2d:
            norm = nn.BatchNorm2d(out_channels, eps=1e-12, momentum=bn_momentum)
            norm.weight.requires_grad_(False)  # airbench: scale fixed at 1, only the bias learns
            return norm

        super().__init__(
            nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
            nn.MaxPool2d(2),
            bn(),
            nn.GELU(),
            nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
            bn(),
            nn.GELU(),
        )


class AirbenchNet(nn.Sequential):
    """The airbench94 net: a 2x2 patch-whitening conv, three conv groups, max-pool, linear/9.

    About 2 M parameters and 0.24 GFLOP per 32x32 image. Taught in recipes/cifar10_fast.py.

    Args:
        widths: Channels of the three conv groups.
        num_classes: Output classes.
        bn_momentum: PyTorch BN momentum (airbench's 0.6 "momentum" is 0.4 here): fast running
            statistics track the weights that lookahead keeps pulling back.
    """

    def __init__(
        self, *, widths: tuple[int, int, int], num_classes: int, bn_momentum: float = 0.4
    ) -> None:
        whiten_width = 2 * 3 * 2**2  # 12 eigen-patches of 2x2x3, each with both signs
        super().__init__(
            nn.Conv2d(3, whiten_width, 2, padding=0, bias=True),  # (B, 24, 31, 31)
            nn.GELU(),
            ConvGroup(whiten_width, widths[0], bn_momentum=bn_momentum),  # (B, w0, 15, 15)
            ConvGroup(widths[0], widths[1], bn_momentum=bn_momentum),  # (B, w1, 7, 7)
            ConvGroup(widths[1], widths[2], bn_momentum=bn_momentum),  # (B, w2, 3, 3)
            nn.MaxPool2d(3),  # (B, w2, 1, 1)
            nn.Flatten(),
            nn.Linear(widths[2], num_classes, bias=False),
        )
        self.logit_scale = 1 / 9  # airbench downscales the logits

    @property
    def whiten(self) -> nn.Conv2d:
        """The first conv: the patch-whitening filter bank."""
        conv = self[0]
        assert isinstance(conv, nn.Conv2d)
        return conv

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(x) * self.logit_scale


@register_model
def airbench(
    *, num_classes: int = 10, widths: tuple[int, int, int] = (64, 256, 256)
) -> AirbenchNet:
    """The airbench94 CIFAR-10 net with dirac-initialized convs (whitening is set from data)."""
    net = AirbenchNet(widths=tuple(widths), num_classes=num_classes)  # type: ignore[arg-type]
    for module in net.modules():
        if isinstance(module, nn.Conv2d) and module.kernel_size == (3, 3):
            w = module.weight.data  # (out, in, 3, 3): first `in` filters start as identities
            torch.nn.init.dirac_(w[: w.size(1)])
    return net


@torch.no_grad()
def init_whitening(conv: nn.Conv2d, images: Tensor, *, eps: float = 5e-4) -> None:
    """Set ``conv`` (24 filters of 2x2x3) to whiten 2x2 patches of ``images`` and freeze it.

    The eigenvectors of the patch covariance, scaled by 1/sqrt(eigenvalue), decorrelate the
    input (Page 2018); each appears with both signs so a following GELU keeps all information.
    """
    c, h, w = conv.in_channels, *conv.kernel_size
    patches = images.unfold(2, h, 1).unfold(3, w, 1)  # (N, C, 31, 31, h, w)
    patches = patches.transpose(1, 3).reshape(-1, c * h * w).double()  # (N*31*31, C*h*w)
    patches = patches - patches.mean(0)
    covariance = patches.T @ patches / len(patches)  # (12, 12)
    eigenvalues, eigenvectors = torch.linalg.eigh(covariance)
    filters = (eigenvectors.T / torch.sqrt(eigenvalues + eps)[:, None]).view(-1, c, h, w)
    filters = filters.flip(0).float()  # largest eigenvalue first
    conv.weight.copy_(torch.cat([filters, -filters]))
    conv.weight.requires_grad_(False)


def airbench_param_groups(
    model: nn.Module, *, lr: float, weight_decay: float, bias_scale: float
) -> list[dict[str, Any]]:
    """airbench94's SGD groups: biases (BatchNorm and whitening) learn ``bias_scale`` x faster.

    Weights come first, so the logged ``lr`` is theirs; the biases' weight decay is divided by
    ``bias_scale`` so that their decay per step matches the weights'.
    """
    trainable = [p for p in model.parameters() if p.requires_grad]
    biases = [p for p in trainable if p.ndim < 2]
    weights = [p for p in trainable if p.ndim >= 2]
    return [
        {"params": weights, "lr": lr, "weight_decay": weight_decay},
        {"params": biases, "lr": lr * bias_scale, "weight_decay": weight_decay / bias_scale},
    ]
