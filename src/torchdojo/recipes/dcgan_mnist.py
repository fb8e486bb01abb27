"""DCGAN on MNIST or Fashion-MNIST digits: a generator that draws digits from noise.

Seeds: 003 ch5 (DCGAN, 64x64, trained on 400 images of 7 and 8 and judged by eye), 000's GAN digit
chapters. Lesson: lessons/22_gans.py. The 28 px version (noise -> 7x7 -> 14 -> 28) trains on a CPU
in minutes; ``image_size=64`` is the book's architecture (4 -> 8 -> ... -> 64). D and G each take
an Adam step per batch on the non-saturating loss (``loss=hinge`` for the hinge loss); the same
fixed noise is drawn through G at every epoch's end (report and TensorBoard), and D's accuracy on
real and fake images is logged: pinned at 1 means G is losing.

Measured (``torchdojo run dcgan-mnist --threads 1 --time-budget 3000 --epochs 30``: 6.2 epochs of
full MNIST in 22 CPU-minutes on a loaded machine): legible, varied digits, no health warning, 1.6 %
of samples nearer a training image than half the held-out median distance. Domain FID (features of
a 0.991-accurate ``mnist-cnn``; ``benchmarks/fid_cost.py``): 15.6 for 10,000 samples vs the 10,000
test images (real train vs test: 0.41). Inception FID (fid-helper's network, not bit-identical to
pytorch-fid's) on 1,000 samples vs 1,000 test images: 33.2, KID 0.0134, where two real 1k sets
score 15.8 and 0.0027 (``python benchmarks/fid_cost.py --run RUN_DIR --classifier MNIST_CNN_RUN_DIR
--n 10000 --inception-n 1000 --inception-floor --no-rates``, ~6 CPU-min for the 1k samples). **The
issue's goal, FID <= 10 on 10k samples within 20 CPU-minutes, is not met**: measured Inception FID
21.0 (KID 0.0125) for 10,000 samples against the 10,000 test images (``--n 10000 --inception-n
10000``, beside ``--real-only``; 3,400 CPU-s for each 10k set of features). Averaging G's weights
(``--set ema_decay=0.999``, G EMA as in StyleGAN and BigGAN) did not help in another 22-minute run
(``--cpu-budget 1330 --set ema_decay=0.999``, 4.5 epochs on a more loaded machine): domain FID 17.6
for the average vs 16.9 for the raw G of the same run, Inception FID 38.4 and KID 0.018 on 1k; so
it is off by default.

At equal CPU time with SAGAN, the style generator and the diffusion model
(docs/generative-table.md): ``torchdojo run dcgan-mnist --threads 1 --cpu-budget 190 --epochs 30``
did 729 steps (0.78 epoch) in 192 CPU-s of training steps: domain FID 34.2 (KID 135) for 10,000
samples, where SAGAN reached 124.4, the style generator 135.6 (271.3, collapsed, before its init
fix) and the diffusion model 397.1 (noise). At small CPU budgets DCGAN is the best of the four by
far: its step is the cheapest (3.8 steps per CPU-second on a loaded machine vs SAGAN's 1.6) and its
samples are digits within one epoch. At 22 CPU-min the ranking holds: Inception KID on 1k samples
DCGAN 0.013, the style generator 0.020, SAGAN 0.082, the diffusion model 0.139.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from torchdojo.runs import Expected, Recipe
from torchdojo.runs.context import RunContext
from torchdojo.runs.contract import Range
from torchdojo.runs.generative import (
    GANSetup,
    build_generator,
    gan_setup,
    generator_spec,
    image_loaders,
    train_gan,
)


@dataclass(frozen=True)
class Config:
    dataset: str = "mnist"  # mnist | fashion-mnist | mnist-embedded | mnist-tiny
    image_size: Literal[28, 32, 64] = 28  # 64: the book's DCGAN; 28: fast on a CPU
    epochs: int = 6
    batch_size: int = 64
    z_dim: Annotated[int, Range(1, 1024)] = 100
    width: int = 64  # channels of G's last / D's first feature map
    loss: Literal["bce", "hinge"] = "bce"  # bce: non-saturating minimax (DCGAN)
    lr_g: Annotated[float, Range(0, 1, low_open=True)] = 2e-4
    lr_d: Annotated[float, Range(0, 1, low_open=True)] = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)  # beta1 = 0.5: DCGAN's remedy for oscillation
    grid_size: Annotated[int, Range(1, 256)] = 64  # fixed-noise samples drawn each epoch
    # > 0: grids, FID and the saved G use an average of G's weights (G EMA; e.g. 0.999)
    ema_decay: Annotated[float, Range(0, 1, high_open=True)] = 0.0
    fid_samples: Annotated[int, Range(0, 10_000)] = 0  # > 0: FID/KID each epoch on this many
    fid_classifier: str = ""  # a classifier run folder (e.g. mnist-cnn's): adds a domain FID
    max_train_samples: int | None = None
    seed: int = 0


def setup(cfg: Config, ctx: RunContext) -> GANSetup:
    loaders, _, test = image_loaders(
        ctx,
        cfg.dataset,
        image_size=cfg.image_size,
        batch_size=cfg.batch_size,
        seed=cfg.seed,
        max_train=cfg.max_train_samples,
    )
    kwargs = {"z_dim": cfg.z_dim, "image_size": cfg.image_size, "channels": 1, "width": cfg.width}
    name = f"dcgan-{cfg.image_size}"
    return gan_setup(
        generator=build_generator(name, kwargs),
        spec=generator_spec(name, kwargs),
        loaders=loaders,
        image_size=cfg.image_size,
        width=cfg.width,
        spectral_norm=False,
        attention=False,
        lr_g=cfg.lr_g,
        lr_d=cfg.lr_d,
        betas=cfg.betas,
        epochs=cfg.epochs,
        test_images=test.x,
    )


def run(cfg: Config, ctx: RunContext) -> dict[str, float]:
    return train_gan(
        ctx,
        setup(cfg, ctx),
        loss=cfg.loss,
        z_dim=cfg.z_dim,
        image_size=cfg.image_size,
        grid_size=cfg.grid_size,
        seed=cfg.seed,
        fid_samples=cfg.fid_samples,
        fid_classifier=cfg.fid_classifier,
        ema_decay=cfg.ema_decay,
    )


RECIPE = Recipe(
    config=Config,
    setup=setup,
    run=run,
    smoke=Config(
        dataset="mnist-tiny", epochs=1, batch_size=32, width=8, grid_size=16, max_train_samples=64
    ),
    cpu_minutes=22.2,  # 1331 s, the run below (6.2 epochs in a 3000 s wall budget, loaded)
    expected={
        # measured 0.016 (1 of 64 fixed-noise samples nearer a training image than half the
        # held-out median distance); 256-sample Inception FID of its epoch-5 weights: 55.9
        "fraction_copied": Expected(
            0.1,
            data="MNIST train (60,000), held-out: MNIST test",
            measured_by="torchdojo run dcgan-mnist --threads 1 --time-budget 3000 --epochs 30",
            mode="min",
        )
    },
    lesson="lessons/22_gans.py",
)
