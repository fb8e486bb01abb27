"""A small style-based generator: StyleGAN's core ideas at a size a CPU can train.

Karras et al., "A Style-Based Generator Architecture for GANs" (2019,
https://arxiv.org/abs/1812.04948) and StyleGAN2 (2020, https://arxiv.org/abs/1912.04958).
Recipe: stylegan_mnist.

- A **mapping network** turns the latent ``z`` into an intermediate latent ``w``.
- Each layer's **style** (an affine map of ``w``) scales the input channels of its conv: a
  **modulated convolution**; **demodulation** then rescales each output channel's weights to
  unit norm, which StyleGAN2 introduced in place of AdaIN's instance normalization.
- Per-pixel **noise inputs** give the stochastic detail (stroke texture) its own source.
- **Style mixing**: feeding ``w1`` to the first (coarse, 7x7) layers and ``w2`` to the later
  (fine, 28x28) ones mixes the layout of one sample with the details of another.

Unlike the papers: no progressive growing, no equalized learning rate, no truncation trick, no
style-mixing regularization in training, and bilinear upsampling instead of a blurred
transposed conv.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F  # noqa: N812

from torchdojo.models.registry import register_model


class MappingNetwork(nn.Module):
    """``z`` (B, z_dim) -> ``w`` (B, w_dim): pixel-normalize, then ``depth`` linear layers.

    Args:
        z_dim: Width of the input latent.
        w_dim: Width of the intermediate latent.
        depth: Number of linear layers (8 in StyleGAN; 4 suffices for digits).
    """

    def __init__(self, *, z_dim: int = 64, w_dim: int = 64, depth: int = 4) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for i in range(depth):
            linear = nn.Linear(z_dim if i == 0 else w_dim, w_dim)
            # He init for LeakyReLU(0.2): |w| stays ~|z| through the depth. PyTorch's default
            # (std 1/sqrt(3 fan_in)) shrinks it ~2.5x per layer, to w ~0.07 after four layers:
            # every z then gets nearly the same style and G starts (and stays) collapsed
            nn.init.kaiming_normal_(linear.weight, a=0.2, nonlinearity="leaky_relu")
            nn.init.zeros_(linear.bias)
            layers += [linear, nn.LeakyReLU(0.2)]
        self.layers = nn.Sequential(*layers)

    def forward(self, z: Tensor) -> Tensor:
        z = z * torch.rsqrt(z.square().mean(1, keepdim=True) + 1e-8)  # pixel norm: |z| ~ sqrt(D)
        return self.layers(z)  # (B, w_dim)


class ModulatedConv2d(nn.Module):
    """A conv whose weights each sample scales by its style (StyleGAN2's modulation).

    The style ``s = affine(w)`` (B, C_in) multiplies the input-channel axis of the weight;
    with ``demodulate`` each output channel's weights are then divided by their L2 norm, so
    unit-variance inputs give unit-variance outputs whatever the style. One grouped conv runs
    all samples' own weights at once.

    Args:
        in_channels: Input channels.
        out_channels: Output channels.
        w_dim: Width of ``w``.
        kernel_size: Side of the square kernel.
        demodulate: Normalize each output channel's modulated weights (off for the to-image
            layer, whose output scale matters).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        w_dim: int,
        kernel_size: int = 3,
        demodulate: bool = True,
    ) -> None:
        super().__init__()
        fan_in = in_channels * kernel_size**2
        # He-like scale, no runtime "equalized learning rate": Adam's steps then move these
        # weights as much, relatively, as DCGAN's convs at the same learning rate
        weight = torch.randn(out_channels, in_channels, kernel_size, kernel_size) / math.sqrt(
            fan_in
        )
        self.weight = nn.Parameter(weight)
        self.affine = nn.Linear(w_dim, in_channels)
        # styles ~ 1 + N(0, |w|^2 / w_dim) per channel: different w, clearly different convs
        nn.init.normal_(self.affine.weight, std=1 / math.sqrt(w_dim))
        nn.init.ones_(self.affine.bias)  # styles centred on 1: the plain conv
        self.demodulate = demodulate
        self.padding = kernel_size // 2

    def modulated_weight(self, w: Tensor) -> Tensor:
        """Each sample's weights (B, C_out, C_in, k, k), demodulated if asked."""
        style = self.affine(w)  # (B, C_in)
        weight = self.weight[None] * style[:, None, :, None, None]  # (B, C_out, C_in, k, k)
        if self.demodulate:  # unit L2 norm per (sample, output channel)
            weight = weight * torch.rsqrt(weight.square().sum((2, 3, 4), keepdim=True) + 1e-8)
        return weight

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        B, C, H, W = x.shape  # noqa: N806
        weight = self.modulated_weight(w)  # (B, C_out, C_in, k, k)
        out = F.conv2d(
            x.reshape(1, B * C, H, W),  # samples as groups
            weight.reshape(-1, C, *weight.shape[3:]),  # (B * C_out, C_in, k, k)
            padding=self.padding,
            groups=B,
        )  # (1, B * C_out, H, W)
        return out.reshape(B, -1, H, W)  # (B, C_out, H, W)


