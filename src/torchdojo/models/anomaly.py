"""Anomaly detectors for 28x28 images: EfficientGAN's three players, an autoencoder, Deep SVDD.

EfficientGAN (Zenati et al., 2018, https://arxiv.org/abs/1802.06222) trains a BiGAN: an encoder
E (x -> z) and a generator G (z -> x) against a discriminator D(x, z) that sees image-code pairs,
so scoring a test image is one pass (E, then G, then D) instead of AnoGAN's latent search
(Schlegl et al., 2017, https://arxiv.org/abs/1703.05921), which trains G against an image-only
discriminator (:class:`ImageDiscriminator`). Deep SVDD (Ruff et al., 2018,
http://proceedings.mlr.press/v80/ruff18a.html) maps normal data close to a centre c; its
network has no bias terms and no affine BatchNorm, or it could map everything to c. Taught in
lessons/25_anomaly.py; trained and scored by :mod:`torchdojo.runs.anomaly`.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def _down(c_in: int, c_out: int, *, norm: bool = True) -> nn.Sequential:
    """A stride-2 4x4 conv (halves H and W), BatchNorm unless ``norm=False``, LeakyReLU(0.2)."""
    layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, 4, stride=2, padding=1, bias=not norm)]
    if norm:
        layers.append(nn.BatchNorm2d(c_out))
    layers.append(nn.LeakyReLU(0.2))
    return nn.Sequential(*layers)


def _up(c_in: int, c_out: int) -> nn.Sequential:
    """A stride-2 4x4 transposed conv (doubles H and W), BatchNorm, ReLU."""
    return nn.Sequential(
        nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(),
    )


class Generator(nn.Module):
    """z (B, latent_dim) -> a 28x28 image in [-1, 1]: linear to 7x7, two upsampling convs, tanh.

    The same generator serves AnoGAN and EfficientGAN, so their scoring speeds compare fairly.
    Taught in lessons/25_anomaly.py.

    Args:
        latent_dim: Width of z.
        width: Channels of the 14x14 stage (the 7x7 stage has twice as many).
        out_channels: Image channels.
    """

    def __init__(self, *, latent_dim: int = 20, width: int = 32, out_channels: int = 1) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.project = nn.Sequential(
            nn.Linear(latent_dim, 2 * width * 7 * 7, bias=False),
            nn.BatchNorm1d(2 * width * 7 * 7),
            nn.ReLU(),
            nn.Unflatten(1, (2 * width, 7, 7)),  # (B, 2w, 7, 7)
        )
        self.up = _up(2 * width, width)  # (B, w, 14, 14)
        self.out = nn.ConvTranspose2d(width, out_channels, 4, stride=2, padding=1)  # (B, C, 28, 28)

    def forward(self, z: Tensor) -> Tensor:
        x = self.project(z)
        x = self.up(x)
        return torch.tanh(self.out(x))


class Encoder(nn.Module):
    """A 28x28 image -> z (B, latent_dim): EfficientGAN's E, the inverse of :class:`Generator`.

    Taught in lessons/25_anomaly.py.

    Args:
        latent_dim: Width of z.
        width: Channels of the first (14x14) stage.
        in_channels: Image channels.
    """

    def __init__(self, *, latent_dim: int = 20, width: int = 32, in_channels: int = 1) -> None:
        super().__init__()
        self.features = nn.Sequential(
            _down(in_channels, width, norm=False),  # (B, w, 14, 14)
            _down(width, 2 * width),  # (B, 2w, 7, 7)
            nn.Flatten(),  # (B, 2w * 49)
        )
        self.head = nn.Linear(2 * width * 7 * 7, latent_dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


class ImageDiscriminator(nn.Module):
    """D(x) for AnoGAN: two stride-2 convs, a hidden layer (the feature the discrimination loss
    compares), a real/fake logit.

    Taught in lessons/25_anomaly.py.

    Args:
        width: Channels of the first (14x14) stage.
        hidden: Width of the feature layer.
        in_channels: Image channels.
    """

    def __init__(self, *, width: int = 32, hidden: int = 256, in_channels: int = 1) -> None:
        super().__init__()
        self.features = nn.Sequential(
            _down(in_channels, width, norm=False),  # (B, w, 14, 14)
            _down(width, 2 * width),  # (B, 2w, 7, 7)
            nn.Flatten(),  # (B, 2w * 49)
            nn.Linear(2 * width * 7 * 7, hidden),
            nn.LeakyReLU(0.2),  # (B, hidden): the feature f(x)
        )
        self.logit = nn.Linear(hidden, 1)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """The logit (B, 1) and the penultimate feature (B, hidden)."""
        feature = self.features(x)
        return self.logit(feature), feature


class JointDiscriminator(nn.Module):
    """D(x, z) for EfficientGAN: an image path and a code path, joined by a hidden layer.

    Dropout (0.2) on both paths keeps D from winning too early, as in the paper's MNIST model.
    Taught in lessons/25_anomaly.py.

    Args:
        latent_dim: Width of z.
        width: Channels of the image path's first (14x14) stage.
        hidden: Width of the joint feature layer.
        in_channels: Image channels.
    """

    def __init__(
        self, *, latent_dim: int = 20, width: int = 32, hidden: int = 256, in_channels: int = 1
    ) -> None:
        super().__init__()
        self.image = nn.Sequential(
            _down(in_channels, width, norm=False),  # (B, w, 14, 14)
            nn.Dropout(0.2),
            _down(width, 2 * width),  # (B, 2w, 7, 7)
            nn.Dropout(0.2),
            nn.Flatten(),  # (B, 2w * 49)
        )
        self.code = nn.Sequential(nn.Linear(latent_dim, 128), nn.LeakyReLU(0.2), nn.Dropout(0.2))
        self.joint = nn.Sequential(
            nn.Linear(2 * width * 7 * 7 + 128, hidden),
            nn.LeakyReLU(0.2),
            nn.Dropout(0.2),  # (B, hidden): the feature f(x, z)
        )
        self.logit = nn.Linear(hidden, 1)

    def forward(self, x: Tensor, z: Tensor) -> tuple[Tensor, Tensor]:
        """The logit (B, 1) and the joint feature (B, hidden) of the pair (x, z)."""
        pair = torch.cat([self.image(x), self.code(z)], dim=1)  # (B, 2w * 49 + 128)
        feature = self.joint(pair)
        return self.logit(feature), feature


class ConvAutoencoder(nn.Module):
    """A 28x28 image -> a ``latent_dim`` code -> the image again; the residual is the score.

    Taught in lessons/25_anomaly.py.

    Args:
        latent_dim: Width of the bottleneck.
        width: Channels of the first (14x14) stage.
        channels: Image channels.
    """

    def __init__(self, *, latent_dim: int = 32, width: int = 32, channels: int = 1) -> None:
        super().__init__()
        self.encoder = Encoder(latent_dim=latent_dim, width=width, in_channels=channels)
        self.decoder = Generator(latent_dim=latent_dim, width=width, out_channels=channels)

    def forward(self, x: Tensor) -> Tensor:
        return self.decoder(self.encoder(x))


class DeepSVDDNet(nn.Module):
    """Deep SVDD's MNIST LeNet: two 5x5 conv stages and a linear map to ``rep_dim``, no biases.

    A bias (or BatchNorm's learnt shift) would let the network output the constant c for every
    input, a trivial solution with zero loss (Ruff et al., 2018, proposition 2). ``center`` is
    the centre c, set from an initial forward pass by :func:`torchdojo.runs.anomaly.init_center`;
    as a buffer it travels in checkpoints. Taught in lessons/25_anomaly.py.

    Args:
        rep_dim: Width of the representation.
        width: Channels of the first conv stage (the second has half as many).
        in_channels: Image channels.
    """

    center: Tensor  # (rep_dim,) the centre c, a buffer

    def __init__(self, *, rep_dim: int = 32, width: int = 8, in_channels: int = 1) -> None:
        super().__init__()
        half = max(width // 2, 1)
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, width, 5, padding=2, bias=False),
            nn.BatchNorm2d(width, eps=1e-4, affine=False),
            nn.LeakyReLU(0.1),
            nn.MaxPool2d(2),  # (B, width, 14, 14)
            nn.Conv2d(width, half, 5, padding=2, bias=False),
            nn.BatchNorm2d(half, eps=1e-4, affine=False),
            nn.LeakyReLU(0.1),
            nn.MaxPool2d(2),  # (B, half, 7, 7)
            nn.Flatten(),  # (B, half * 49)
        )
        self.project = nn.Linear(half * 7 * 7, rep_dim, bias=False)
        self.register_buffer("center", torch.zeros(rep_dim))

    def forward(self, x: Tensor) -> Tensor:
        return self.project(self.features(x))  # (B, rep_dim)
