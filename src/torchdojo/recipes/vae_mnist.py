"""Variational autoencoder on MNIST or Fashion-MNIST: reconstructions, a latent space, samples.

Seeds: 000's planned VAE chapter. Lesson: lessons/23_vae.py. A small conv encoder gives
``q(z|x) = N(mu, sigma^2)``; ``z`` is drawn with the reparameterisation trick and decoded into
Bernoulli pixel logits; the loss is the negative ELBO, reconstruction + KL (written out in
:func:`torchdojo.nn.generative.gaussian_kl`), in nats per image, reported on the test set with
its two terms. The report shows reconstructions, the test set in latent space (``z_dim=2``
plots it directly), a walk between two digits and fixed-noise samples from the prior per epoch.

Measured (``torchdojo run vae-mnist --threads 1``, seed 0, 10 epochs, ``z_dim`` 16, MNIST
grey levels as Bernoulli targets): test negative ELBO 101.7 nats per image (reconstruction 76.8
+ KL 25.0); 442 s of CPU (447 user + 11 sys by ``time``), 522 s wall.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import torch

from torchdojo.runs import Expected, Recipe, Setup
from torchdojo.runs.context import RunContext
from torchdojo.runs.contract import Range
from torchdojo.runs.generative import (
    BatchMean,
    SampleGrid,
    VAEStep,
    build_generator,
    generator_spec,
    image_loaders,
    no_single_loss,
    vae_eval_step,
    vae_report,
)


@dataclass(frozen=True)
class Config:
    dataset: str = "mnist"  # mnist | fashion-mnist | mnist-embedded | mnist-tiny
    epochs: int = 10
    batch_size: int = 128
    z_dim: Annotated[int, Range(1, 1024)] = 16  # 2: the latent space is plotted as is
    width: int = 32  # channels of the first conv (the second has twice as many)
    lr: float = 1e-3
    beta: Annotated[float, Range(0)] = 1.0  # weight of the KL term (1: the ELBO)
    grid_size: Annotated[int, Range(1, 256)] = 64  # prior samples drawn each epoch
    max_train_samples: int | None = None
    max_test_samples: int | None = None
    seed: int = 0


def setup(cfg: Config, ctx: RunContext) -> Setup:
    loaders, train, _ = image_loaders(
        ctx,
        cfg.dataset,
        image_size=28,
        batch_size=cfg.batch_size,
        seed=cfg.seed,
        max_train=cfg.max_train_samples,
        max_test=cfg.max_test_samples,
        with_val=True,
    )
    kwargs = {"z_dim": cfg.z_dim, "channels": 1, "width": cfg.width, "image_size": 28}
    model = build_generator("vae-mnist", kwargs)
    return Setup(
        model,
        loaders,
        no_single_loss,
        torch.optim.Adam(model.parameters(), lr=cfg.lr),
        epochs=cfg.epochs,
        classes=train.classes,
        spec=generator_spec("vae-mnist", kwargs),
        mean=[0.5],
        std=[0.5],
    )


def run(cfg: Config, ctx: RunContext) -> dict[str, float]:
    task = setup(cfg, ctx)
    grid = SampleGrid(ctx.run_dir, player="model", z_dim=cfg.z_dim, n=cfg.grid_size, seed=cfg.seed)
    history = ctx.fit(
        task,
        metrics={"recon": BatchMean("recon"), "kl": BatchMean("kl")},
        callbacks=[grid],
        step=VAEStep(cfg.beta),
        eval_step=vae_eval_step,
        seed=cfg.seed,
        monitor="val_loss",
        monitor_mode="min",
    )
    assert task.spec is not None and task.loaders.val is not None
    ctx.save_model(task.model, task.spec)
    figure = grid.progress_figure()
    if figure is not None:
        ctx.save_figure(figure, "samples_by_epoch")
    vae_report(ctx, task.model, task.loaders.val, classes=task.classes)
    last = history.last()
    return {
        "test_nelbo": last["val_loss"],  # nats per image; lower is better
        "test_recon": last["val_recon"],
        "test_kl": last["val_kl"],
        "train_loss": last["train_loss"],
        "train_time": last["train_time"],
    }


RECIPE = Recipe(
    config=Config,
    setup=setup,
    run=run,
    smoke=Config(
        dataset="mnist-tiny",
        epochs=1,
        batch_size=32,
        width=8,
        grid_size=16,
        max_train_samples=64,
        max_test_samples=64,
    ),
    cpu_minutes=7.4,  # 442 s, the run in the docstring
    expected={
        "test_nelbo": Expected(
            105.0,  # measured 101.7 nats per image
            data="MNIST train (60,000) / test (10,000)",
            measured_by="torchdojo run vae-mnist --threads 1",
            mode="min",
        )
    },
    lesson="lessons/23_vae.py",
)
