"""A style-based generator (StyleGAN's mapping network, modulated convs, noise, style mixing) on MNIST.

Seeds: 000's planned "style transfer - StyleGAN" chapter, at a size a CPU trains (180k
parameters in G). Model: ``models/stylegan.py``. The generator (z -> mapping network -> w ->
styles of five modulated 3x3 convs at 7, 14 and 28 px and a 1x1 to-image conv, per-pixel
noise) plays against the DCGAN discriminator with the same GAN step as dcgan-mnist (D then G,
non-saturating loss by default), so the two compare at equal settings. The report shows the
fixed-noise grid of every epoch and a style-mixing table: the coarse styles (7x7 and 14x14
layers) of one sample with the fine styles (28x28 layers) of another.

Measured (``torchdojo run stylegan-mnist --threads 1 --cpu-budget 1330 --epochs 30``, on a
loaded 2-core machine): 1,510 steps (1.6 epochs) in 1,330 CPU-s of training steps, 22.9
CPU-min for the whole process. D's accuracy ~0.77 on real and fake, no health warning, legible
varied digits, 1 of 64 fixed-noise samples nearer a training image than half the held-out
median distance; the style-mixing table keeps the rows' coarse layout under the columns'
strokes. Domain FID 30.0 on 10k samples; Inception FID 45.1 and KID 0.020 on 1k (two real 1k
sets: 15.8 and 0.0027), second to DCGAN's 15.6 / 33.2 / 0.013 at the same CPU time, ahead of
SAGAN and the diffusion model (docs/generative-table.md; at 190 CPU-s its domain FID was 135.6). A step costs ~3x DCGAN's (modulated convs) and sampling ~4.6 CPU-ms
per image (DCGAN 0.4).

It used to collapse (D pinned at 1, every sample the same stroke, after 242 steps; spectral
norm + hinge loss collapsed too). The cause was the initialisation, not the game: with
PyTorch's default ``nn.Linear`` init the mapping network shrank ``w`` ~2.5x per layer (to
|w| ~0.07 after four layers) and the style affines varied the styles by ~1 % around 1, so a
fresh generator drew the same image for every ``z`` (0.003 per-pixel spread across samples vs
DCGAN's 0.15) and D won before G found any diversity. He init in the mapping network and
unit-scale affines (``models/stylegan.py``, StyleGAN's own scales without the runtime
equalized learning rate) fixed it, with the same losses and learning rates.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

import torch
from matplotlib.figure import Figure

from torchdojo.models.stylegan import StyleGenerator
from torchdojo.runs import Expected, Recipe, Setup
from torchdojo.runs.context import RunContext
from torchdojo.runs.contract import Range
from torchdojo.runs.generative import (
    build_generator,
    gan_setup,
    generator_spec,
    image_loaders,
    train_gan,
)


@dataclass(frozen=True)
class Config:
    dataset: str = "mnist"  # mnist | fashion-mnist | mnist-embedded | mnist-tiny
    epochs: int = 6
    batch_size: int = 64
    z_dim: Annotated[int, Range(1, 1024)] = 64
    w_dim: Annotated[int, Range(1, 1024)] = 64  # width of the intermediate latent w
    mapping_depth: Annotated[int, Range(1, 16)] = 4  # linear layers of the mapping network
    width: int = 64  # channels of G's style blocks at 7 and 14 px (half at 28)
    d_width: Annotated[int, Range(1, 4096)] = 64  # channels of D's first feature map
    spectral_norm: bool = False  # spectral norm in D (SAGAN's)
    loss: Literal["bce", "hinge"] = "bce"
    lr_g: Annotated[float, Range(0, 1, low_open=True)] = 2e-4
    lr_d: Annotated[float, Range(0, 1, low_open=True)] = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    grid_size: Annotated[int, Range(1, 256)] = 64  # fixed-noise samples drawn each epoch
    # > 0: grids, FID and the saved G use an average of G's weights (G EMA; e.g. 0.999)
    ema_decay: Annotated[float, Range(0, 1, high_open=True)] = 0.0
    mix_layer: Annotated[int, Range(0, 6)] = 3  # styles from this layer on come from the 2nd z
    max_train_samples: int | None = None
    seed: int = 0


def setup(cfg: Config, ctx: RunContext) -> Setup:
    loaders, _, test = image_loaders(
        ctx,
        cfg.dataset,
        image_size=28,
        batch_size=cfg.batch_size,
        seed=cfg.seed,
        max_train=cfg.max_train_samples,
    )
    kwargs = {
        "z_dim": cfg.z_dim,
        "w_dim": cfg.w_dim,
        "image_size": 28,
        "channels": 1,
        "width": cfg.width,
        "mapping_depth": cfg.mapping_depth,
    }
    return gan_setup(
        generator=build_generator("stylegan-28", kwargs),
        spec=generator_spec("stylegan-28", kwargs),
        loaders=loaders,
        image_size=28,
        width=cfg.d_width,
        spectral_norm=cfg.spectral_norm,
        attention=False,
        lr_g=cfg.lr_g,
        lr_d=cfg.lr_d,
        betas=cfg.betas,
        epochs=cfg.epochs,
        test_images=test.x,
    )


def run(cfg: Config, ctx: RunContext) -> dict[str, float]:
    task = setup(cfg, ctx)
    final = train_gan(
        ctx,
        task,
        loss=cfg.loss,
        z_dim=cfg.z_dim,
        image_size=28,
        grid_size=cfg.grid_size,
        seed=cfg.seed,
        ema_decay=cfg.ema_decay,
    )
    assert isinstance(task.model, StyleGenerator)
    ctx.save_figure(style_mixing_figure(task.model, layer=cfg.mix_layer, seed=cfg.seed), "mixing")
    return final


@torch.no_grad()
def style_mixing_figure(model: StyleGenerator, *, layer: int, n: int = 4, seed: int = 0) -> Figure:
    """Row i, column j: the styles of row source i before ``layer``, of column source j after.

    The sources themselves head the rows and columns; every image is drawn with the same
    per-pixel noise, so only the styles differ.
    """
    from torchvision.utils import make_grid

    from torchdojo.viz.figures import new_figure

    was_training = model.training
    model.eval()
    g = torch.Generator().manual_seed(seed)
    rows, cols = torch.randn(n, model.z_dim, generator=g), torch.randn(n, model.z_dim, generator=g)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        row_images, col_images = model(rows), model(cols)  # (n, 1, S, S) each
        mixed = model.mix(rows.repeat_interleave(n, 0), cols.repeat(n, 1), layer)  # (n * n, ...)
    model.train(was_training)
    blank = torch.ones_like(row_images[:1])  # white corner
    table = [torch.cat([blank, col_images])]  # first row: the column sources
    table += [torch.cat([row_images[i : i + 1], mixed[i * n : (i + 1) * n]]) for i in range(n)]
    grid = make_grid((torch.cat(table) + 1) / 2, nrow=n + 1, padding=2, pad_value=1.0)  # (C, H, W)
    fig = new_figure(width=1.1 * (n + 1), height=1.1 * (n + 1) + 0.4)
    ax = fig.add_subplot()
    ax.imshow(grid[0].clamp(0, 1).numpy(), cmap="gray", vmin=0, vmax=1)
    ax.set_axis_off()
    ax.set_title(f"rows: layers < {layer} (coarse); columns: layers >= {layer} (fine)", fontsize=8)
    return fig


RECIPE = Recipe(
    config=Config,
    setup=setup,
    run=run,
    smoke=Config(
        dataset="mnist-tiny",
        epochs=1,
        batch_size=32,
        width=8,
        d_width=8,
        z_dim=16,
        w_dim=16,
        mapping_depth=2,
        grid_size=16,
        max_train_samples=64,
    ),
    cpu_minutes=22.9,  # 1,373 s user + sys (1,330 s of training steps), the run below
    expected={
        # measured 0.016 (1 of 64 fixed-noise samples nearer a training image than half the
        # held-out median distance) after 1.6 epochs, D's accuracies ~0.77, no health warning
        "fraction_copied": Expected(
            0.1,
            data="MNIST train (60,000), held-out: MNIST test",
            measured_by="torchdojo run stylegan-mnist --threads 1 --cpu-budget 1330 --epochs 30",
            mode="min",
        )
    },
    lesson="lessons/22_gans.py",
)
