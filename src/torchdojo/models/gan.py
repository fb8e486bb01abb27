"""DCGAN and Self-Attention GAN generators and discriminators for 28, 32 and 64 px images.

DCGAN: Radford et al., 2015 (https://arxiv.org/abs/1511.06434), the architecture of seed 003
ch5 at 64x64; a 28/32 px version with one or two fewer stages trains quickly on a CPU. SAGAN:
Zhang et al., 2018 (https://arxiv.org/abs/1805.08318): the same nets with spectral
normalisation (``torch.nn.utils.parametrizations.spectral_norm``) on every layer and a
self-attention layer at one resolution. Taught in lessons/22_gans.py; recipes dcgan-mnist and
sagan-mnist.

The generator maps noise ``z`` (B, z_dim) to images (B, C, S, S) in [-1, 1] (tanh); the
discriminator maps images to one logit each, (B,). ``generate(z)`` is the common sampling
entry point of torchdojo's generative models (a VAE's decoder has it too).
"""

from __future__ import annotations

import math

from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

from torchdojo.models.registry import register_model
from torchdojo.nn.generative import SelfAttention2d

IMAGE_SIZES = (28, 32, 64)


def _stages(image_size: int) -> tuple[int, int]:
    """(side of the smallest feature map, number of 2x resolution steps) for ``image_size``."""
    if image_size not in IMAGE_SIZES:
        raise ValueError(f"image_size={image_size} is not supported; choose 28, 32 or 64")
    start = 7 if image_size == 28 else 4  # 7 -> 14 -> 28; 4 -> 8 -> 16 -> 32 (-> 64)
    return start, round(math.log2(image_size // start))


def _conv(layer: nn.Conv2d | nn.ConvTranspose2d, spectral_norm: bool) -> nn.Module:
    """DCGAN's initialisation N(0, 0.02^2), then spectral normalisation if asked.

    Initialising first lets the power iteration that spectral norm starts with (15 steps at
    registration) estimate the largest singular value of the weights actually used.
    """
    nn.init.normal_(layer.weight, 0.0, 0.02)
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)
    return _spectral_norm(layer) if spectral_norm else layer


def _batch_norm(channels: int) -> nn.BatchNorm2d:
    """Batch norm with DCGAN's initialisation: weights N(1, 0.02^2), biases 0."""
    bn = nn.BatchNorm2d(channels)
    nn.init.normal_(bn.weight, 1.0, 0.02)
    return bn


class DCGANGenerator(nn.Module):
    """Noise to image: a transposed conv to the smallest map, then 2x up-sampling stages.

    Channels halve as the resolution doubles (``width * 2**k`` down to ``width``); BN + ReLU
    inside, tanh at the end. Taught in lessons/22_gans.py.

    Args:
        z_dim: Length of the noise vector.
        image_size: Side S of the square output image: 28, 32 or 64 (64 is the book's).
        channels: Channels C of the output image.
        width: Channels of the last hidden feature map.
        spectral_norm: Spectral-normalise every layer (SAGAN).
        attention: Insert self-attention before the last up-sampling stage (SAGAN).
    """

    def __init__(
        self,
        *,
        z_dim: int = 100,
        image_size: int = 28,
        channels: int = 1,
        width: int = 64,
        spectral_norm: bool = False,
        attention: bool = False,
    ) -> None:
        super().__init__()
        start, steps = _stages(image_size)
        self.z_dim, self.image_size, self.channels = z_dim, image_size, channels
        hidden = [width * 2 ** (steps - 1 - i) for i in range(steps)]  # e.g. 8w, 4w, 2w, w
        layers: list[nn.Module] = [
            _conv(nn.ConvTranspose2d(z_dim, hidden[0], start, 1, 0, bias=False), spectral_norm),
            _batch_norm(hidden[0]),
            nn.ReLU(inplace=True),
        ]  # (B, hidden[0], start, start)
        for c_in, c_out in zip(hidden[:-1], hidden[1:], strict=True):
            layers += [
                _conv(nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False), spectral_norm),
                _batch_norm(c_out),
                nn.ReLU(inplace=True),
            ]  # resolution x2
        if attention:
            layers.append(SelfAttention2d(hidden[-1]))  # at S/2: long-range structure
        layers += [
            _conv(nn.ConvTranspose2d(hidden[-1], channels, 4, 2, 1), spectral_norm),
            nn.Tanh(),
        ]  # (B, C, S, S) in [-1, 1]
        self.net = nn.Sequential(*layers)

    def forward(self, z: Tensor) -> Tensor:
        """Images (B, C, S, S) in [-1, 1] from noise ``z`` (B, z_dim)."""
        return self.net(z.view(len(z), self.z_dim, 1, 1))  # (B, z_dim, 1, 1) -> (B, C, S, S)

    def generate(self, z: Tensor) -> Tensor:
        """The sampling entry point shared with the VAE: the same as ``forward``."""
        return self(z)


