"""A convolutional variational autoencoder for 28x28 images (Kingma & Welling, 2013,
https://arxiv.org/abs/1312.6114).

The encoder gives a Gaussian ``q(z|x) = N(mu, sigma^2)`` per image; a sample drawn with the
reparameterisation trick is decoded into Bernoulli logits per pixel. Training maximises the
ELBO: reconstruction log-likelihood minus ``KL(q(z|x) || N(0, I))``
(:func:`torchdojo.nn.generative.gaussian_kl`). Taught in lessons/23_vae.py; recipe vae-mnist.

Images enter in [-1, 1] like every torchdojo generative model; ``generate(z)`` returns images
in [-1, 1], the sampling entry point shared with the GAN generators.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from torchdojo.models.registry import register_model
from torchdojo.nn.generative import reparameterize


class VAE(nn.Module):
    """Conv encoder 28 -> 14 -> 7 to (mu, log sigma^2); a mirrored decoder back to pixel logits.

    Taught in lessons/23_vae.py.

    Args:
        z_dim: Size of the latent code (2 lets you plot the latent space directly).
        channels: Channels C of the images.
        width: Channels of the first conv (the second has twice as many).
        image_size: Side of the square images; 28 (two 2x stages from 7x7).
    """

    def __init__(
        self, *, z_dim: int = 16, channels: int = 1, width: int = 32, image_size: int = 28
    ) -> None:
        super().__init__()
        if image_size % 4 != 0:
            raise ValueError(f"image_size={image_size} must be divisible by 4 (e.g. 28 or 32)")
        self.z_dim, self.channels, self.image_size = z_dim, channels, image_size
        side = image_size // 4
        self.hidden_shape = (2 * width, side, side)
        flat = 2 * width * side * side
        self.encoder = nn.Sequential(
            nn.Conv2d(channels, width, 4, 2, 1),  # (B, w, S/2, S/2)
            nn.ReLU(inplace=True),
            nn.Conv2d(width, 2 * width, 4, 2, 1),  # (B, 2w, S/4, S/4)
            nn.ReLU(inplace=True),
            nn.Flatten(),  # (B, 2w * S/4 * S/4)
            nn.Linear(flat, 2 * z_dim),  # (B, 2Z): mu and log sigma^2
        )
        self.decoder = nn.Sequential(
            nn.Linear(z_dim, flat),
            nn.ReLU(inplace=True),
            nn.Unflatten(1, self.hidden_shape),  # (B, 2w, S/4, S/4)
            nn.ConvTranspose2d(2 * width, width, 4, 2, 1),  # (B, w, S/2, S/2)
            nn.ReLU(inplace=True),
            nn.ConvTranspose2d(width, channels, 4, 2, 1),  # (B, C, S, S) pixel logits
        )

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """The posterior's mean and log-variance, each (B, Z), for images ``x`` in [-1, 1]."""
        mu, logvar = self.encoder(x).chunk(2, dim=1)  # each (B, Z)
        return mu, logvar

    def decode(self, z: Tensor) -> Tensor:
        """Bernoulli logits (B, C, S, S) of the pixels scaled to [0, 1]."""
        return self.decoder(z)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Encode, sample ``z`` by reparameterisation, decode: (logits, mu, logvar)."""
        mu, logvar = self.encode(x)
        z = reparameterize(mu, logvar)  # (B, Z); eps from the global RNG
        return self.decode(z), mu, logvar

    def generate(self, z: Tensor) -> Tensor:
        """Images (B, C, S, S) in [-1, 1] decoded from latent codes ``z`` (B, Z)."""
        return torch.sigmoid(self.decode(z)) * 2.0 - 1.0


@register_model
def vae_mnist(*, z_dim: int = 16, channels: int = 1, width: int = 32, image_size: int = 28) -> VAE:
    """Convolutional VAE for 28x28 digits (the vae-mnist recipe's model)."""
    return VAE(z_dim=z_dim, channels=channels, width=width, image_size=image_size)
