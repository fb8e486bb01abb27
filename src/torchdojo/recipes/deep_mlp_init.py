"""A 20-layer MLP under different inits, activations and BatchNorm: who keeps the signal alive.

Seeds: 002 §4 (init, vanishing gradients, BatchNorm), 000 ch5-6. Lesson:
lessons/07_training_stability.py. Choose ``--set init=kaiming|xavier|normal``,
``--set activation=relu|tanh|sigmoid`` and ``--set batchnorm=true|false``. The recipe records
each layer's activation std and weight-gradient norm on a fixed batch at init and after
training, plots both, and reports the last/first activation-std ratio (and the first/last
gradient-norm ratio, tiny when gradients vanish): near 1 means the signal
survives the depth (Kaiming + ReLU, Xavier + tanh, or any init with BatchNorm); near 0 means it
dies (``normal`` with std 0.01, or sigmoid), and the test accuracy says what that costs.
Measured on MNIST, 3 epochs: relu + kaiming 96.5 %; sigmoid + xavier 10.0 % (the first
layer's gradient is 1e-13 of the last's); the same sigmoid net with BatchNorm 96.6 %.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from torchdojo.data import ArrayDataset
from torchdojo.engine import TensorLoader
from torchdojo.engine.diagnose import LayerStats, layer_statistics
from torchdojo.models.mlp import deep_mlp
from torchdojo.runs import Expected, Recipe, Setup
from torchdojo.runs.classify import accuracy, finish_classifier, load_split_pair, tensor_loaders
from torchdojo.runs.context import RunContext


@dataclass(frozen=True)
class Config:
    dataset: str = "mnist"  # mnist | fashion-mnist | digits | mnist-tiny
    init: Literal["kaiming", "xavier", "normal"] = "kaiming"
    init_std: float = 0.01  # std of the "normal" init
    activation: Literal["relu", "tanh", "sigmoid"] = "relu"
    batchnorm: bool = False
    depth: int = 20  # hidden layers
    width: int = 128
    epochs: int = 3
    batch_size: int = 128
    lr: float = 0.002  # peak LR of the one-cycle schedule
    probe_samples: int = 512  # the fixed batch the statistics are measured on
    seed: int = 0


def setup(cfg: Config, ctx: RunContext) -> Setup:
    train, test = load_split_pair(ctx, cfg.dataset, seed=cfg.seed)
    loaders = tensor_loaders(train, test, batch_size=cfg.batch_size, seed=cfg.seed)
    torch.manual_seed(cfg.seed)  # the same init whatever loading the data drew
    model = deep_mlp(
        in_features=train.x[0].numel(),
        num_classes=len(train.classes),
        width=cfg.width,
        depth=cfg.depth,
        activation=cfg.activation,
        batchnorm=cfg.batchnorm,
        init=cfg.init,
        init_std=cfg.init_std,
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, betas=(0.9, 0.99))
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
        mean=train.mean,
        std=train.std,
    )


def run(cfg: Config, ctx: RunContext) -> dict[str, float]:
    task = setup(cfg, ctx)
    x, y = probe_batch(task, cfg.probe_samples, seed=cfg.seed)  # (B, 1, H, W), (B,)
    at_init = _activations_and_grads(task.model, x, y)
    metrics = {"acc": accuracy(len(task.classes))}
    history = ctx.fit(task, metrics=metrics, seed=cfg.seed, monitor="val_acc")
    final = finish_classifier(ctx, task, history)
    trained = _activations_and_grads(task.model.cpu(), x, y)
    _plot(ctx, at_init, trained, cfg)
    return {
        "test_acc": final["test_acc"],
        "act_std_ratio_init": _last_over_first(at_init[0]),
        "act_std_ratio_trained": _last_over_first(trained[0]),
        "grad_ratio_first_last_init": _first_over_last(at_init[1]),
        "train_time": final["train_time"],
    }


def probe_batch(task: Setup, n: int, *, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` training images drawn with ``seed``, normalized as the training batches are."""
    loader = task.loaders.train
    assert isinstance(loader, TensorLoader)  # built by tensor_loaders
    probe = ArrayDataset(loader.x, loader.y).subset(n, seed=seed)
    return (loader.transform(probe.x) if loader.transform else probe.x), probe.y


def _activations_and_grads(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor
) -> tuple[list[float], list[float]]:
    """Std of each hidden activation and norm of each Linear weight gradient (input side first)."""
    model.train()  # BatchNorm normalizes with the batch, as in training
    stats: list[LayerStats] = layer_statistics(model, x, y, nn.CrossEntropyLoss())
    model.zero_grad(set_to_none=True)
    acts = [s.act_std for s in stats if s.kind in ("ReLU", "Tanh", "Sigmoid")]
    grads = [s.grad_norm or 0.0 for s in stats if s.kind == "Linear"]
    return acts, grads


def _last_over_first(values: list[float]) -> float:
    return values[-1] / values[0] if values and values[0] > 0 else float("nan")


def _first_over_last(values: list[float]) -> float:
    return values[0] / values[-1] if values and values[-1] > 0 else float("nan")


def _plot(
    ctx: RunContext,
    at_init: tuple[list[float], list[float]],
    trained: tuple[list[float], list[float]],
    cfg: Config,
) -> None:
    from torchdojo.viz.diagnostics import layer_profile_figure

    variant = f"{cfg.activation}, {cfg.init} init, batchnorm={cfg.batchnorm}"
    for i, (name, ylabel) in enumerate(
        [("activation_std", "activation std"), ("gradient_norm", "weight-gradient norm")]
    ):
        series = {"at init": at_init[i], "after training": trained[i]}
        fig = layer_profile_figure(series, ylabel=ylabel, title=f"{ylabel} per layer\n{variant}")
        ctx.save_figure(fig, name)


RECIPE = Recipe(
    config=Config,
    setup=setup,
    run=run,
    smoke=Config(dataset="digits", depth=6, width=32, epochs=1, probe_samples=128),
    cpu_minutes=5.5,  # 332 s, `torchdojo run deep-mlp-init` with MNIST
    expected={
        "test_acc": Expected(
            0.95,
            data="MNIST (official 60k/10k split), kaiming + relu, no BatchNorm",
            measured_by="torchdojo run deep-mlp-init (data root with MNIST: --data-dir or "
            "$TORCHDOJO_DATA)",
        ),
    },
    lesson="lessons/07_training_stability.py",
)
