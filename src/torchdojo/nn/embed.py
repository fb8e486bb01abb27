"""Patch embedding: the step that turns an image into a sequence of tokens for ViT and Swin.

Dosovitskiy et al., 2020 (https://arxiv.org/abs/2010.11929). Taught in lessons/11_vit.py.
"""

from __future__ import annotations

from torch import Tensor, nn


class PatchEmbed(nn.Module):
    """Cut an image into non-overlapping patches and project each one to ``dim``.

    A conv with kernel = stride = ``patch_size`` is exactly "flatten each patch, then a shared
    linear layer", and faster.

    Taught in lessons/11_vit.py.

    Args:
        in_channels: Channels of the input image.
        dim: Width of each output token.
        patch_size: Side of each square patch, in pixels.
    """

    def __init__(self, in_channels: int, dim: int, patch_size: int) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv2d(in_channels, dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: Tensor) -> Tensor:
        x = self.proj(x)  # (B, D, H / p, W / p)
        return x.flatten(2).transpose(1, 2)  # (B, N, D) with N = (H / p) * (W / p)
