"""An MLP on scikit-learn's 8x8 digits: about 97 % test accuracy in seconds, no download.

Seeds: 001 ch8 (MLP), 002 §2 (deep nets), 004 ch6. Lesson: lessons/05_deep_nets.py.
The 1,797 bundled digits are MNIST in miniature (8x8, 17 grey levels): the whole
train-evaluate loop of an image classifier runs in seconds with no data to fetch, so it is the
place to try depth, width and dropout before paying for MNIST.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from torchdojo.models import create_model
from torchdojo.runs import Expected, Recipe, Setup
from torchdojo.runs.classify import (
    accuracy,
    finish_classifier,
    load_split_pair,
    model_spec,
    tensor_loaders,
)
from torchdojo.runs.context import RunContext


@dataclass(frozen=True)
class Config:
    epochs: int = 40
    batch_size: int = 64
    lr: float = 0.003  # peak LR of the one-cycle schedule
    width: int = 128
    depth: int = 2
    dropout: float = 0.2
    seed: int = 0


def setup(cfg: Config, ctx: RunContext) -> Setup:
    train, test = load_split_pair(ctx, "digits", seed=cfg.seed)  # 1,437 / 360, stratified
    loaders = tensor_loaders(train, test, batch_size=cfg.batch_size, seed=cfg.seed)
    kwargs = {
        "in_features": train.x[0].numel(),
        "num_classes": len(train.classes),
        "width": cfg.width,
        "depth": cfg.depth,
        "dropout": cfg.dropout,
    }
    model = create_model("mlp", **kwargs)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=cfg.lr, total_steps=cfg.epochs * len(loaders.train), pct_start=0.25
    )
    return Setup(
        model,
        loaders,
        nn.CrossEntropyLoss(),
        optimizer,
        scheduler,
        epochs=cfg.epochs,
        classes=train.classes,
        spec=model_spec("mlp", kwargs, train),
        mean=train.mean,
        std=train.std,
    )


def run(cfg: Config, ctx: RunContext) -> dict[str, float]:
    task = setup(cfg, ctx)
    metrics = {"acc": accuracy(len(task.classes))}
    history = ctx.fit(task, metrics=metrics, seed=cfg.seed, monitor="val_acc")
    return finish_classifier(ctx, task, history)


RECIPE = Recipe(
    config=Config,
    setup=setup,
    run=run,
    smoke=Config(epochs=2),
    cpu_minutes=0.061,  # 3.7 s, `torchdojo run digits-mlp`
    expected={
        "test_acc": Expected(
            0.96,
            data="scikit-learn digits, 20 % stratified test split (360 images)",
            measured_by="torchdojo run digits-mlp",
        )
    },
    lesson="lessons/05_deep_nets.py",
)
