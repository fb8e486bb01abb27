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

from torchdojo.engine import Loaders, TensorLoader, Trainer
from torchdojo.models import ModelSpec, create_model
from torchdojo.recipes._api import Expected, Recipe
from torchdojo.recipes._fundamentals import load_tabular, plot_two_feature_boundary
from torchdojo.recipes._run import RunContext


@dataclass(frozen=True)
class Config:
    dataset: str = "breast_cancer"  # breast_cancer | iris-binary (versicolor vs virginica)
    epochs: int = 50
    batch_size: int = 32
    lr: float = 0.01
    weight_decay: float = 1e-4
    plot_features: tuple[int, int] = (20, 27)  # worst radius, worst concave points (iris: 2,3)
    seed: int = 0


class BinaryTrainer(Trainer):
    """Validation hands the metrics probabilities (B,) and integer targets (B,)."""

    def validation_step(self, batch: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor, Tensor]:
        x, y = batch
        logits = self.model(x)  # (B, 1)
        return self.loss_fn(logits, y), torch.sigmoid(logits[:, 0]), y[:, 0].long()


def run(cfg: Config, ctx: RunContext) -> dict[str, float]:
    train, test, names = load_tabular(cfg.dataset)
    ctx.note_data(train.source)
    features = train.x.shape[1]
    kwargs = {"in_features": features, "num_classes": 1, "depth": 0}
    model = create_model("mlp", **kwargs)  # depth 0: Flatten -> Linear(features, 1)
    train_loader = TensorLoader(train.x, train.y.float()[:, None], batch_size=cfg.batch_size)
    test_loader = TensorLoader(test.x, test.y.float()[:, None], batch_size=1024, shuffle=False)
    trainer = ctx.trainer(
        metrics={"acc": BinaryAccuracy(), "auroc": BinaryAUROC()},
        trainer_cls=BinaryTrainer,
        epochs=cfg.epochs,
        seed=cfg.seed,
        monitor="val_auroc",
        log_every=10,
    )
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    loss_fn = nn.BCEWithLogitsLoss()
    history = trainer.fit(
        model, Loaders(train_loader, test_loader), loss_fn, opt, resume=ctx.resume
    )
    ctx.save_model(model, ModelSpec("mlp", kwargs, [features], [], [], train.classes))
    acc_2 = plot_two_feature_boundary(
        ctx, train, test, features=cfg.plot_features, names=names, num_outputs=1, loss_fn=loss_fn
    )
    last = history.last()
    return {
        "test_acc": last["val_acc"],
        "auroc": last["val_auroc"],
        "test_loss": last["val_loss"],
        "test_acc_2_features": acc_2,
    }


RECIPE = Recipe(
    name="logistic-regression",
    description="Logistic regression (nn.Linear + BCEWithLogitsLoss) on breast-cancer data.",
    config=Config,
    run=run,
    smoke=Config(epochs=3),
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
