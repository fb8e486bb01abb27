"""Self-Attention GAN on MNIST or Fashion-MNIST: spectral norm, self-attention, hinge loss, TTUR.

Seeds: 003 ch5 (Self-Attention GAN after DCGAN). Lesson: lessons/22_gans.py. The DCGAN nets of
``dcgan-mnist`` with SAGAN's four changes (Zhang et al., 2018): spectral normalisation on every
layer of G and D (``torch.nn.utils.parametrizations.spectral_norm``; D drops batch norm), a
self-attention layer at half resolution in both, the hinge loss, and the two time-scale update
rule (D's learning rate 4x G's, Adam betas (0, 0.9)). Same fixed-noise grids and D accuracies
as ``dcgan-mnist``, so the two runs compare directly.

Measured at equal CPU time with DCGAN, on a heavily loaded 2-core machine (table and caveats:
docs/generative-table.md): ``torchdojo run sagan-mnist --threads 1 --cpu-budget 190 --epochs
30`` stopped after 309 steps (0.33 epoch, 191.9 CPU-s of training steps; 3.8 CPU-min for the
whole process). Domain FID 124.4 (domain KID 986; features of a 0.991-accurate ``mnist-cnn``)
for 10,000 samples vs the 10,000 test images, scored by ``python benchmarks/fid_cost.py --run
RUN_DIR --classifier MNIST_CNN_RUN_DIR --n 10000 --inception-n 0 --no-rates`` (47 CPU-s);
real train vs test: 0.41. DCGAN at the same 192 CPU-s did 729 steps and is far ahead (see the
table): each SAGAN step costs ~2.4x a DCGAN step (spectral norm, attention), and at this
budget SAGAN's blobs are not yet digits. No sample was a copy (0 of 256).

At DCGAN's 22 CPU-min (``torchdojo run sagan-mnist --threads 1 --cpu-budget 1330 --epochs
30``; 1,635 steps, 1.75 epochs, 23.2 CPU-min for the whole process): domain FID 33.9 (KID 169)
on 10k samples; Inception FID 93.2, KID 0.082 on 1,000 samples (fid-helper's network, not
bit-identical to pytorch-fid's; two real 1k sets score 15.8 and 0.0027), where DCGAN scores
15.6 / 33.2 / 0.013 and the style generator 30.0 / 45.1 / 0.020. Its samples are digit-like
strokes with artefacts; D's accuracies ~0.8, no health warning, no copies. On a CPU budget
SAGAN's ideas cost more than they buy at this size.
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
    image_size: Literal[28, 32, 64] = 28
    epochs: int = 6
    batch_size: int = 64
    z_dim: Annotated[int, Range(1, 1024)] = 100
    width: int = 64  # channels of G's last / D's first feature map
    loss: Literal["hinge", "bce"] = "hinge"
    lr_g: Annotated[float, Range(0, 1, low_open=True)] = 1e-4  # TTUR: G slower ...
    lr_d: Annotated[float, Range(0, 1, low_open=True)] = 4e-4  # ... D faster
    betas: tuple[float, float] = (0.0, 0.9)
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
    name = f"sagan-{cfg.image_size}"
    return gan_setup(
        generator=build_generator(name, kwargs),
        spec=generator_spec(name, kwargs),
        loaders=loaders,
        image_size=cfg.image_size,
        width=cfg.width,
        spectral_norm=True,
        attention=True,
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
    cpu_minutes=23.2,  # 1,389 s user + sys (1,330 s of training steps), the run below
    expected={
        # measured 0.0 (no fixed-noise sample nearer a training image than half the held-out
        # median distance) after 1.75 epochs; its FIDs next to DCGAN's at the same CPU time:
        # docs/generative-table.md
        "fraction_copied": Expected(
            0.1,
            data="MNIST train (60,000), held-out: MNIST test",
            measured_by="torchdojo run sagan-mnist --threads 1 --cpu-budget 1330 --epochs 30",
            mode="min",
        )
    },
    lesson="lessons/22_gans.py",
)
