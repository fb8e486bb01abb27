"""Linear regression by gradient descent written by hand, next to nn.Linear + SGD: same answer.

Seeds: 001 ch3-5 (gradient descent, linear regression), 002 §1 (least squares), 004 ch5-6.
Lesson: lessons/04_regression_classification.py. The data are synthetic with known weights, so the recipe
checks three answers against each other: the closed-form least squares, a hand-written
gradient-descent loop (gradients from the formula, no autograd), and the engine's Trainer
with ``nn.Linear`` + SGD.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torchmetrics import MeanSquaredError, R2Score

from torchdojo.engine import Loaders, TensorLoader
from torchdojo.runs import Expected, Recipe, Setup
from torchdojo.runs.context import RunContext


@dataclass(frozen=True)
class Config:
    samples: int = 1000
    features: int = 3
    noise: float = 0.5
    lr: float = 0.1
    epochs: int = 200  # full-batch steps
    seed: int = 0


def make_data(cfg: Config) -> tuple[Tensor, Tensor, Tensor]:
    """x (N, F), y (N, 1) = x @ w_true + 1 + noise, and w_true (F,)."""
    g = torch.Generator().manual_seed(cfg.seed)
    x = torch.randn(cfg.samples, cfg.features, generator=g)
    w_true = torch.arange(1, cfg.features + 1, dtype=torch.float32) * torch.tensor(
        [(-1.0) ** i for i in range(cfg.features)]
    )
    y = x @ w_true + 1.0 + cfg.noise * torch.randn(cfg.samples, generator=g)
    return x, y.unsqueeze(1), w_true


def gradient_descent_by_hand(x: Tensor, y: Tensor, *, lr: float, steps: int) -> Tensor:
    """Minimize the mean squared error with dL/dw = 2/N X^T (Xw + b - y); returns [w..., b]."""
    n, f = x.shape
    w, b = torch.zeros(f, 1), torch.zeros(1)
    for _ in range(steps):
        residual = x @ w + b - y  # (N, 1)
        w = w - lr * (2 / n) * x.T @ residual  # (F, 1)
        b = b - lr * (2 / n) * residual.sum(0)
    return torch.cat([w.flatten(), b])


def least_squares(x: Tensor, y: Tensor) -> Tensor:
    """The closed form: solve [X 1] theta = y in the least-squares sense; returns [w..., b]."""
    design = torch.cat([x, torch.ones(len(x), 1)], dim=1)
    return torch.linalg.lstsq(design, y).solution.flatten()


def setup(cfg: Config, ctx: RunContext) -> Setup:
    x, y, _ = make_data(cfg)
    ctx.note_data(f"synthetic linear data ({cfg.samples} x {cfg.features}, noise {cfg.noise})")
    loader = TensorLoader(x, y, batch_size=cfg.samples, shuffle=False)  # full batch
    model = nn.Linear(cfg.features, 1)
    nn.init.zeros_(model.weight)  # the same start as the hand-written loop
    nn.init.zeros_(model.bias)
    optimizer = torch.optim.SGD(model.parameters(), lr=cfg.lr)
    return Setup(model, Loaders(loader, loader), nn.MSELoss(), optimizer, epochs=cfg.epochs)


def run(cfg: Config, ctx: RunContext) -> dict[str, float]:
    task = setup(cfg, ctx)
    x, y, _ = make_data(cfg)
    by_hand = gradient_descent_by_hand(x, y, lr=cfg.lr, steps=cfg.epochs)
    history = ctx.fit(
        task,
        metrics={"mse": MeanSquaredError(), "r2": R2Score()},
        seed=cfg.seed,
        log_every=10,
        monitor="val_r2",
    )
    model = task.model
    assert isinstance(model, nn.Linear)
    with torch.no_grad():
        by_torch = torch.cat([model.weight.flatten(), model.bias]).cpu()
    closed = least_squares(x, y)
    return {
        "r2": history.last()["val_r2"],
        "mse": history.last()["val_mse"],
        "hand_vs_torch_max_diff": float((by_hand - by_torch).abs().max()),
        "torch_vs_least_squares_max_diff": float((by_torch - closed).abs().max()),
    }


RECIPE = Recipe(
    config=Config,
    setup=setup,
    run=run,
    smoke=Config(samples=200, epochs=50),
    cpu_minutes=0.039,  # 2.4 s, `torchdojo run linear-regression`
    expected={
        "r2": Expected(
            0.95, data="synthetic, noise 0.5", measured_by="torchdojo run linear-regression"
        ),
        "hand_vs_torch_max_diff": Expected(
            1e-4, data="synthetic", mode="min", measured_by="torchdojo run linear-regression"
        ),
        "torch_vs_least_squares_max_diff": Expected(
            1e-3, data="synthetic", mode="min", measured_by="torchdojo run linear-regression"
        ),
    },
    lesson="lessons/04_regression_classification.py",
)