class DCGANDiscriminator(nn.Module):
    """Image to one real/fake logit: strided convs halve the resolution, channels double.

    LeakyReLU(0.2) throughout; batch norm after every stage but the first, unless spectral
    normalisation already controls the layers' scale (SAGAN uses no batch norm in D).
    Taught in lessons/22_gans.py.

    Args:
        image_size: Side S of the square input image: 28, 32 or 64.
        channels: Channels C of the input image.
        width: Channels of the first feature map.
        spectral_norm: Spectral-normalise every layer (SAGAN).
        attention: Insert self-attention after the first stage, at S/2 (SAGAN).
    """

    def __init__(
        self,
        *,
        image_size: int = 28,
        channels: int = 1,
        width: int = 64,
        spectral_norm: bool = False,
        attention: bool = False,
    ) -> None:
        super().__init__()
        start, steps = _stages(image_size)
        self.image_size, self.channels = image_size, channels
        hidden = [width * 2**i for i in range(steps)]  # e.g. w, 2w, 4w, 8w
        layers: list[nn.Module] = [
            _conv(nn.Conv2d(channels, hidden[0], 4, 2, 1), spectral_norm),
            nn.LeakyReLU(0.2, inplace=True),
        ]  # (B, w, S/2, S/2)
        if attention:
            layers.append(SelfAttention2d(hidden[0]))
        for c_in, c_out in zip(hidden[:-1], hidden[1:], strict=True):
            layers.append(_conv(nn.Conv2d(c_in, c_out, 4, 2, 1, bias=spectral_norm), spectral_norm))
            if not spectral_norm:
                layers.append(_batch_norm(c_out))
            layers.append(nn.LeakyReLU(0.2, inplace=True))  # resolution / 2
        self.body = nn.Sequential(*layers)  # (B, hidden[-1], start, start)
        self.head = _conv(nn.Conv2d(hidden[-1], 1, start, 1, 0), spectral_norm)  # (B, 1, 1, 1)

    def forward(self, x: Tensor) -> Tensor:
        """Logits (B,) that ``x`` (B, C, S, S) is real."""
        return self.head(self.body(x)).view(len(x))  # (B, 1, 1, 1) -> (B,)

    def features(self, x: Tensor) -> Tensor:
        """The last hidden feature map, flattened (B, hidden * start * start).

        AnoGAN's discrimination loss and feature matching compare images here.
        """
        return self.body(x).flatten(1)


@register_model
def dcgan_28(
    *, z_dim: int = 100, image_size: int = 28, channels: int = 1, width: int = 64
) -> DCGANGenerator:
    """DCGAN generator for 28x28 digits (7 -> 14 -> 28): the fast CPU version."""
    return DCGANGenerator(z_dim=z_dim, image_size=image_size, channels=channels, width=width)


@register_model
def dcgan_32(
    *, z_dim: int = 100, image_size: int = 32, channels: int = 1, width: int = 64
) -> DCGANGenerator:
    """DCGAN generator for 32x32 images (4 -> 8 -> 16 -> 32)."""
    return DCGANGenerator(z_dim=z_dim, image_size=image_size, channels=channels, width=width)


@register_model
def dcgan_64(
    *, z_dim: int = 100, image_size: int = 64, channels: int = 1, width: int = 64
) -> DCGANGenerator:
    """DCGAN generator for 64x64 images: the book's architecture (4 -> 8 -> 16 -> 32 -> 64)."""
    return DCGANGenerator(z_dim=z_dim, image_size=image_size, channels=channels, width=width)


@register_model
def sagan_28(
    *, z_dim: int = 100, image_size: int = 28, channels: int = 1, width: int = 64
) -> DCGANGenerator:
    """SAGAN generator for 28x28 digits: spectral norm everywhere, self-attention at 14x14."""
    return DCGANGenerator(
        z_dim=z_dim,
        image_size=image_size,
        channels=channels,
        width=width,
        spectral_norm=True,
        attention=True,
    )


@register_model
def sagan_32(
    *, z_dim: int = 100, image_size: int = 32, channels: int = 1, width: int = 64
) -> DCGANGenerator:
    """SAGAN generator for 32x32 images: self-attention at 16x16."""
    return DCGANGenerator(
        z_dim=z_dim,
        image_size=image_size,
        channels=channels,
        width=width,
        spectral_norm=True,
        attention=True,
    )


@register_model
def sagan_64(
    *, z_dim: int = 100, image_size: int = 64, channels: int = 1, width: int = 64
) -> DCGANGenerator:
    """SAGAN generator for 64x64 images (the book's size): self-attention at 32x32."""
    return DCGANGenerator(
        z_dim=z_dim,
        image_size=image_size,
        channels=channels,
        width=width,
        spectral_norm=True,
        attention=True,
    )
