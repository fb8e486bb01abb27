"""A small denoising diffusion model (DDPM, Ho et al., 2020, https://arxiv.org/abs/2006.11239).

Taught in lessons/24_diffusion.py. Recipe: diffusion_mnist.

The forward process adds Gaussian noise in ``T`` steps with a linear beta schedule; in closed
form ``x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps``. A U-Net learns to predict ``eps`` from
``(x_t, t)``. Sampling runs the reverse process: DDPM's ancestral sampler (``T`` network calls)
or DDIM's deterministic sampler (Song et al., 2021, https://arxiv.org/abs/2010.02502) on a
subsequence of, e.g., 50 steps: 20x fewer network calls for similar samples.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F  # noqa: N812

from torchdojo.models.registry import register_model


class NoiseSchedule(nn.Module):
    """The DDPM noise schedule and the closed-form forward process ``q(x_t | x_0)``.

    Taught in lessons/24_diffusion.py. ``t`` runs from 0 (the first noising step) to ``T - 1``.

    Args:
        steps: Number of diffusion steps ``T``.
        beta_start: Noise variance added by the first step.
        beta_end: Noise variance added by the last step (linear in between, as DDPM).
    """

    betas: Tensor
    alphas: Tensor
    alpha_bar: Tensor

    def __init__(self, steps: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02):
        super().__init__()
        if steps < 2 or not 0 < beta_start <= beta_end < 1:
            raise ValueError(
                f"steps={steps}, beta range ({beta_start}, {beta_end}): need steps >= 2 and "
                "0 < beta_start <= beta_end < 1 (DDPM: 1000, 1e-4, 0.02)"
            )
        betas = torch.linspace(beta_start, beta_end, steps, dtype=torch.float64)
        alphas = 1.0 - betas
        # float64 for the cumulative product, then float32: abar_T ~ 4e-5 needs the precision
        self.register_buffer("betas", betas.float(), persistent=False)
        self.register_buffer("alphas", alphas.float(), persistent=False)
        self.register_buffer("alpha_bar", torch.cumprod(alphas, 0).float(), persistent=False)
        self.steps = steps

    def _at(self, values: Tensor, t: Tensor) -> Tensor:
        return values[t].view(-1, 1, 1, 1)  # (B, 1, 1, 1): broadcasts over C, H, W

    def q_sample(self, x0: Tensor, t: Tensor, noise: Tensor) -> Tensor:
        """``x_t`` straight from ``x_0``: ``sqrt(abar_t) x_0 + sqrt(1 - abar_t) noise``."""
        abar = self._at(self.alpha_bar, t)
        return abar.sqrt() * x0 + (1 - abar).sqrt() * noise

    def q_step(self, x_prev: Tensor, t: Tensor, noise: Tensor) -> Tensor:
        """One forward step ``x_t ~ q(x_t | x_{t-1}) = N(sqrt(1 - beta_t) x_{t-1}, beta_t I)``."""
        beta = self._at(self.betas, t)
        return (1 - beta).sqrt() * x_prev + beta.sqrt() * noise

    def predict_x0(self, x_t: Tensor, t: Tensor, eps: Tensor) -> Tensor:
        """Invert :meth:`q_sample` for ``x_0`` given a noise estimate ``eps``."""
        abar = self._at(self.alpha_bar, t)
        return (x_t - (1 - abar).sqrt() * eps) / abar.sqrt()

    def ddpm_step(self, x_t: Tensor, t: Tensor, eps: Tensor, noise: Tensor) -> Tensor:
        """One ancestral step ``x_{t-1} ~ p(x_{t-1} | x_t)``: the posterior ``q(x_{t-1} | x_t,
        x_0)`` at the clipped ``x_0`` estimate, variance ``beta~_t``; no noise at ``t = 0``."""
        abar = self._at(self.alpha_bar, t)
        abar_prev = self._at(F.pad(self.alpha_bar, (1, 0), value=1.0), t)  # abar_{t-1}
        beta = self._at(self.betas, t)
        x0 = self.predict_x0(x_t, t, eps).clamp(-1, 1)
        mean = (
            abar_prev.sqrt() * beta * x0 + self._at(self.alphas, t).sqrt() * (1 - abar_prev) * x_t
        ) / (1 - abar)
        variance = beta * (1 - abar_prev) / (1 - abar)  # beta~_t, 0 at t = 0
        return mean + variance.sqrt() * noise

    def ddim_step(
        self, x_t: Tensor, t: Tensor, t_prev: Tensor, eps: Tensor, noise: Tensor, eta: float
    ) -> Tensor:
        """One DDIM step from ``t`` to ``t_prev`` (``-1``: to the clean image); ``eta=0`` is
        deterministic, ``eta=1`` has DDPM's variance."""
        abar = self._at(self.alpha_bar, t)
        abar_prev = self._at(F.pad(self.alpha_bar, (1, 0), value=1.0), t_prev + 1)
        x0 = self.predict_x0(x_t, t, eps).clamp(-1, 1)
        eps = (x_t - abar.sqrt() * x0) / (1 - abar).sqrt()  # consistent with the clipped x0
        sigma = eta * ((1 - abar_prev) / (1 - abar) * (1 - abar / abar_prev)).sqrt()
        direction = (1 - abar_prev - sigma**2).clamp(min=0).sqrt() * eps
        return abar_prev.sqrt() * x0 + direction + sigma * noise


