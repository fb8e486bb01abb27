"""MNIST digits with a multi-layer perceptron: about 98 % test accuracy in a few epochs.

Seeds: 001 ch8 (MLP on MNIST), 002 §2-3 (deep nets), 004 ch7. Lesson: lessons/08_mnist.py.
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
    dataset: str = "mnist"  # mnist | mnist-embedded | mnist-tiny | fashion-mnist
    epochs: int = 4
    batch_size: int = 128
    lr: float = 0.003  # peak LR of the one-cycle schedule
    width: int = 256
    depth: int = 2
    dropout: float = 0.1
    max_train_samples: int | None = None
    seed: int = 0


def setup(cfg: Config, ctx: RunContext) -> Setup:
    train, test = load_split_pair(ctx, cfg.dataset, max_train=cfg.max_train_samples, seed=cfg.seed)
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
    smoke=Config(dataset="mnist-tiny", epochs=1, batch_size=64),
    cpu_minutes=2.8,  # 171 s, `torchdojo run mnist-mlp`
    expected={
        "test_acc": Expected(
            0.98, data="MNIST (official 60k/10k split)", measured_by="torchdojo run mnist-mlp"
        )
    },
    lesson="lessons/08_mnist.py",
)
