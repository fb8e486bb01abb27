"""Vision Transformer, ViT-Tiny widths, for small images (Dosovitskiy et al., 2020,
https://arxiv.org/abs/2010.11929; d2l chapter 11.8).

An image becomes a sequence of patch tokens plus a learned [CLS] token; a stack of pre-norm
transformer blocks mixes them and the [CLS] token's final state is classified. ViT-Tiny is
``dim=192, depth=12, heads=3`` (Touvron et al., DeiT); with 4x4 patches a 32x32 image gives
64 tokens. Taught in lessons/11_vit.py.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from torchdojo.models.registry import register_model
from torchdojo.nn import PatchEmbed, TransformerBlock


@dataclass(frozen=True)
class ViTConfig:
    """Shape of a Vision Transformer."""

    image_size: int = 32
    patch_size: int = 4
    dim: int = 192  # embedding width D
    depth: int = 12  # number of transformer blocks
    heads: int = 3  # attention heads; dim must be divisible by heads
    mlp_ratio: float = 4.0  # hidden width of each block's MLP, as a multiple of dim
    dropout: float = 0.0

    def __post_init__(self) -> None:
        if self.image_size % self.patch_size != 0:
            raise ValueError(
                f"image_size={self.image_size} must be divisible by patch_size={self.patch_size}"
            )

    @property
    def num_patches(self) -> int:
        """Number of patch tokens N."""
        return (self.image_size // self.patch_size) ** 2


class VisionTransformer(nn.Module):
    """Patch embedding, [CLS] token, learned position embedding, encoder, linear head.

    Taught in lessons/11_vit.py.

    Args:
        config: Sizes of the model.
        in_channels: Channels of the input image.
        num_classes: Number of output logits.
    """

    def __init__(self, config: ViTConfig, *, in_channels: int = 3, num_classes: int = 10):
        super().__init__()
        D = config.dim
        self.config = config
        self.patch_embed = PatchEmbed(in_channels, D, config.patch_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, D))
        self.pos_embed = nn.Parameter(torch.zeros(1, config.num_patches + 1, D))
        self.pos_drop = nn.Dropout(config.dropout)
        self.blocks = nn.Sequential(
            *(
                TransformerBlock(
                    D, config.heads, mlp_ratio=config.mlp_ratio, dropout=config.dropout
                )
                for _ in range(config.depth)
            )
        )
        self.norm = nn.LayerNorm(D)
        self.head = nn.Linear(D, num_classes)
        # Small random position and [CLS] embeddings, as in the reference implementation.
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.cls_token, std=0.02)

    def forward(self, x: Tensor) -> Tensor:
        x = self.patch_embed(x)  # (B, N, D)
        cls = self.cls_token.expand(x.shape[0], -1, -1)  # (B, 1, D)
        x = torch.cat([cls, x], dim=1) + self.pos_embed  # (B, N + 1, D)
        x = self.blocks(self.pos_drop(x))  # (B, N + 1, D)
        x = self.norm(x[:, 0])  # (B, D): the [CLS] token
        return self.head(x)  # (B, num_classes)


@register_model
def vit_tiny(
    *,
    in_channels: int = 3,
    num_classes: int = 10,
    image_size: int = 32,
    patch_size: int = 4,
    depth: int = 12,
    dropout: float = 0.0,
) -> VisionTransformer:
    """ViT-Tiny (D=192, 3 heads) for 32x32 inputs with 4x4 patches (about 5.4 M parameters)."""
    config = ViTConfig(image_size=image_size, patch_size=patch_size, depth=depth, dropout=dropout)
    return VisionTransformer(config, in_channels=in_channels, num_classes=num_classes)