def timestep_embedding(t: Tensor, dim: int) -> Tensor:
    """Sinusoidal features of integer timesteps ``t`` (B,) -> (B, dim), as a Transformer's."""
    half = dim // 2
    freqs = torch.exp(-math.log(10_000) * torch.arange(half, device=t.device) / half)  # (dim/2,)
    angles = t.float()[:, None] * freqs[None]  # (B, dim/2)
    return torch.cat([angles.sin(), angles.cos()], dim=1)  # (B, dim)


def _groups(channels: int) -> int:
    return math.gcd(8, channels)


class TimeResBlock(nn.Module):
    """Two 3x3 convs with GroupNorm and SiLU; the timestep enters as a per-channel shift.

    Taught in lessons/24_diffusion.py.

    Args:
        in_channels: Input channels.
        out_channels: Output channels (a 1x1 conv matches the shortcut when they differ).
        time_dim: Width of the timestep embedding.
    """

    def __init__(self, in_channels: int, out_channels: int, time_dim: int) -> None:
        super().__init__()
        self.norm1 = nn.GroupNorm(_groups(in_channels), in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.time = nn.Linear(time_dim, out_channels)
        self.norm2 = nn.GroupNorm(_groups(out_channels), out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.act = nn.SiLU()
        self.shortcut = (
            nn.Conv2d(in_channels, out_channels, 1)
            if in_channels != out_channels
            else nn.Identity()
        )

    def forward(self, x: Tensor, time: Tensor) -> Tensor:
        h = self.conv1(self.act(self.norm1(x)))  # (B, C_out, H, W)
        h = h + self.time(time)[:, :, None, None]  # the timestep shifts every channel
        h = self.conv2(self.act(self.norm2(h)))
        return h + self.shortcut(x)


class DiffusionUNet(nn.Module):
    """A two-level U-Net that predicts the noise in ``x_t``: ``(B, C, S, S), (B,) -> (B, C, S, S)``.

    Taught in lessons/24_diffusion.py. Levels at S, S/2 and S/4 (28 -> 14 -> 7 for MNIST) with
    ``width``, ``2 width`` and ``2 width`` channels; skip connections concatenate.

    Args:
        in_channels: Image channels.
        width: Channels at full resolution.
    """

    def __init__(self, *, in_channels: int = 1, width: int = 32) -> None:
        super().__init__()
        w, time_dim = width, 4 * width
        self.width = width
        self.time_mlp = nn.Sequential(
            nn.Linear(w, time_dim), nn.SiLU(), nn.Linear(time_dim, time_dim)
        )
        self.stem = nn.Conv2d(in_channels, w, 3, padding=1)
        self.down1 = TimeResBlock(w, w, time_dim)
        self.pool1 = nn.Conv2d(w, w, 3, stride=2, padding=1)
        self.down2 = TimeResBlock(w, 2 * w, time_dim)
        self.pool2 = nn.Conv2d(2 * w, 2 * w, 3, stride=2, padding=1)
        self.mid = TimeResBlock(2 * w, 2 * w, time_dim)
        self.up2 = nn.Sequential(nn.Upsample(scale_factor=2), nn.Conv2d(2 * w, 2 * w, 3, padding=1))
        self.dec2 = TimeResBlock(4 * w, 2 * w, time_dim)
        self.up1 = nn.Sequential(nn.Upsample(scale_factor=2), nn.Conv2d(2 * w, w, 3, padding=1))
        self.dec1 = TimeResBlock(2 * w, w, time_dim)
        self.head = nn.Sequential(
            nn.GroupNorm(_groups(w), w), nn.SiLU(), nn.Conv2d(w, in_channels, 3, padding=1)
        )

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        time = self.time_mlp(timestep_embedding(t, self.width))  # (B, 4w)
        s1 = self.down1(self.stem(x), time)  # (B, w, S, S)
        s2 = self.down2(self.pool1(s1), time)  # (B, 2w, S/2, S/2)
        h = self.mid(self.pool2(s2), time)  # (B, 2w, S/4, S/4)
        h = self.dec2(torch.cat([self.up2(h), s2], 1), time)  # (B, 2w, S/2, S/2)
        h = self.dec1(torch.cat([self.up1(h), s1], 1), time)  # (B, w, S, S)
        return self.head(h)  # (B, C, S, S): the predicted noise


class DiffusionModel(nn.Module):
    """A noise-predicting U-Net with its schedule, and the samplers that turn noise into images.

    Taught in lessons/24_diffusion.py. ``forward(x_t, t)`` predicts the noise;
    ``sample(n, generator=..., steps=...)`` returns images in [-1, 1] (what ``torchdojo sample``
    calls): ``steps`` below ``T`` uses DDIM, ``steps=T`` DDPM's ancestral sampler.

    Args:
        image_size: Side of the square images (a multiple of 4).
        in_channels: Image channels.
        width: Channels of the U-Net at full resolution.
        steps: Diffusion steps ``T``.
        beta_start: First beta of the linear schedule.
        beta_end: Last beta.
    """

    def __init__(
        self,
        *,
        image_size: int = 28,
        in_channels: int = 1,
        width: int = 32,
        steps: int = 1000,
        beta_start: float = 1e-4,
        beta_end: float = 0.02,
    ) -> None:
        super().__init__()
        if image_size % 4:
            raise ValueError(
                f"image_size={image_size} must be a multiple of 4 (two 2x downsamplings)"
            )
        self.image_size, self.in_channels = image_size, in_channels
        self.net = DiffusionUNet(in_channels=in_channels, width=width)
        self.schedule = NoiseSchedule(steps, beta_start, beta_end)

    def forward(self, x_t: Tensor, t: Tensor) -> Tensor:
        return self.net(x_t, t)

    @torch.no_grad()
    def sample(
        self,
        n: int,
        *,
        generator: torch.Generator | None = None,
        steps: int = 50,
        eta: float = 0.0,
    ) -> Tensor:
        """``n`` images (n, C, S, S) in [-1, 1]: DDIM with ``steps`` network calls, or DDPM's
        ancestral sampler when ``steps`` equals ``T``; ``generator`` makes them repeatable."""
        if not 1 <= steps <= self.schedule.steps:
            raise ValueError(f"steps={steps}: must be between 1 and T={self.schedule.steps}")
        if steps == self.schedule.steps:
            return self.ddpm_sample(n, generator=generator)
        return self.ddim_sample(n, steps=steps, eta=eta, generator=generator)

    def _noise(self, n: int, generator: torch.Generator | None) -> Tensor:
        device = self.schedule.betas.device
        shape = (n, self.in_channels, self.image_size, self.image_size)
        return torch.randn(shape, generator=generator, device=device)

    @torch.no_grad()
    def ddpm_sample(self, n: int, *, generator: torch.Generator | None = None) -> Tensor:
        """DDPM's ancestral sampler: ``T`` network calls from pure noise to images in [-1, 1]."""
        x = self._noise(n, generator)  # x_T: (n, C, S, S)
        for step in reversed(range(self.schedule.steps)):
            t = torch.full((n,), step, dtype=torch.long, device=x.device)
            x = self.schedule.ddpm_step(x, t, self(x, t), self._noise(n, generator))
        return x.clamp(-1, 1)

    @torch.no_grad()
    def ddim_sample(
        self, n: int, *, steps: int = 50, eta: float = 0.0, generator: torch.Generator | None = None
    ) -> Tensor:
        """DDIM on ``steps`` evenly spaced timesteps (deterministic at ``eta=0``)."""
        x = self._noise(n, generator)
        times = torch.linspace(0, self.schedule.steps - 1, steps).round().long().tolist()
        for step, prev in zip(reversed(times), reversed([-1, *times[:-1]]), strict=True):
            t = torch.full((n,), step, dtype=torch.long, device=x.device)
            noise = self._noise(n, generator) if eta > 0 else torch.zeros_like(x)
            x = self.schedule.ddim_step(x, t, torch.full_like(t, prev), self(x, t), noise, eta)
        return x.clamp(-1, 1)


@register_model
def ddpm_unet_28(
    *,
    image_size: int = 28,
    in_channels: int = 1,
    width: int = 32,
    steps: int = 1000,
    beta_start: float = 1e-4,
    beta_end: float = 0.02,
) -> DiffusionModel:
    """A 28x28 DDPM noise predictor (U-Net 28 -> 14 -> 7) with a linear 1000-step schedule."""
    return DiffusionModel(
        image_size=image_size,
        in_channels=in_channels,
        width=width,
        steps=steps,
        beta_start=beta_start,
        beta_end=beta_end,
    )
