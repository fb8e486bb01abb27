"""What the fundamentals recipes share: standardized tabular sets, a deep MLP, batch
augmentation on uint8 tensors, a classifier fit with a training transform, boundary plots.

Used by logistic-regression, softmax-iris, fashion-mnist-cnn, deep-mlp-init and ``diagnose``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from torchdojo.data import ArrayDataset, Normalize
from torchdojo.engine import Loaders, TensorLoader
from torchdojo.engine.optim import build_optimizer, build_scheduler
from torchdojo.models import ModelSpec
from torchdojo.nn import init_weights
from torchdojo.recipes._common import accuracy, plot_confusion
from torchdojo.recipes._run import RunContext

LossFn = Callable[[Tensor, Tensor], Tensor]
ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}


def load_tabular(
    name: str, *, test_size: float = 0.25
) -> tuple[ArrayDataset, ArrayDataset, list[str]]:
    """``"breast_cancer"``, ``"iris"`` or ``"iris-binary"`` (versicolor vs virginica) from
    scikit-learn (bundled, offline), split with a fixed seed and standardized with the training
    mean and std; returns train, test and the feature names."""
    from sklearn.datasets import load_breast_cancer, load_iris
    from sklearn.model_selection import train_test_split

    loaders = {"breast_cancer": load_breast_cancer, "iris": load_iris, "iris-binary": load_iris}
    if name not in loaders:
        raise ValueError(f"unknown tabular dataset {name!r}; choose {', '.join(loaders)}")
    bunch = loaders[name]()
    x, y, classes = bunch.data, bunch.target, [str(c) for c in bunch.target_names]
    if name == "iris-binary":  # the two classes that overlap: a real boundary to learn
        keep = y > 0
        x, y, classes = x[keep], y[keep] - 1, classes[1:]
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=test_size, random_state=0, stratify=y)
    x_tr, x_te = torch.tensor(x_tr, dtype=torch.float32), torch.tensor(x_te, dtype=torch.float32)
    mean, std = x_tr.mean(0), x_tr.std(0).clamp_min(1e-8)
    source = f"scikit-learn {name} ({len(y_tr)} train / {len(y_te)} test, standardized)"
    return (
        ArrayDataset((x_tr - mean) / std, torch.tensor(y_tr), classes, source),
        ArrayDataset((x_te - mean) / std, torch.tensor(y_te), classes, source),
        [str(f) for f in bunch.feature_names],
    )


def deep_mlp(
    *, in_features: int, num_classes: int, width: int, depth: int, activation: str, batchnorm: bool
) -> nn.Sequential:
    """Flatten, ``depth`` x (Linear [-> BatchNorm1d] -> activation), Linear head."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {', '.join(ACTIVATIONS)}, not {activation!r}")
    layers: list[nn.Module] = [nn.Flatten()]
    features = in_features
    for _ in range(depth):
        layers.append(nn.Linear(features, width, bias=not batchnorm))
        layers += [nn.BatchNorm1d(width)] if batchnorm else []
        layers.append(ACTIVATIONS[activation]())
        features = width
    layers.append(nn.Linear(features, num_classes))
    return nn.Sequential(*layers)


def configured_deep_mlp(cfg: Any, train: ArrayDataset) -> nn.Sequential:
    """deep-mlp-init's network for ``train``: ``cfg`` gives width, depth, activation, batchnorm,
    init and init_std."""
    model = deep_mlp(
        in_features=train.x[0].numel(),
        num_classes=len(train.classes),
        width=cfg.width,
        depth=cfg.depth,
        activation=cfg.activation,
        batchnorm=cfg.batchnorm,
    )
    init_weights(model, cfg.init, std=cfg.init_std)
    return model


class CropFlip:
    """Augment a uint8 image batch in torch, then normalize: a random shift of up to ``pad``
    pixels (zero padding, one offset per image) and a random horizontal flip."""

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...], *, pad: int, flip: bool):
        self.normalize, self.pad, self.flip = Normalize(mean, std), pad, flip

    def __call__(self, x: Tensor) -> Tensor:
        B, _, H, W = x.shape
        if self.flip:
            flipped = torch.rand(B, device=x.device) < 0.5
            x = torch.where(flipped.view(B, 1, 1, 1), x.flip(3), x)
        if self.pad:
            p = self.pad
            padded = F.pad(x, (p, p, p, p))  # (B, C, H + 2p, W + 2p)
            dy, dx = torch.randint(0, 2 * p + 1, (2, B, 1), device=x.device)
            rows = dy + torch.arange(H, device=x.device)  # (B, H)
            cols = dx + torch.arange(W, device=x.device)  # (B, W)
            batch = torch.arange(B, device=x.device).view(B, 1, 1)
            x = padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]]  # (B,H,W,C)
            x = x.permute(0, 3, 1, 2)  # (B, C, H, W)
        return self.normalize(x)


def fit_with_transform(
    ctx: RunContext,
    model: nn.Module,
    spec: ModelSpec | None,
    train: ArrayDataset,
    test: ArrayDataset,
    *,
    train_transform: Callable[[Tensor], Tensor] | None,
    epochs: int,
    batch_size: int,
    lr: float,
    seed: int,
    label_smoothing: float = 0.0,
    **trainer_config: Any,
) -> dict[str, float]:
    """Like ``fit_classifier`` (Adam, one-cycle) but with ``train_transform`` on training batches
    (None: normalize only); ``spec=None`` skips saving the model (an unregistered one)."""
    normalize = Normalize(test.mean, test.std) if train.x.dtype == torch.uint8 else None
    train_loader = TensorLoader(
        train.x, train.y, batch_size=batch_size, seed=seed, transform=train_transform or normalize
    )
    test_loader = TensorLoader(test.x, test.y, batch_size=1024, shuffle=False, transform=normalize)
    opt = build_optimizer("adam", model.parameters(), lr=lr, betas=(0.9, 0.99))
    sched = build_scheduler("onecycle", opt, total_steps=epochs * len(train_loader))
    trainer = ctx.trainer(
        metrics={"acc": accuracy(len(train.classes))},
        epochs=epochs,
        seed=seed,
        monitor="val_acc",
        **trainer_config,
    )
    loss_fn = nn.CrossEntropyLoss(label_smoothing=label_smoothing)
    history = trainer.fit(
        model, Loaders(train_loader, test_loader), loss_fn, opt, sched, resume=ctx.resume
    )
    last = history.last()
    if spec is not None:
        ctx.save_model(model, spec)
        plot_confusion(ctx, model, test_loader, spec.classes)
    return {
        "test_acc": last["val_acc"],
        "test_loss": last["val_loss"],
        "train_loss": last["train_loss"],
        "train_time": last["train_time"],
    }


def plot_two_feature_boundary(
    ctx: RunContext,
    train: ArrayDataset,
    test: ArrayDataset,
    *,
    features: tuple[int, int],
    names: list[str],
    num_outputs: int,
    loss_fn: LossFn,
    steps: int = 300,
) -> float:
    """Fit the same linear model on two features only (full batch, Adam), save its decision
    regions over the test points, return its test accuracy."""
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
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(steps):
        opt.zero_grad()
        loss_fn(model(x_tr), target).backward()
        opt.step()
    with torch.no_grad():
        logits = model(x_te)
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
