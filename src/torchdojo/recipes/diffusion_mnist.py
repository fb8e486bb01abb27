"""A small DDPM diffusion model generates MNIST digits; DDIM samples them in 50 steps.

Seeds: issue 16 (no seed book trains a diffusion model: what readers now expect next to
GANs). Lesson: lessons/24_diffusion.py. The U-Net (28 -> 14 -> 7, 456k parameters at width 32)
learns to predict the noise added to a digit at a random step of a 1,000-step linear schedule
(MSE, DDPM's "simple" loss); an exponential moving average of its weights samples. After every
epoch a grid of 16 samples from fixed noise goes to the report and TensorBoard; the final grid
has 64. ``torchdojo sample RUN_DIR`` rebuilds the bundle and calls ``model.sample``.

Measured (``torchdojo run diffusion-mnist --threads 1 --cpu-budget 1330``, on a loaded 2-core
machine): 652 steps (1.39 epochs) in 1,332 CPU-s of training steps, 24.6 CPU-min for the whole
process: validation noise-MSE 0.0299 (train 0.0303). Its samples are blobs and strokes, not
yet digits: domain FID 119.5 on 1,000 DDIM-50 samples (two real 1k sets: 2.15), Inception FID
136 and KID 0.139 on the same 1,000 (real vs real 15.8 and 0.0027), where DCGAN at the same
CPU time scores 33.2 and 0.013 (docs/generative-table.md). DDIM-50 costs 0.26-0.35 CPU-s per
image (50 U-Net passes) where a GAN's generator makes one call. An earlier partial run
(``--time-budget 3300``, 552 steps) reached validation noise-MSE 0.0327.

Measured at equal CPU time with DCGAN, on a heavily loaded 2-core machine (table:
docs/generative-table.md): ``torchdojo run diffusion-mnist --threads 1 --cpu-budget 190``
stopped after 107 steps (0.23 epoch, 192.4 CPU-s of training steps; 4.4 CPU-min for the whole
process, with the final 64 DDIM-50 samples at 0.25 CPU-s each): validation noise-MSE 0.219.
Its EMA samples are noise: after 107 steps the average (decay 0.995) still holds 58 % of the
initial weights. Domain FID 397.1 (KID 1864) for 1,000 DDIM-10 samples vs the
10,000 test images (``python benchmarks/fid_cost.py --run RUN_DIR --classifier
MNIST_CNN_RUN_DIR --n 1000 --sample-steps 10 --inception-n 0 --no-rates``); DCGAN at the
same CPU draws digits. At small budgets the GAN wins by far. The LR schedule (one-cycle) is
sized by ``--epochs``, not by the budget: a run cut by ``--cpu-budget`` long before its
last epoch stops at a high LR, so choose ``--epochs`` to fit the budget (about 80 images per
CPU-second: 2 epochs ~25 CPU-min).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Annotated

import torch
from torch import nn

from torchdojo.engine import EMA, averaged
from torchdojo.models import ModelSpec, create_model
from torchdojo.models.diffusion import DiffusionModel
from torchdojo.runs import ConfigError, Expected, Recipe, Setup
from torchdojo.runs.classify import load_split_pair
from torchdojo.runs.context import RunContext
from torchdojo.runs.contract import Range
from torchdojo.runs.diffusion import (
    diffusion_eval_step,
    diffusion_step,
    grid_sampler,
    sample_grid_figure,
    signed_loaders,
)
from torchdojo.runs.generative import SampleGrid


@dataclass(frozen=True)
class Config:
    dataset: str = "mnist"  # mnist | fashion-mnist | mnist-tiny (synthetic, offline)
    epochs: int = 2  # ~25 CPU-minutes on one thread (about 80 images per CPU-second)
    batch_size: int = 128
    lr: float = 2e-3  # peak LR of the one-cycle schedule
    width: int = 32  # U-Net channels at 28x28 (x2 at 14 and 7)
    steps: Annotated[int, Range(2, 10_000)] = 1000  # diffusion steps T
    beta_start: Annotated[float, Range(0, 1, low_open=True, high_open=True)] = 1e-4
    beta_end: Annotated[float, Range(0, 1, low_open=True, high_open=True)] = 0.02
    ema_decay: Annotated[float, Range(0, 1, high_open=True)] = 0.995
    sample_steps: Annotated[int, Range(1, 10_000)] = 50  # DDIM steps of the final grid
    grid_steps: Annotated[int, Range(1, 10_000)] = 25  # DDIM steps of the per-epoch grids
    final_samples: Annotated[int, Range(1, 10_000)] = 64
    max_train_samples: int | None = None
    max_test_samples: int | None = 2000  # validation loss on a fixed subset: cheaper epochs
    seed: int = 0


def setup(cfg: Config, ctx: RunContext) -> Setup:
    if cfg.beta_start > cfg.beta_end:
        raise ConfigError(f"beta_start={cfg.beta_start} > beta_end={cfg.beta_end}: swap them")
    train, test = load_split_pair(
        ctx,
        cfg.dataset,
        max_train=cfg.max_train_samples,
        max_test=cfg.max_test_samples,
        seed=cfg.seed,
    )
    if tuple(train.x.shape[1:]) != (1, 28, 28):
        raise ConfigError(f"dataset={cfg.dataset!r}: diffusion-mnist needs 1x28x28 images")
    loaders = signed_loaders(train, test, batch_size=cfg.batch_size, seed=cfg.seed)
    kwargs = {"width": cfg.width, "steps": cfg.steps, "beta_start": cfg.beta_start}
    kwargs["beta_end"] = cfg.beta_end
    model = create_model("ddpm-unet-28", **kwargs)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.0)
    total = max(cfg.epochs * len(train) // cfg.batch_size, 8)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=cfg.lr, total_steps=total, pct_start=0.1
    )
    spec = ModelSpec(
        "ddpm-unet-28",
        kwargs,
        [1, 28, 28],
        [0.5],  # images are (x / 255 - 0.5) / 0.5: [-1, 1]
        [0.5],
        task="generation",
        preprocess={"output": "[-1, 1]", "sample": "model.sample(n, generator=, steps=)"},
    )
    return Setup(
        model,
        loaders,
        nn.MSELoss(),
        optimizer,
        scheduler,
        epochs=cfg.epochs,
        spec=spec,
        mean=[0.5],
        std=[0.5],
    )


def run(cfg: Config, ctx: RunContext) -> dict[str, float]:
    task = setup(cfg, ctx)
    ema = EMA(cfg.ema_decay)
    draw = grid_sampler(n=16, steps=cfg.grid_steps, seed=cfg.seed)
    grids = SampleGrid(ctx.run_dir, n=16, draw=draw, ema=ema)
    history = ctx.fit(
        task,
        step=diffusion_step,
        eval_step=diffusion_eval_step,
        callbacks=[ema, grids],
        seed=cfg.seed,
    )
    model = task.model
    assert isinstance(model, DiffusionModel)
    with averaged(model, ema):
        generator = torch.Generator().manual_seed(cfg.seed + 1)
        start = time.process_time()
        images = model.sample(cfg.final_samples, generator=generator, steps=cfg.sample_steps)
        sample_cpu = (time.process_time() - start) / cfg.final_samples
    title = f"{cfg.final_samples} samples, DDIM {cfg.sample_steps} steps (EMA weights)"
    ctx.save_figure(sample_grid_figure(images, title), "samples_final")
    progress = grids.progress_figure()
    if progress is not None:
        ctx.save_figure(progress, "samples_by_epoch")
    ema.copy_to(model)  # the bundle holds the average, which samples better
    assert task.spec is not None
    ctx.save_model(model, task.spec)
    last = history.last()
    return {
        "train_loss": last["train_loss"],
        "val_loss": last["val_loss"],
        "train_time": last["train_time"],
        "train_cpu": last["train_cpu"],  # CPU seconds of the training steps (--cpu-budget's)
        "sample_cpu_s_per_image": sample_cpu,  # CPU seconds (all threads) per DDIM sample
    }


RECIPE = Recipe(
    config=Config,
    setup=setup,
    run=run,
    smoke=Config(
        dataset="mnist-tiny",
        epochs=1,
        batch_size=64,
        width=8,
        steps=100,
        grid_steps=3,
        sample_steps=3,
        final_samples=4,
        max_train_samples=128,
        max_test_samples=64,
    ),
    cpu_minutes=24.6,  # 1,478 s user + sys (1,332 s of training steps), the run below
    expected={
        # measured 0.0299 after 652 steps (1.39 epochs, 22 CPU-min of training); 0.219 after
        # 107 steps (--cpu-budget 190)
        "val_loss": Expected(
            0.035,
            data="MNIST train (60,000), validation: 2,000 MNIST test images",
            measured_by="torchdojo run diffusion-mnist --threads 1 --cpu-budget 1330",
            mode="min",
        )
    },
    lesson="lessons/24_diffusion.py",
)
