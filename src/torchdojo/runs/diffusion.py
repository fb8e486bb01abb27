"""Training a diffusion model: the noise-prediction step, a repeatable validation loss, and a
grid of samples from fixed noise after every epoch (report and TensorBoard).

Recipe: diffusion_mnist. Lesson: lessons/24_diffusion.py. Images train in [-1, 1].
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import torch
from matplotlib.figure import Figure
from torch import Tensor
from torch.nn import functional as F  # noqa: N812

from torchdojo.data.arrays import ArrayDataset
from torchdojo.engine import Loaders, StepOutput, TensorLoader, Trainer
from torchdojo.engine.callbacks import EvalOutput
from torchdojo.runs.generative import to_signed


class Sampler(Protocol):
    """A model with ``sample(n, generator=..., steps=...) -> images in [-1, 1]``."""

    def sample(
        self, n: int, *, generator: torch.Generator | None = ..., steps: int = ...
    ) -> Tensor:
        """``n`` images (n, C, H, W) in [-1, 1]."""


def signed_loaders(
    train: ArrayDataset, test: ArrayDataset, *, batch_size: int, seed: int
) -> Loaders:
    """In-memory loaders of uint8 images scaled to [-1, 1]; labels ride along unused."""
    return Loaders(
        TensorLoader(
            train.x, train.y, batch_size=batch_size, seed=seed, drop_last=True, transform=to_signed
        ),
        TensorLoader(test.x, test.y, batch_size=512, shuffle=False, transform=to_signed),
    )


def _schedule(trainer: Trainer) -> Any:
    return trainer.unwrapped_model.schedule


def diffusion_step(trainer: Trainer, batch: tuple[Tensor, Tensor]) -> StepOutput:
    """DDPM's simple loss: a random ``t`` per image, ``x_t`` in closed form, MSE on the noise.

    ``t`` and the noise come from the global RNG, which checkpoints save: a resumed run draws
    the same ones.
    """
    x0, _ = batch  # (B, C, H, W) in [-1, 1]
    schedule = _schedule(trainer)
    t = torch.randint(0, schedule.steps, (len(x0),), device=x0.device)  # (B,)
    noise = torch.randn_like(x0)
    with trainer.autocast():
        loss = F.mse_loss(trainer.model(schedule.q_sample(x0, t, noise), t).float(), noise)
    trainer.backward(loss)
    trainer.step_optimizer("optimizer")
    return StepOutput(loss=loss.detach(), batch_size=len(x0))


def diffusion_eval_step(trainer: Trainer, batch: tuple[Tensor, Tensor]) -> EvalOutput:
    """The same loss on fixed ``t`` and noise (a generator seeded per batch size), so epochs
    compare and the training RNG is untouched."""
    x0, _ = batch
    schedule = _schedule(trainer)
    generator = torch.Generator(device=x0.device).manual_seed(len(x0))
    t = torch.randint(0, schedule.steps, (len(x0),), generator=generator, device=x0.device)
    noise = torch.randn(x0.shape, generator=generator, device=x0.device)
    loss = F.mse_loss(trainer.model(schedule.q_sample(x0, t, noise), t).float(), noise)
    return EvalOutput(loss=loss, preds=loss, target=loss, batch_size=len(x0))


def sample_grid_figure(images: Tensor, title: str, *, ncols: int = 8) -> Figure:
    """Images in [-1, 1] (N, C, H, W) as one grid figure with a title."""
    from torchdojo.viz import image_grid

    fig = image_grid((images + 1) / 2, ncols=ncols)
    fig.suptitle(title, fontsize=9)
    return fig


def grid_sampler(*, n: int = 16, steps: int = 25, seed: int = 0) -> Callable[[Trainer], Tensor]:
    """The ``draw`` of a :class:`~torchdojo.runs.generative.SampleGrid` for a diffusion model:
    ``n`` samples in [-1, 1] from the same seeded noise every epoch, ``steps`` DDIM steps (the
    grid's ``ema`` swaps the averaged weights in, which sample better)."""

    def draw(trainer: Trainer) -> Tensor:
        model: Sampler = trainer.unwrapped_model  # type: ignore[assignment]
        generator = torch.Generator(device=trainer.device).manual_seed(seed)
        return model.sample(n, generator=generator, steps=steps)

    return draw


__all__ = [
    "grid_sampler",
    "diffusion_eval_step",
    "diffusion_step",
    "sample_grid_figure",
    "signed_loaders",
    "to_signed",
]
