"""What the classification recipes share: tensors in, a trained model and its metrics out."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn
from torchmetrics.classification import MulticlassAccuracy

from torchdojo.data import ArrayDataset, Normalize, create_dataset
from torchdojo.engine import Loaders, TensorLoader
from torchdojo.engine import distributed as dist
from torchdojo.engine.optim import build_optimizer, build_scheduler
from torchdojo.models import ModelSpec, create_model
from torchdojo.recipes._run import RunContext


def accuracy(num_classes: int) -> MulticlassAccuracy:
    """Plain accuracy (correct / total). torchmetrics' default is the macro average over
    classes, which is a different number; every recipe reports this one as ``acc``."""
    return MulticlassAccuracy(num_classes, average="micro", validate_args=False)


def load_split_pair(
    ctx: RunContext,
    dataset: str,
    *,
    max_train: int | None = None,
    max_test: int | None = None,
    seed: int = 0,
) -> tuple[ArrayDataset, ArrayDataset]:
    """Train and test splits of ``dataset`` from the run's data root; says which data it used."""
    train = create_dataset(dataset, "train", root=ctx.options.data_dir).subset(max_train, seed=seed)
    test = create_dataset(dataset, "test", root=ctx.options.data_dir).subset(max_test, seed=seed)
    ctx.note_data(train.source, reference=train.reference)
    return train, test


def fit_classifier(
    ctx: RunContext,
    model: nn.Module,
    spec: ModelSpec,
    train: ArrayDataset,
    test: ArrayDataset,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    seed: int,
    optimizer: str = "adam",
    betas: tuple[float, float] = (0.9, 0.999),
    weight_decay: float = 0.0,
    schedule: str = "onecycle",
    warmup_fraction: float = 0.25,
    label_smoothing: float = 0.0,
    **trainer_config: Any,
) -> dict[str, float]:
    """Train ``model`` on in-memory ``train``, validate on ``test`` each epoch, save the model,
    plot a confusion matrix; returns ``test_acc``, ``test_loss``, ``train_loss``, ``train_time``."""
    transform = Normalize(test.mean, test.std) if train.x.dtype == torch.uint8 else None
    rank, world = dist.rank(), dist.world_size()
    train_loader = TensorLoader(
        train.x,
        train.y,
        batch_size=batch_size,
        shuffle=True,
        seed=seed,
        transform=transform,
        rank=rank,
        world_size=world,
    )
    test_loader = TensorLoader(
        test.x, test.y, batch_size=1024, shuffle=False, transform=transform, rank=rank, world_size=1
    )
    opt = build_optimizer(
        optimizer, model.parameters(), lr=lr, betas=betas, weight_decay=weight_decay
    )
    sched = build_scheduler(
        schedule, opt, total_steps=epochs * len(train_loader), warmup_fraction=warmup_fraction
    )
    num_classes = len(spec.classes)
    trainer = ctx.trainer(
        metrics={"acc": accuracy(num_classes)},
        epochs=epochs,
        seed=seed,
        monitor="val_acc",
        monitor_mode="max",
    )
    loss_fn = nn.CrossEntropyLoss(label_smoothing=label_smoothing)
    history = trainer.fit(
        model, Loaders(train_loader, test_loader), loss_fn, opt, sched, resume=ctx.resume
    )
    last = history.last()
    ctx.save_model(model, spec)
    plot_confusion(ctx, model, test_loader, spec.classes)
    return {
        "test_acc": last["val_acc"],
        "test_loss": last["val_loss"],
        "train_loss": last["train_loss"],
        "train_time": last["train_time"],
    }


def fit_registered(
    ctx: RunContext,
    name: str,
    kwargs: dict[str, Any],
    train: ArrayDataset,
    test: ArrayDataset,
    **fit_options: Any,
) -> dict[str, float]:
    """Build registered model ``name(**kwargs)``, describe it with a ModelSpec taken from
    ``train`` (so predict/export can rebuild it), and :func:`fit_classifier` it."""
    spec = ModelSpec(
        name, kwargs, list(train.x.shape[1:]), list(train.mean), list(train.std), train.classes
    )
    return fit_classifier(ctx, create_model(name, **kwargs), spec, train, test, **fit_options)


def fit_mlp(ctx: RunContext, cfg: Any, train: ArrayDataset, test: ArrayDataset) -> dict[str, float]:
    """The MLP recipes' model and fit; ``cfg`` has width, depth, dropout, epochs, batch_size, lr
    and seed (mnist-mlp, digits-mlp)."""
    kwargs = {
        "in_features": train.x[0].numel(),
        "num_classes": len(train.classes),
        "width": cfg.width,
        "depth": cfg.depth,
        "dropout": cfg.dropout,
    }
    return fit_registered(
        ctx, "mlp", kwargs, train, test,
        epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr, seed=cfg.seed,
    )  # fmt: skip


@torch.inference_mode()
def predict_all(model: nn.Module, loader: TensorLoader) -> tuple[Tensor, Tensor]:
    """Predicted and true labels over ``loader``."""
    model.eval()
    device = next(model.parameters()).device
    preds, targets = [], []
    for x, y in loader:
        preds.append(model(x.to(device)).argmax(1).cpu())
        targets.append(y.cpu())
    return torch.cat(preds), torch.cat(targets)


def plot_confusion(
    ctx: RunContext, model: nn.Module, loader: TensorLoader, classes: list[str]
) -> None:
    """Save the confusion matrix of ``model`` on ``loader`` into the run's plots."""
    if not dist.is_main_process():
        return
    from torchdojo.viz import confusion_matrix_figure

    preds, targets = predict_all(model, loader)
    ctx.save_figure(confusion_matrix_figure(targets, preds, classes), "confusion_matrix")


def auto_epochs(epochs: int | None, n: int, batch_size: int, *, min_steps: int = 200) -> int:
    """``epochs`` if given, else enough epochs for ``min_steps`` optimizer steps (one epoch of
    full MNIST; 13 of the 4,000-image embedded subset)."""
    if epochs is not None:
        return epochs
    return max(1, math.ceil(min_steps / math.ceil(n / batch_size)))
