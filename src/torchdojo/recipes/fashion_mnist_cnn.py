"""Fashion-MNIST with a wider MNIST-style CNN, augmentation and label smoothing: 93 % test.

Seeds: 001 ch9 (CNN), 004 ch7-8 (Fashion-MNIST), 000 ch4 (augmentation). Lesson:
lessons/08_mnist.py. Fashion-MNIST is MNIST's harder twin: shirts, T-shirts and pullovers look
alike, so the same CNN that reaches 99 % on digits stops near 91 %. Three cheap tricks buy the
rest on a CPU: more channels, random shifts and horizontal flips done on the uint8 batch in
torch (no DataLoader, no PIL), and label smoothing; one-cycle Adam keeps the epochs few.
Measured (seed 0): 93.04 % after the default 10 epochs (test accuracy by epoch 82.0, 86.6, 89.3,
87.1, 91.3, 91.9, 92.2, 92.8, 93.0, 93.0 %); seed 1: 93.24 %; ``--epochs 4`` stops at 92.1 %.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from torchdojo.data.transforms import CropFlip
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
    dataset: str = "fashion-mnist"  # fashion-mnist | mnist | mnist-tiny
    epochs: int = 10
    batch_size: int = 256
    lr: float = 0.01  # peak LR of the one-cycle schedule
    width: int = 32  # channels of the first conv stage (mnist-cnn uses 16)
    shift: int = 2  # random shift in pixels (0: off)
    flip: bool = True  # random horizontal flip (clothes are left-right symmetric)
    label_smoothing: float = 0.1
    max_train_samples: int | None = None
    seed: int = 0


def setup(cfg: Config, ctx: RunContext) -> Setup:
    train, test = load_split_pair(ctx, cfg.dataset, max_train=cfg.max_train_samples, seed=cfg.seed)
    augment = CropFlip(train.mean, train.std, pad=cfg.shift, flip=cfg.flip)
    loaders = tensor_loaders(
        train, test, batch_size=cfg.batch_size, seed=cfg.seed, train_transform=augment
    )
    kwargs = {"in_channels": 1, "num_classes": len(train.classes), "width": cfg.width}
    model = create_model("mnist-cnn", **kwargs)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, betas=(0.9, 0.99))
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=cfg.lr, total_steps=cfg.epochs * len(loaders.train), pct_start=0.25
    )
    loss_fn = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
    return Setup(
        model,
        loaders,
        loss_fn,
        optimizer,
        scheduler,
        epochs=cfg.epochs,
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
    smoke=Config(dataset="mnist-tiny", epochs=1, batch_size=64, width=8),
    cpu_minutes=20,  # 1,206 s, `torchdojo run fashion-mnist-cnn --threads 1` under load
    expected={
        "test_acc": Expected(
            0.925,
            data="Fashion-MNIST (60k/10k split)",
            measured_by="torchdojo run fashion-mnist-cnn (data root with FashionMNIST: "
            "--data-dir or $TORCHDOJO_DATA)",
        )
    },
    lesson="lessons/08_mnist.py",
)
