"""Building blocks of GANs and VAEs: SAGAN's self-attention, the GAN losses, the VAE's
reparameterisation and its KL term.

Self-attention GAN: Zhang et al., 2018 (https://arxiv.org/abs/1805.08318); hinge loss: Lim & Ye,
2017 (https://arxiv.org/abs/1705.02894); non-saturating loss: Goodfellow et al., 2014; VAE:
Kingma & Welling, 2013 (https://arxiv.org/abs/1312.6114). Taught in lessons/22_gans.py and
lessons/23_vae.py.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F  # noqa: N812


class SelfAttention2d(nn.Module):
    """SAGAN's self-attention over the H*W positions of a feature map, added as a residual.

    Every position's output is a convex mix of all positions' values (the attention rows sum
    to 1); ``gamma`` starts at 0, so the layer begins as the identity and the network learns how
    much non-local evidence to use. Taught in lessons/22_gans.py.

    Args:
        channels: Channels C of the feature map.
        reduction: Queries and keys have ``channels // reduction`` channels (8 in the paper).
    """

    def __init__(self, channels: int, *, reduction: int = 8) -> None:
        super().__init__()
        inner = max(1, channels // reduction)
        self.query = nn.Conv2d(channels, inner, 1)
        self.key = nn.Conv2d(channels, inner, 1)
        self.value = nn.Conv2d(channels, channels, 1)
        self.gamma = nn.Parameter(torch.zeros(()))

    def forward(self, x: Tensor) -> Tensor:
        """Return ``x + gamma * attention(x) @ values`` (B, C, H, W)."""
        B, C, H, W = x.shape  # batch, channels, height, width
        attn = self.attention(x)  # (B, N, N), N = H * W; row i: where position i looks
        v = self.value(x).view(B, C, H * W)  # (B, C, N)
        out = (v @ attn.transpose(1, 2)).view(B, C, H, W)  # (B, C, N) -> (B, C, H, W)
        return x + self.gamma * out

    def attention(self, x: Tensor) -> Tensor:
        """The attention map (B, N, N) with N = H * W; each row is a probability vector."""
        B, _, H, W = x.shape
        q = self.query(x).view(B, -1, H * W).transpose(1, 2)  # (B, N, C')
        k = self.key(x).view(B, -1, H * W)  # (B, C', N)
        return (q @ k).softmax(dim=-1)  # (B, N, N)


def hinge_d_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """The discriminator's hinge loss ``mean(relu(1 - D(x))) + mean(relu(1 + D(G(z))))``.

    Real logits above 1 and fake logits below -1 cost nothing: D stops pushing samples it
    already separates with a margin. Taught in lessons/22_gans.py.
    """
    return F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean()


def hinge_g_loss(fake_logits: Tensor) -> Tensor:
    """The generator's hinge loss ``-mean(D(G(z)))``."""
    return -fake_logits.mean()


def bce_d_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """The original GAN discriminator loss: binary cross-entropy, real = 1 and fake = 0."""
    real = F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
    fake = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
    return real + fake


def bce_g_loss(fake_logits: Tensor) -> Tensor:
    """The non-saturating generator loss ``-mean(log D(G(z)))``.

    Goodfellow et al.'s fix: minimising ``log(1 - D(G(z)))`` gives G almost no gradient while D
    rejects its samples easily, early in training; this loss has the same fixed point and a
    strong gradient exactly then.
    """
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


def reparameterize(
    mu: Tensor, logvar: Tensor, *, generator: torch.Generator | None = None
) -> Tensor:
    """Draw ``z = mu + sigma * eps`` with ``eps ~ N(0, I)``: a sample that gradients reach.

    Sampling ``z ~ N(mu, sigma^2)`` directly has no gradient with respect to ``mu`` and
    ``sigma``; moving the randomness into ``eps`` makes ``z`` a differentiable function of
    them. Taught in lessons/23_vae.py.

    Args:
        mu: Means (B, Z).
        logvar: Log-variances ``log sigma^2`` (B, Z).
        generator: Random generator for ``eps`` (the global one when None).
    """
    eps = torch.randn(mu.shape, generator=generator, dtype=mu.dtype, device=mu.device)
    return mu + torch.exp(0.5 * logvar) * eps


def gaussian_kl(mu: Tensor, logvar: Tensor) -> Tensor:
    """``KL(N(mu, sigma^2) || N(0, I))`` per sample (B,), in closed form, summed over Z.

    For one dimension: ``KL = 0.5 * (sigma^2 + mu^2 - 1 - log sigma^2)``; it is 0 exactly when
    ``mu = 0`` and ``sigma = 1``. Taught in lessons/23_vae.py (checked against Monte Carlo).
    """
    return 0.5 * (logvar.exp() + mu.square() - 1.0 - logvar).sum(dim=-1)
