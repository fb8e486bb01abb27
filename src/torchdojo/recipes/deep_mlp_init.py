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

from torchdojo.data import Normalize
from torchdojo.engine.diagnose import LayerStats, layer_statistics
from torchdojo.recipes._api import Expected, Recipe
from torchdojo.recipes._common import load_split_pair
from torchdojo.recipes._fundamentals import configured_deep_mlp, fit_with_transform
from torchdojo.recipes._run import RunContext


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


def run(cfg: Config, ctx: RunContext) -> dict[str, float]:
    train, test = load_split_pair(ctx, cfg.dataset, seed=cfg.seed)
    torch.manual_seed(cfg.seed)
    model = configured_deep_mlp(cfg, train)
    probe = train.subset(cfg.probe_samples, seed=cfg.seed)
    x = Normalize(probe.mean, probe.std)(probe.x)  # (B, 1, H, W)
    at_init = _activations_and_grads(model, x, probe.y)
    metrics = fit_with_transform(
        ctx, model, None, train, test, train_transform=None, epochs=cfg.epochs,
        batch_size=cfg.batch_size, lr=cfg.lr, seed=cfg.seed,
    )  # fmt: skip
    trained = _activations_and_grads(model.cpu(), x, probe.y)
    _plot(ctx, at_init, trained, cfg)
    return {
        "test_acc": metrics["test_acc"],
        "act_std_ratio_init": _last_over_first(at_init[0]),
        "act_std_ratio_trained": _last_over_first(trained[0]),
        "grad_ratio_first_last_init": _first_over_last(at_init[1]),
        "train_time": metrics["train_time"],
    }


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

    setup = f"{cfg.activation}, {cfg.init} init, batchnorm={cfg.batchnorm}"
    for i, (name, ylabel) in enumerate(
        [("activation_std", "activation std"), ("gradient_norm", "weight-gradient norm")]
    ):
        series = {"at init": at_init[i], "after training": trained[i]}
        fig = layer_profile_figure(series, ylabel=ylabel, title=f"{ylabel} per layer\n{setup}")
        ctx.save_figure(fig, name)


RECIPE = Recipe(
    name="deep-mlp-init",
    description="A 20-layer MLP: init (kaiming/xavier/normal), activation and BatchNorm compared.",
    config=Config,
    run=run,
    smoke=Config(dataset="digits", depth=6, width=32, epochs=1, probe_samples=128),
    expected={
        "test_acc": Expected(
            0.95,
            data="MNIST (official 60k/10k split), kaiming + relu, no BatchNorm",
            measured_by="TORCHDOJO_DATA=/work/shared/data torchdojo run deep-mlp-init",
        ),
    },
    lesson="lessons/07_training_stability.py",
)
