"""What every classification run shares: its data split, accuracy, and the report's pictures.

``finish_classifier`` ends a classification run the same way for every recipe: it saves the
model (for predict/export) and draws the confusion matrix, the most-confused pairs, the top
losses and, for image models, Grad-CAM overlays into the report.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import Tensor, nn
from torchmetrics.classification import MulticlassAccuracy

from torchdojo.data import ArrayDataset, Normalize, create_dataset
from torchdojo.engine import History, Loaders, TensorLoader
from torchdojo.engine import distributed as dist
from torchdojo.engine.loader import Transform
from torchdojo.models import ModelSpec
from torchdojo.runs.context import RunContext
from torchdojo.runs.contract import Setup


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
    ctx.note_data(train.source, reference=train.reference, reason=train.fallback_reason)
    return train, test


@dataclass
class TensorLoaders(Loaders):
    """Loaders over in-memory tensors: both have a length (steps per epoch for a schedule)."""

    train: TensorLoader
    val: TensorLoader


def tensor_loaders(
    train: ArrayDataset,
    test: ArrayDataset,
    *,
    batch_size: int,
    seed: int,
    train_transform: Transform | None = None,
) -> TensorLoaders:
    """In-memory loaders: shuffled training batches (this DDP rank's share) through
    ``train_transform`` (default: normalize uint8 images), and test batches of 1,024, normalized.
    Float inputs (tabular, 1-D signals) pass as they are."""
    normalize = Normalize(train.mean, train.std) if train.x.dtype == torch.uint8 else None
    return TensorLoaders(
        TensorLoader(
            train.x,
            train.y,
            batch_size=batch_size,
            seed=seed,
            transform=train_transform or normalize,
            rank=dist.rank(),
            world_size=dist.world_size(),
        ),
        TensorLoader(test.x, test.y, batch_size=1024, shuffle=False, transform=normalize),
    )


def model_spec(name: str, kwargs: dict[str, Any], train: ArrayDataset) -> ModelSpec:
    """How ``predict`` / ``export`` rebuild registered model ``name(**kwargs)`` trained on
    ``train`` (input shape, normalization, class names)."""
    shape = list(train.x.shape[1:])
    return ModelSpec(name, kwargs, shape, list(train.mean), list(train.std), train.classes)


def auto_epochs(epochs: int | None, n: int, batch_size: int, *, min_steps: int = 200) -> int:
    """``epochs`` if given, else enough epochs for ``min_steps`` optimizer steps (one epoch of
    full MNIST; 13 of the 4,000-image embedded subset)."""
    if epochs is not None:
        return epochs
    return max(1, math.ceil(min_steps / math.ceil(n / batch_size)))


MAX_KEPT_IMAGES = 10_000  # a whole MNIST/CIFAR test set: 31 / 123 MB as floats


@torch.inference_mode()
def predict_all(model: nn.Module, loader: Any) -> tuple[Tensor, Tensor, Tensor | None]:
    """Logits, targets and (for image batches, up to ``MAX_KEPT_IMAGES``) inputs over an
    ``(x, y)`` loader: the top losses are looked for among the kept images."""
    model.eval()
    device = next(model.parameters()).device
    logits, targets, inputs, kept = [], [], [], 0
    for x, y in loader:
        logits.append(model(x.to(device)).float().cpu())
        targets.append(y.cpu())
        if x.dim() == 4 and kept < MAX_KEPT_IMAGES:
            inputs.append(x[: MAX_KEPT_IMAGES - kept].cpu())
            kept += len(inputs[-1])
    images = torch.cat(inputs) if inputs else None
    return torch.cat(logits), torch.cat(targets), images


def classifier_metrics(history: History) -> dict[str, float]:
    """The final numbers every classifier reports: test accuracy and loss, train loss, time."""
    last = history.last()
    return {
        "test_acc": last["val_acc"],
        "test_loss": last["val_loss"],
        "train_loss": last["train_loss"],
        "train_time": last["train_time"],
    }


def finish_classifier(ctx: RunContext, setup: Setup, history: History) -> dict[str, float]:
    """Save the model and the report's pictures; returns :func:`classifier_metrics`."""
    if setup.spec is not None:
        ctx.save_model(setup.model, setup.spec)
    if setup.loaders.val is not None:
        report_classifier(ctx, setup)
    return classifier_metrics(history)


def report_classifier(ctx: RunContext, setup: Setup) -> None:
    """Confusion matrix, most-confused pairs, top losses and Grad-CAM (image models) of
    ``setup.model`` on its validation batches, into the run's plots and report."""
    if not dist.is_main_process():
        return
    from torchdojo.viz import confusion_matrix_figure

    model = getattr(setup.model, "module", setup.model)
    logits, targets, images = predict_all(model, setup.loaders.val)
    classes = setup.classes or [str(i) for i in range(logits.shape[1])]
    preds = logits.argmax(1)
    ctx.save_figure(confusion_matrix_figure(targets, preds, classes), "confusion_matrix")
    ctx.save_figure(most_confused_figure(targets, preds, classes), "most_confused")
    if images is not None:
        n = len(images)
        ctx.save_figure(
            top_losses_figure(logits[:n], targets[:n], images, classes, setup), "top_losses"
        )
        cam = grad_cam_figure(model, images, classes, targets[:n], setup)
        if cam is not None:
            ctx.save_figure(cam, "grad_cam")


def most_confused_figure(targets: Tensor, preds: Tensor, classes: list[str]) -> Figure:
    """A bar chart of the most frequent mistakes, "true -> predicted"."""
    from torchdojo.viz import most_confused_pairs

    pairs = most_confused_pairs(targets, preds, classes, k=10)
    fig = Figure(figsize=(6, 0.4 * max(len(pairs), 2) + 1), layout="constrained")
    ax = fig.subplots()
    labels = [f"{t} -> {p}" for t, p, _ in pairs][::-1]
    ax.barh(labels or ["no mistakes"], [c for _, _, c in pairs][::-1] or [0], color="tab:red")
    ax.set(title="most confused: true -> predicted", xlabel="validation images")
    return fig


def top_losses_figure(
    logits: Tensor, targets: Tensor, images: Tensor, classes: list[str], setup: Setup
) -> Figure:
    """The 16 validation images with the highest loss, titled "pred / true / loss"."""
    from torchdojo.viz import image_grid, top_losses

    index, losses = top_losses(logits, targets, k=16)
    preds = logits.argmax(1)
    titles = [
        f"{classes[int(preds[i])]} / {classes[int(targets[i])]} / {float(v):.2f}"
        for i, v in zip(index, losses, strict=True)
    ]
    return image_grid(images[index], titles=titles, mean=setup.mean, std=setup.std)


def grad_cam_figure(
    model: nn.Module, images: Tensor, classes: list[str], targets: Tensor, setup: Setup
) -> Figure | None:
    """Grad-CAM overlays of 8 images spread over the validation set, "pred (p) / true";
    None for a model without a spatial layer (an MLP on images)."""
    from torchdojo.viz import GradCAM, cam_overlay_figure
    from torchdojo.viz.cam import cam_layer

    picks = torch.from_numpy(np.unique(np.linspace(0, len(images) - 1, 8).round()).astype(int))
    device = next(model.parameters()).device
    x = images[picks].to(device)  # (8, C, H, W)
    try:
        layer = cam_layer(model, x[:1])
    except ValueError:  # no layer keeps a spatial map: nothing for Grad-CAM to show
        return None
    cams = GradCAM(model, layer)(x)  # (B, H, W), each predicted class
    with torch.no_grad():
        probs = model.eval()(x).softmax(1).cpu()  # (B, num_classes)
    titles = [
        f"{classes[int(p.argmax())]} ({float(p.max()):.2f}) / {classes[int(y)]}"
        for p, y in zip(probs, targets[picks], strict=True)
    ]
    return cam_overlay_figure(x.cpu(), cams.cpu(), titles, mean=setup.mean, std=setup.std)


def two_feature_boundary(
    ctx: RunContext,
    train: ArrayDataset,
    test: ArrayDataset,
    *,
    features: tuple[int, int],
    names: list[str],
    num_outputs: int,
    loss_fn: Callable[[Tensor, Tensor], Tensor],
    steps: int = 300,
) -> float:
    """Fit the same linear model on two features only (full batch, Adam, lr 0.05), save its
    decision regions over the test points, return its test accuracy.

    ``num_outputs=1``: one logit, ``loss_fn`` takes float targets (B, 1) (logistic regression);
    else one logit per class and integer targets (softmax regression).
    """
    from torchdojo.viz import decision_boundary_figure

    cols = list(features)
    if len(set(cols)) != 2 or not all(0 <= c < len(names) for c in cols):
        raise ValueError(
            f"plot_features={features} must be two different feature indices in "
            f"0..{len(names) - 1} ({', '.join(names)})"
        )
    x_tr, x_te = train.x[:, cols], test.x[:, cols]
    target = train.y.float().unsqueeze(1) if num_outputs == 1 else train.y
    model = nn.Linear(2, num_outputs)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(steps):
        optimizer.zero_grad()
        loss_fn(model(x_tr), target).backward()
        optimizer.step()
    with torch.no_grad():
        logits = model(x_te)  # (B, num_outputs)
        preds = (logits[:, 0] > 0).long() if num_outputs == 1 else logits.argmax(1)
        probs: Callable[[Any], Tensor] = (
            (lambda p: torch.sigmoid(model(torch.from_numpy(p)))[:, 0])
            if num_outputs == 1
            else (lambda p: model(torch.from_numpy(p)))
        )
        fig = decision_boundary_figure(
            probs, x_te.numpy(), test.y.numpy(), class_names=train.classes
        )
    ax = fig.axes[0]
    ax.set(xlabel=f"{names[cols[0]]} (std.)", ylabel=f"{names[cols[1]]} (std.)")
    ctx.save_figure(fig, "decision_boundary")
    return float((preds == test.y).float().mean())


__all__ = [
    "accuracy",
    "auto_epochs",
    "classifier_metrics",
    "finish_classifier",
    "load_split_pair",
    "model_spec",
    "predict_all",
    "report_classifier",
    "TensorLoaders",
    "tensor_loaders",
    "two_feature_boundary",
]
