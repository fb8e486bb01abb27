"""MNIST digits with a small CNN: 99 % test accuracy in one epoch on a CPU.

Seeds: 001 ch9 (CNN on MNIST), 000 ch3, 004 ch7. Lesson: lessons/08_mnist.py.
What makes it fast: the data stays one uint8 tensor (no DataLoader), batch 256, Adam with
betas (0.7, 0.9) and a one-cycle LR schedule, BatchNorm, channels_last, and one CPU thread
for a small model.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from torchdojo.models import create_model
from torchdojo.runs import Expected, Recipe, Setup
from torchdojo.runs.classify import (
    accuracy,
    auto_epochs,
    finish_classifier,
    load_split_pair,
    model_spec,
    tensor_loaders,
)
from torchdojo.runs.context import RunContext


@dataclass(frozen=True)
class Config:
    dataset: str = "mnist"  # mnist | mnist-embedded | mnist-tiny | fashion-mnist
    epochs: int | None = None  # None: enough for 200 steps (1 epoch of full MNIST)
    batch_size: int = 256
    lr: float = 0.01  # peak LR of the one-cycle schedule
    betas: tuple[float, float] = (0.7, 0.9)
    width: int = 16  # channels of the first conv stage
    label_smoothing: float = 0.0
    max_train_samples: int | None = None
    seed: int = 0


def setup(cfg: Config, ctx: RunContext) -> Setup:
    train, test = load_split_pair(ctx, cfg.dataset, max_train=cfg.max_train_samples, seed=cfg.seed)
    loaders = tensor_loaders(train, test, batch_size=cfg.batch_size, seed=cfg.seed)
    kwargs = {"in_channels": 1, "num_classes": len(train.classes), "width": cfg.width}
    model = create_model("mnist-cnn", **kwargs)
    epochs = auto_epochs(cfg.epochs, len(train), cfg.batch_size)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, betas=cfg.betas)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=cfg.lr, total_steps=epochs * len(loaders.train), pct_start=0.25
    )
    loss_fn = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
    return Setup(
        model,
        loaders,
        loss_fn,
        optimizer,
        scheduler,
        epochs=epochs,
        classes=train.classes,
        spec=model_spec("mnist-cnn", kwargs, train),
        mean=train.mean,
        std=train.std,
    )


def run(cfg: Config, ctx: RunContext) -> dict[str, float]:
    task = setup(cfg, ctx)
    metrics = {"acc": accuracy(len(task.classes))}
    history = ctx.fit(task, metrics=metrics, seed=cfg.seed, monitor="val_acc", channels_last=True)
    return finish_classifier(ctx, task, history)


RECIPE = Recipe(
    config=Config,
    setup=setup,
    run=run,
    smoke=Config(dataset="mnist-tiny", epochs=1, batch_size=64),
    cpu_minutes=2.7,  # 162 s, `torchdojo run mnist-cnn`
    expected={
        "test_acc": Expected(
            0.99, data="MNIST (official 60k/10k split)", measured_by="torchdojo run mnist-cnn"
        )
    },
    lesson="lessons/08_mnist.py",
)
