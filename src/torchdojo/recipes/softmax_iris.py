"""Softmax regression on iris: one linear layer, three logits, CrossEntropyLoss, three regions.

Seeds: 001 ch4 (softmax regression), 002 §1, 004 ch5. Lesson:
lessons/04_regression_classification.py. ``CrossEntropyLoss`` takes the raw logits: it applies
log-softmax itself, so the model has no softmax layer. The model refitted on petal length and
width shows why the classes are (almost) linearly separable: three straight-edged regions.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from torchdojo.recipes._api import Expected, Recipe
from torchdojo.recipes._common import fit_registered
from torchdojo.recipes._fundamentals import load_tabular, plot_two_feature_boundary
from torchdojo.recipes._run import RunContext


@dataclass(frozen=True)
class Config:
    epochs: int = 60
    batch_size: int = 16
    lr: float = 0.05  # peak LR of the one-cycle schedule
    plot_features: tuple[int, int] = (2, 3)  # petal length, petal width
    seed: int = 0


def run(cfg: Config, ctx: RunContext) -> dict[str, float]:
    train, test, names = load_tabular("iris")
    ctx.note_data(train.source)
    kwargs = {"in_features": train.x.shape[1], "num_classes": len(train.classes), "depth": 0}
    metrics = fit_registered(  # depth 0: Flatten -> Linear(4, 3)
        ctx,
        "mlp",
        kwargs,
        train,
        test,
        epochs=cfg.epochs,
        batch_size=cfg.batch_size,
        lr=cfg.lr,
        seed=cfg.seed,
    )
    metrics["test_acc_2_features"] = plot_two_feature_boundary(
        ctx,
        train,
        test,
        features=cfg.plot_features,
        names=names,
        num_outputs=len(train.classes),
        loss_fn=nn.CrossEntropyLoss(),
    )
    return metrics


RECIPE = Recipe(
    name="softmax-iris",
    description="Softmax regression on iris: one linear layer, CrossEntropyLoss on logits.",
    config=Config,
    run=run,
    smoke=Config(epochs=3),
    expected={
        "test_acc": Expected(
            0.9,
            data="scikit-learn iris, 25 % stratified test split (38 flowers)",
            measured_by="torchdojo run softmax-iris",
        ),
    },
    lesson="lessons/04_regression_classification.py",
)
