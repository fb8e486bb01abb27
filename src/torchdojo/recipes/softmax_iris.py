"""Softmax regression on iris: one linear layer, three logits, CrossEntropyLoss, three regions.

Seeds: 001 ch4 (softmax regression), 002 §1, 004 ch5. Lesson:
lessons/04_regression_classification.py. ``CrossEntropyLoss`` takes the raw logits: it applies
log-softmax itself, so the model has no softmax layer. The model refitted on petal length and
width shows why the classes are (almost) linearly separable: three straight-edged regions.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from torchdojo.data import load_tabular
from torchdojo.models import create_model
from torchdojo.runs import Expected, Recipe, Setup
from torchdojo.runs.classify import (
    accuracy,
    finish_classifier,
    model_spec,
    tensor_loaders,
    two_feature_boundary,
)
from torchdojo.runs.context import RunContext


@dataclass(frozen=True)
class Config:
    epochs: int = 60
    batch_size: int = 16
    lr: float = 0.05  # peak LR of the one-cycle schedule
    plot_features: tuple[int, int] = (2, 3)  # petal length, petal width
    seed: int = 0


def setup(cfg: Config, ctx: RunContext) -> Setup:
    train, test, _ = load_tabular("iris")
    ctx.note_data(train.source)
    loaders = tensor_loaders(train, test, batch_size=cfg.batch_size, seed=cfg.seed)
    kwargs = {"in_features": train.x.shape[1], "num_classes": len(train.classes), "depth": 0}
    model = create_model("mlp", **kwargs)  # depth 0: Flatten -> Linear(4, 3), no softmax
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=cfg.lr, total_steps=cfg.epochs * len(loaders.train), pct_start=0.25
    )
    return Setup(
        model,
        loaders,
        nn.CrossEntropyLoss(),  # log-softmax + negative log-likelihood, on the logits
        optimizer,
        scheduler,
        epochs=cfg.epochs,
        classes=train.classes,
        spec=model_spec("mlp", kwargs, train),
    )


def run(cfg: Config, ctx: RunContext) -> dict[str, float]:
    task = setup(cfg, ctx)
    metrics = {"acc": accuracy(len(task.classes))}
    history = ctx.fit(task, metrics=metrics, seed=cfg.seed, monitor="val_acc")
    result = finish_classifier(ctx, task, history)
    train, test, names = load_tabular("iris")
    result["test_acc_2_features"] = two_feature_boundary(
        ctx,
        train,
        test,
        features=cfg.plot_features,
        names=names,
        num_outputs=len(train.classes),
        loss_fn=nn.CrossEntropyLoss(),
    )
    return result


RECIPE = Recipe(
    config=Config,
    setup=setup,
    run=run,
    smoke=Config(epochs=3),
    cpu_minutes=0.048,  # 2.9 s, `torchdojo run softmax-iris`, 2-core CPU under load
    expected={
        "test_acc": Expected(
            0.9,
            data="scikit-learn iris, 25 % stratified test split (38 flowers)",
            measured_by="torchdojo run softmax-iris",
        ),
    },
    lesson="lessons/04_regression_classification.py",
)