class NoiseInjection(nn.Module):
    """Add per-pixel Gaussian noise, scaled by a learned per-channel strength (starts at 0)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.strength = nn.Parameter(torch.zeros(1, channels, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        noise = torch.randn(x.shape[0], 1, *x.shape[2:], device=x.device, dtype=x.dtype)
        return x + self.strength * noise  # one noise image per sample, (B, 1, H, W)


class StyleBlock(nn.Module):
    """Optional 2x upsampling, a modulated 3x3 conv, noise, bias and LeakyReLU.

    Args:
        in_channels: Input channels.
        out_channels: Output channels.
        w_dim: Width of ``w``.
        upsample: Double the resolution first.
    """

    def __init__(self, in_channels: int, out_channels: int, *, w_dim: int, upsample: bool) -> None:
        super().__init__()
        self.up = (
            nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
            if upsample
            else nn.Identity()
        )
        self.conv = ModulatedConv2d(in_channels, out_channels, w_dim=w_dim)
        self.noise = NoiseInjection(out_channels)
        self.bias = nn.Parameter(torch.zeros(1, out_channels, 1, 1))
        self.act = nn.LeakyReLU(0.2)

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        x = self.conv(self.up(x), w)
        x = self.noise(x)
        return self.act(x + self.bias)


class StyleGenerator(nn.Module):
    """Mapping network + a learned constant + style blocks: ``z`` (B, z_dim) -> images in [-1, 1].

    Resolutions ``S/4 -> S/2 -> S`` (7 -> 14 -> 28 for MNIST), two style blocks per
    resolution after the first, then a modulated 1x1 conv to the image (not demodulated) and
    tanh. The same interface as DCGAN's generator (``forward(z)``, ``z_dim``), plus style
    mixing: ``forward(z, z2, mix_at=k)`` drives layers ``k`` and up with ``z2``'s style.

    Args:
        z_dim: Width of the input latent.
        w_dim: Width of the intermediate latent.
        image_size: Side of the output images (a multiple of 4).
        channels: Image channels.
        width: Channels of the style blocks at the two coarse resolutions (half at full size).
        mapping_depth: Linear layers in the mapping network.
    """

    def __init__(
        self,
        *,
        z_dim: int = 64,
        w_dim: int = 64,
        image_size: int = 28,
        channels: int = 1,
        width: int = 64,
        mapping_depth: int = 4,
    ) -> None:
        super().__init__()
        if image_size % 4:
            raise ValueError(
                f"image_size={image_size} must be a multiple of 4 (two 2x upsamplings)"
            )
        self.z_dim, self.w_dim = z_dim, w_dim
        self.mapping = MappingNetwork(z_dim=z_dim, w_dim=w_dim, depth=mapping_depth)
        side, half = image_size // 4, width // 2
        self.const = nn.Parameter(torch.randn(1, width, side, side))  # (1, width, S/4, S/4)
        self.blocks = nn.ModuleList(
            [
                StyleBlock(width, width, w_dim=w_dim, upsample=False),  # S/4: coarse layout
                StyleBlock(width, width, w_dim=w_dim, upsample=True),  # S/2
                StyleBlock(width, width, w_dim=w_dim, upsample=False),
                StyleBlock(width, half, w_dim=w_dim, upsample=True),  # S: fine detail
                StyleBlock(half, half, w_dim=w_dim, upsample=False),
            ]
        )
        self.to_image = ModulatedConv2d(
            half, channels, w_dim=w_dim, kernel_size=1, demodulate=False
        )
        self.num_layers = len(self.blocks) + 1  # the styles one w feeds: blocks + to_image

    def styles(self, z: Tensor, z2: Tensor | None = None, mix_at: int | None = None) -> Tensor:
        """One ``w`` per layer (B, num_layers, w_dim): ``z``'s, or ``z2``'s from ``mix_at`` on."""
        w = self.mapping(z)[:, None].expand(-1, self.num_layers, -1)  # (B, L, w_dim)
        if z2 is None or mix_at is None:
            return w
        if not 0 <= mix_at <= self.num_layers:
            raise ValueError(f"mix_at={mix_at}: must be between 0 and {self.num_layers}")
        w2 = self.mapping(z2)[:, None].expand(-1, self.num_layers, -1)
        layer = torch.arange(self.num_layers, device=z.device)[None, :, None]  # (1, L, 1)
        return torch.where(layer < mix_at, w, w2)

    def synthesize(self, ws: Tensor) -> Tensor:
        """Images (B, C, S, S) in [-1, 1] from per-layer styles ``ws`` (B, num_layers, w_dim)."""
        x = self.const.expand(ws.shape[0], -1, -1, -1)  # (B, width, S/4, S/4)
        for i, block in enumerate(self.blocks):
            x = block(x, ws[:, i])
        return torch.tanh(self.to_image(x, ws[:, -1]))  # (B, C, S, S)

    def forward(self, z: Tensor, z2: Tensor | None = None, mix_at: int | None = None) -> Tensor:
        return self.synthesize(self.styles(z, z2, mix_at))

    def generate(self, z: Tensor) -> Tensor:
        """The sampling entry point shared with DCGAN and the VAE: the same as ``forward(z)``."""
        return self(z)

    def mix(self, z1: Tensor, z2: Tensor, layer: int) -> Tensor:
        """Images with ``z1``'s styles before ``layer`` (coarse) and ``z2``'s from it (fine)."""
        return self(z1, z2, mix_at=layer)


@register_model
def stylegan_28(
    *,
    z_dim: int = 64,
    w_dim: int = 64,
    image_size: int = 28,
    channels: int = 1,
    width: int = 64,
    mapping_depth: int = 4,
) -> StyleGenerator:
    """A style-based generator for 28x28 images (7 -> 14 -> 28), 64-d ``z`` and ``w``."""
    return StyleGenerator(
        z_dim=z_dim,
        w_dim=w_dim,
        image_size=image_size,
        channels=channels,
        width=width,
        mapping_depth=mapping_depth,
    )
