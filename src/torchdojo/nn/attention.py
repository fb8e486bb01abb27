"""Multi-head self-attention and the pre-norm transformer block.

Vaswani et al., 2017 (https://arxiv.org/abs/1706.03762); the pre-norm layout follows ViT
(Dosovitskiy et al., 2020, https://arxiv.org/abs/2010.11929). Taught in lessons/11_vit.py.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class MultiHeadSelfAttention(nn.Module):
    """Scaled dot-product self-attention over ``heads`` heads of width ``dim // heads``.

    The attention probabilities pass through ``self.attn_drop``; a forward hook on that module
    sees them as ``(B, heads, N, N)`` (used by the attention-map plots).

    Taught in lessons/11_vit.py.

    Args:
        dim: Width of each token.
        heads: Number of attention heads; must divide ``dim``.
        qkv_bias: Learn a bias in the query/key/value projection.
        attn_dropout: Dropout on the attention probabilities.
        proj_dropout: Dropout after the output projection.
    """

    def __init__(
        self,
        dim: int,
        heads: int,
        *,
        qkv_bias: bool = True,
        attn_dropout: float = 0.0,
        proj_dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if dim % heads != 0:
            divisors = [h for h in range(1, dim + 1) if dim % h == 0 and h <= 32]
            raise ValueError(
                f"dim={dim} must be divisible by heads={heads}; try heads in {divisors}"
            )
        self.heads = heads
        self.scale = (dim // heads) ** -0.5  # 1/sqrt(Dh) keeps the logits' variance near 1
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.attn_drop = nn.Dropout(attn_dropout)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_dropout)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """Mix the tokens of ``x`` (B, N, D); ``mask`` (B, N) is 1 for real tokens, 0 for padding."""
        B, N, D = x.shape  # batch, tokens, width
        qkv = self.qkv(x).view(B, N, 3, self.heads, D // self.heads)  # (B, N, 3, heads, Dh)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)  # each (B, heads, N, Dh)
        attn = self.attn_drop(self._probabilities(q, k, mask))  # (B, heads, N, N)
        x = (attn @ v).transpose(1, 2).reshape(B, N, D)  # (B, N, heads * Dh)
        return self.proj_drop(self.proj(x))

    def attention(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """The attention probabilities (B, heads, N, N) for ``x``; padded keys get exactly 0."""
        B, N, D = x.shape
        qkv = self.qkv(x).view(B, N, 3, self.heads, D // self.heads)  # (B, N, 3, heads, Dh)
        q, k, _ = qkv.permute(2, 0, 3, 1, 4)  # each (B, heads, N, Dh)
        return self._probabilities(q, k, mask)

    def _probabilities(self, q: Tensor, k: Tensor, mask: Tensor | None) -> Tensor:
        attn = (q @ k.transpose(-2, -1)) * self.scale  # (B, heads, N, N)
        if mask is not None:
            # The most negative float, not -inf: exp() still gives exactly 0 for padded keys,
            # and a row whose keys are all padding stays finite (uniform) instead of NaN.
            keep = mask[:, None, None, :].bool()  # (B, 1, 1, N): broadcast over heads, queries
            attn = attn.masked_fill(~keep, torch.finfo(attn.dtype).min)
        return attn.softmax(dim=-1)


class FeedForward(nn.Sequential):
    """The transformer's position-wise MLP: Linear, GELU, Linear (with dropout).

    Taught in lessons/11_vit.py.

    Args:
        dim: Width of each token.
        hidden: Width of the hidden layer (usually ``4 * dim``).
        dropout: Dropout after each linear layer.
    """

    def __init__(self, dim: int, hidden: int, *, dropout: float = 0.0) -> None:
        super().__init__(
            nn.Linear(dim, hidden),  # (B, N, hidden)
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, dim),  # (B, N, D)
            nn.Dropout(dropout),
        )


class TransformerBlock(nn.Module):
    """Pre-norm encoder block: ``x + attn(norm(x))`` then ``x + mlp(norm(x))``.

    Taught in lessons/11_vit.py.

    Args:
        dim: Width of each token.
        heads: Number of attention heads.
        mlp_ratio: Hidden width of the MLP as a multiple of ``dim``.
        dropout: Dropout inside the MLP and after the attention projection.
    """

    def __init__(self, dim: int, heads: int, *, mlp_ratio: float = 4.0, dropout: float = 0.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = MultiHeadSelfAttention(dim, heads, proj_dropout=dropout)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = FeedForward(dim, int(dim * mlp_ratio), dropout=dropout)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """One block over ``x`` (B, N, D); ``mask`` (B, N) marks real tokens (1) and padding (0)."""
        x = x + self.attn(self.norm1(x), mask)  # (B, N, D)
        return x + self.mlp(self.norm2(x))

    def attention(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """This block's attention probabilities (B, heads, N, N) for its input ``x``."""
        return self.attn.attention(self.norm1(x), mask)


class PostNormTransformerBlock(TransformerBlock):
    """Post-norm encoder block of the original Transformer: ``norm(x + attn(x))`` then
    ``norm(x + mlp(x))``.

    Vaswani et al. normalise after each residual sum; pre-norm (:class:`TransformerBlock`)
    trains more stably without warm-up (Xiong et al., 2020, https://arxiv.org/abs/2002.04745).
    Taught in lessons/16_attention_transformer.py.

    Args:
        dim: Width of each token.
        heads: Number of attention heads.
        mlp_ratio: Hidden width of the MLP as a multiple of ``dim``.
        dropout: Dropout inside the MLP and after the attention projection.
    """

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """One block over ``x`` (B, N, D); ``mask`` (B, N) marks real tokens (1) and padding (0)."""
        x = self.norm1(x + self.attn(x, mask))  # (B, N, D)
        return self.norm2(x + self.mlp(x))

    def attention(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """This block's attention probabilities (B, heads, N, N) for its input ``x``."""
        return self.attn.attention(x, mask)
