"""A small Swin Transformer for 32x32 images (Liu et al., 2021, https://arxiv.org/abs/2103.14030).

Swin restricts self-attention to non-overlapping windows of ``window_size`` x ``window_size``
tokens, shifts the windows by half a window in every other block so information crosses window
borders, and merges 2x2 neighbouring tokens between stages (a CNN-like pyramid). ``swin-mini``
uses 2x2 patches (16x16 tokens), 4x4 windows and three stages of widths 48-96-192; it is much
smaller than the paper's Swin-T (96-192-384-768). Taught in lessons/11_vit.py.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from torchdojo.models.registry import register_model
from torchdojo.nn import FeedForward, PatchEmbed


@dataclass(frozen=True)
class SwinConfig:
    """Shape of a Swin Transformer."""

    image_size: int = 32
    patch_size: int = 2
    dim: int = 48  # width of the first stage; doubles at each patch merging
    depths: tuple[int, ...] = (2, 2, 2)  # blocks per stage
    heads: tuple[int, ...] = (3, 6, 12)  # attention heads per stage
    window_size: int = 4  # side of each attention window, in tokens
    mlp_ratio: float = 4.0

    def __post_init__(self) -> None:
        grid = self.image_size // self.patch_size
        sides = [grid >> i for i in range(len(self.depths))]  # token grid side of each stage
        fits = all(side <= self.window_size or side % self.window_size == 0 for side in sides)
        if self.image_size % self.patch_size or grid % (1 << (len(self.depths) - 1)) or not fits:
            raise ValueError(
                f"image_size={self.image_size} / patch_size={self.patch_size} must give a token "
                f"grid that halves {len(self.depths) - 1} times and whose sides {sides} are "
                f"multiples of window_size={self.window_size} (or smaller than it)"
            )


def window_partition(x: Tensor, window_size: int) -> Tensor:
    """Cut ``(B, H, W, C)`` into windows: ``(B * num_windows, window_size**2, C)``."""
    B, H, W, C = x.shape
    ws = window_size
    x = x.view(B, H // ws, ws, W // ws, ws, C)  # (B, H/ws, ws, W/ws, ws, C)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, ws * ws, C)  # (B * nW, ws * ws, C)


def window_reverse(windows: Tensor, window_size: int, height: int, width: int) -> Tensor:
    """Inverse of :func:`window_partition`: back to ``(B, H, W, C)``."""
    ws, C = window_size, windows.shape[-1]
    x = windows.view(-1, height // ws, width // ws, ws, ws, C)  # (B, H/ws, W/ws, ws, ws, C)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, height, width, C)  # (B, H, W, C)


def shifted_window_mask(resolution: int, window_size: int, shift: int) -> Tensor:
    """Additive attention mask ``(num_windows, N, N)``: -100 between tokens that the cyclic
    shift brought together from different image regions, 0 elsewhere (all 0 when unshifted)."""
    region = torch.zeros(1, resolution, resolution, 1)
    if shift > 0:
        bands = (slice(0, -window_size), slice(-window_size, -shift), slice(-shift, None))
        label = 0
        for rows in bands:
            for cols in bands:
                region[:, rows, cols, :] = label
                label += 1
    labels = window_partition(region, window_size).squeeze(-1)  # (nW, N)
    different = labels.unsqueeze(1) != labels.unsqueeze(2)  # (nW, N, N)
    return torch.zeros(different.shape).masked_fill(different, -100.0)


def relative_position_index(window_size: int) -> Tensor:
    """``(N, N)`` index into the ``(2 * ws - 1) ** 2`` table of relative offsets."""
    coords = torch.stack(
        torch.meshgrid(torch.arange(window_size), torch.arange(window_size), indexing="ij")
    ).flatten(1)  # (2, N)
    relative = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0)  # (N, N, 2)
    relative += window_size - 1  # shift offsets to start at 0
    return relative[..., 0] * (2 * window_size - 1) + relative[..., 1]  # (N, N)


class WindowAttention(nn.Module):
    """Multi-head self-attention inside each window, plus a learned relative position bias.

    Taught in lessons/11_vit.py.

    Args:
        dim: Width of each token.
        heads: Number of attention heads.
        window_size: Side of the window, in tokens.
    """

    bias_index: Tensor  # (N, N) buffer

    def __init__(self, dim: int, heads: int, window_size: int) -> None:
        super().__init__()
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        self.qkv = nn.Linear(dim, 3 * dim)
        self.bias_table = nn.Parameter(torch.zeros((2 * window_size - 1) ** 2, heads))
        nn.init.trunc_normal_(self.bias_table, std=0.02)
        self.register_buffer("bias_index", relative_position_index(window_size), persistent=False)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        B_w, N, D = x.shape  # windows across the batch, tokens per window, width
        qkv = self.qkv(x).view(B_w, N, 3, self.heads, D // self.heads)  # (B_w, N, 3, heads, Dh)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)  # each (B_w, heads, N, Dh)
        attn = (q @ k.transpose(-2, -1)) * self.scale  # (B_w, heads, N, N)
        bias = self.bias_table[self.bias_index].permute(2, 0, 1)  # (heads, N, N)
        num_windows = mask.shape[0]
        attn = attn.view(-1, num_windows, self.heads, N, N) + bias + mask.unsqueeze(1)
        attn = attn.view(B_w, self.heads, N, N).softmax(dim=-1)
        x = (attn @ v).transpose(1, 2).reshape(B_w, N, D)  # (B_w, N, D)
        return self.proj(x)


class SwinBlock(nn.Module):
    """Pre-norm block: (shifted) window attention, then an MLP, both residual.

    Taught in lessons/11_vit.py.

    Args:
        dim: Width of each token.
        heads: Number of attention heads.
        resolution: Side of the square token grid.
        window_size: Side of each window (clipped to ``resolution``).
        shift: Cyclic shift in tokens (0 or ``window_size // 2``; 0 when one window covers all).
        mlp_ratio: Hidden width of the MLP as a multiple of ``dim``.
    """

    attn_mask: Tensor  # (num_windows, N, N) buffer

    def __init__(
        self,
        dim: int,
        heads: int,
        *,
        resolution: int,
        window_size: int,
        shift: int,
        mlp_ratio: float = 4.0,
    ) -> None:
        super().__init__()
        self.window_size = min(window_size, resolution)
        self.shift = 0 if resolution <= window_size else shift
        self.resolution = resolution
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, heads, self.window_size)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = FeedForward(dim, int(dim * mlp_ratio))
        mask = shifted_window_mask(resolution, self.window_size, self.shift)
        self.register_buffer("attn_mask", mask, persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        B, L, D = x.shape  # batch, tokens (resolution ** 2), width
        R, ws, s = self.resolution, self.window_size, self.shift
        y = self.norm1(x).view(B, R, R, D)  # (B, R, R, D)
        y = torch.roll(y, shifts=(-s, -s), dims=(1, 2))  # cyclic shift (identity when s=0)
        windows = self.attn(window_partition(y, ws), self.attn_mask)  # (B * nW, ws * ws, D)
        y = torch.roll(window_reverse(windows, ws, R, R), shifts=(s, s), dims=(1, 2))
        x = x + y.reshape(B, L, D)  # (B, L, D)
        return x + self.mlp(self.norm2(x))


class PatchMerging(nn.Module):
    """Concatenate each 2x2 group of tokens and project 4D -> 2D: half the side, twice the width.

    Taught in lessons/11_vit.py.

    Args:
        dim: Width of the input tokens.
        resolution: Side of the input token grid (even).
    """

    def __init__(self, dim: int, resolution: int) -> None:
        super().__init__()
        self.resolution = resolution
        self.norm = nn.LayerNorm(4 * dim)
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        B, _, D = x.shape
        R = self.resolution
        x = x.view(B, R // 2, 2, R // 2, 2, D)  # (B, R/2, 2, R/2, 2, D)
        x = x.permute(0, 1, 3, 4, 2, 5).reshape(B, (R // 2) ** 2, 4 * D)  # (B, L/4, 4D)
        return self.reduction(self.norm(x))  # (B, L/4, 2D)


class SwinTransformer(nn.Module):
    """Patch embedding, stages of Swin blocks joined by patch merging, mean pool, linear head.

    Taught in lessons/11_vit.py.

    Args:
        config: Sizes of the model.
        in_channels: Channels of the input image.
        num_classes: Number of output logits.
    """

    def __init__(self, config: SwinConfig, *, in_channels: int = 3, num_classes: int = 10):
        super().__init__()
        if len(config.depths) != len(config.heads):
            raise ValueError(f"depths {config.depths} and heads {config.heads} differ in length")
        self.patch_embed = PatchEmbed(in_channels, config.dim, config.patch_size)  # (B, L, D)
        stages: list[nn.Module] = []
        dim, resolution = config.dim, config.image_size // config.patch_size
        for i, (depth, heads) in enumerate(zip(config.depths, config.heads, strict=True)):
            stages += [
                SwinBlock(
                    dim,
                    heads,
                    resolution=resolution,
                    window_size=config.window_size,
                    shift=(j % 2) * (config.window_size // 2),
                    mlp_ratio=config.mlp_ratio,
                )
                for j in range(depth)
            ]
            if i < len(config.depths) - 1:
                stages.append(PatchMerging(dim, resolution))
                dim, resolution = 2 * dim, resolution // 2
        self.stages = nn.Sequential(*stages)  # (B, 16, 192) with the swin-mini defaults
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.patch_embed(x)  # (B, L, D)
        x = self.stages(x)  # (B, L', D')
        x = self.norm(x).mean(dim=1)  # (B, D'): average over tokens
        return self.head(x)  # (B, num_classes)


@register_model
def swin_mini(
    *,
    in_channels: int = 3,
    num_classes: int = 10,
    image_size: int = 32,
    patch_size: int = 2,
    window_size: int = 4,
) -> SwinTransformer:
    """A three-stage Swin (48-96-192) for 32x32 inputs (about 1.3 M parameters)."""
    config = SwinConfig(image_size=image_size, patch_size=patch_size, window_size=window_size)
    return SwinTransformer(config, in_channels=in_channels, num_classes=num_classes)
