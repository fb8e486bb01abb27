"""Logistic regression on breast-cancer data: nn.Linear + BCEWithLogitsLoss, accuracy and AUROC.

Seeds: 001 ch4 (logistic regression), 002 §1, 004 ch5. Lesson:
lessons/04_regression_classification.py. One linear layer gives one logit per sample;
``BCEWithLogitsLoss`` applies the sigmoid inside the loss, which is numerically safer than
``sigmoid`` then ``BCELoss``. Standardized features let one learning rate suit all 30 inputs.
The same model refitted on two features draws its straight decision boundary.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torchmetrics.classification import BinaryAccuracy, BinaryAUROC

from torchdojo.data import load_tabular
from torchdojo.engine import EvalOutput, Loaders, TensorLoader, Trainer
from torchdojo.models import ModelSpec, create_model
from torchdojo.runs import Expected, Recipe, Setup
from torchdojo.runs.classify import two_feature_boundary
from torchdojo.runs.context import RunContext


@dataclass(frozen=True)
class Config:
    dataset: str = "breast_cancer"  # breast_cancer | iris-binary (versicolor vs virginica)
    epochs: int = 50
    batch_size: int = 32
    lr: float = 0.01
    weight_decay: float = 1e-4
    plot_features: tuple[int, int] = (20, 27)  # worst radius, worst concave points (iris: 2,3)
    seed: int = 0


def setup(cfg: Config, ctx: RunContext) -> Setup:
    train, test, _ = load_tabular(cfg.dataset)
    ctx.note_data(train.source)
    features = train.x.shape[1]
    loaders = Loaders(  # float targets (B, 1), the shape of the one logit
        TensorLoader(train.x, train.y.float()[:, None], batch_size=cfg.batch_size),
        TensorLoader(test.x, test.y.float()[:, None], batch_size=1024, shuffle=False),
    )
    kwargs = {"in_features": features, "num_classes": 1, "depth": 0}
    model = create_model("mlp", **kwargs)  # depth 0: Flatten -> Linear(features, 1)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    return Setup(
        model,
        loaders,
        nn.BCEWithLogitsLoss(),  # the sigmoid inside the loss: stable for large logits
        optimizer,
        epochs=cfg.epochs,
        classes=train.classes,
        spec=ModelSpec("mlp", kwargs, [features], [], [], train.classes),
    )


def binary_eval_step(trainer: Trainer, batch: tuple[Tensor, Tensor]) -> EvalOutput:
    """Validation hands the metrics probabilities (B,) and integer targets (B,)."""
    x, y = batch
    logits = trainer.model(x)  # (B, 1)
    assert trainer.loss_fn is not None  # the setup's BCEWithLogitsLoss
    loss = trainer.loss_fn(logits, y)
    return EvalOutput(loss, torch.sigmoid(logits[:, 0]), y[:, 0].long(), len(y))


def run(cfg: Config, ctx: RunContext) -> dict[str, float]:
    task = setup(cfg, ctx)
    history = ctx.fit(
        task,
        metrics={"acc": BinaryAccuracy(), "auroc": BinaryAUROC()},
        eval_step=binary_eval_step,
        seed=cfg.seed,
        monitor="val_auroc",
        log_every=10,
    )
    if task.spec is not None:
        ctx.save_model(task.model, task.spec)  # no confusion matrix: one logit, not argmax
    train, test, names = load_tabular(cfg.dataset)
    acc_2 = two_feature_boundary(
        ctx,
        train,
        test,
        features=cfg.plot_features,
        names=names,
        num_outputs=1,
        loss_fn=task.loss_fn,
    )
    last = history.last()
    return {
        "test_acc": last["val_acc"],
        "auroc": last["val_auroc"],
        "test_loss": last["val_loss"],
        "test_acc_2_features": acc_2,
    }


RECIPE = Recipe(
    config=Config,
    setup=setup,
    run=run,
    smoke=Config(epochs=3),
    cpu_minutes=0.031,  # 1.8 s, `torchdojo run logistic-regression`
    expected={
        "test_acc": Expected(
            0.95,
            data="scikit-learn breast_cancer, 25 % stratified test split",
            measured_by="torchdojo run logistic-regression",
        ),
        "auroc": Expected(
            0.98,
            data="scikit-learn breast_cancer, 25 % stratified test split",
            measured_by="torchdojo run logistic-regression",
        ),
    },
    lesson="lessons/04_regression_classification.py",
)
