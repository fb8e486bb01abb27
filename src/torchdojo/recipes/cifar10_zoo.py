"""CIFAR-10 model zoo: LeNet-5, VGG-11, ResNet-18, MobileNetV2, ViT-Tiny under equal budgets.

Seeds: "classic CNNs and model evaluation" chapters. Lesson: accuracy is bought with FLOPs and
time; on a CPU, compare models at an equal time budget and read parameters, FLOPs and samples/s
beside the accuracy. Each model trains with the same data pipeline (in-memory uint8, batch-wise
translate + flip), AdamW, label smoothing and a triangular LR schedule that ends with its budget.
Writes ``zoo.md`` (a markdown table) and a figure. ``--resume`` is not supported (one run per
model inside one run folder); use ``--set models=...`` to train a subset.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter
from torch import nn

import torchdojo.data.cifar10  # noqa: F401 - registers cifar10 / cifar10-tiny
from torchdojo.data import ArrayDataset, Normalize
from torchdojo.engine import Loaders, ProgressBar, TensorLoader, Trainer, TrainerConfig
from torchdojo.models import ModelSpec, create_model
from torchdojo.models.summary import count_flops, count_params
from torchdojo.recipes import _cifar
from torchdojo.recipes._api import Expected, Recipe
from torchdojo.recipes._common import accuracy, load_split_pair
from torchdojo.recipes._run import RunContext
from torchdojo.utils.io import atomic_write_text

MODEL_KWARGS: dict[str, dict[str, Any]] = {
    "lenet5": {"in_channels": 3, "padding": 0, "activation": "relu"},  # 32x32 as in the paper
    "mnist-cnn": {"in_channels": 3, "width": 8},
}


@dataclass(frozen=True)
class Config:
    dataset: str = "cifar10"  # cifar10 | cifar10-tiny
    models: tuple[str, ...] = ("lenet5", "vgg11", "resnet18", "mobilenet-v2", "vit-tiny")
    epochs: int = 3  # upper bound per model; the budget usually ends training first
    budget_per_model: float = 300.0  # seconds of training each (--time-budget T gives T / models)
    batch_size: int = 128
    lr: float = 2e-3
    weight_decay: float = 0.05
    label_smoothing: float = 0.1
    threads: int = 2
    max_train_samples: int | None = None
    max_test_samples: int | None = None  # a seeded subset makes big models' evaluation cheaper
    seed: int = 0


def run(cfg: Config, ctx: RunContext) -> dict[str, float]:
    train, test = load_split_pair(
        ctx, cfg.dataset, max_train=cfg.max_train_samples, max_test=cfg.max_test_samples,
        seed=cfg.seed,
    )  # fmt: skip
    budget = ctx.options.time_budget / len(cfg.models) if ctx.options.time_budget else None
    rows = [
        train_one(cfg, ctx, name, train, test, budget=budget or cfg.budget_per_model)
        for name in cfg.models
    ]
    table = markdown_table(rows)
    atomic_write_text(ctx.run_dir / "zoo.md", table)
    ctx.echo(table)
    ctx.save_figure(zoo_figure(rows), "zoo")
    metrics = {f"{r['model']}_test_acc": r["test_acc"] for r in rows}
    return {**metrics, "best_test_acc": max(r["test_acc"] for r in rows)}


def train_one(
    cfg: Config, ctx: RunContext, name: str, train: ArrayDataset, test: ArrayDataset, *,
    budget: float,
) -> dict[str, Any]:  # fmt: skip
    """Train model ``name`` for at most ``budget`` seconds; its row of the table."""
    kwargs = {**MODEL_KWARGS.get(name, {}), "num_classes": len(train.classes)}
    model = create_model(name, **kwargs)
    params, flops = count_params(model), count_flops(model, (1, *train.x.shape[1:]))
    normalize = Normalize(train.mean, train.std)
    loader = _cifar.AugmentedLoader(
        train.x, train.y, batch_size=cfg.batch_size, normalize=normalize, seed=cfg.seed
    )
    test_loader = TensorLoader(test.x, test.y, batch_size=1000, shuffle=False, transform=normalize)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    trainer = Trainer(
        TrainerConfig(
            epochs=cfg.epochs, time_budget=budget, seed=cfg.seed, channels_last=True,
            num_threads=ctx.options.threads or cfg.threads, log_every=20,
        ),
        callbacks=[ProgressBar(ctx.console)] if ctx.options.progress else [],
        metrics={"acc": accuracy(len(train.classes))},
    )  # fmt: skip
    schedule = _cifar.TriangularSchedule(
        optimizer, total_steps=cfg.epochs * len(loader), clock=lambda: trainer.state.train_time,
        time_budget=budget, start=0.1, end=0.0,
    )  # fmt: skip
    loss_fn = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
    history = trainer.fit(model, Loaders(loader, test_loader), loss_fn, optimizer, schedule)
    test_acc = history.last()["val_acc"]
    train_time = trainer.state.train_time
    ctx.echo(f"{name}: test_acc {float(test_acc):.4f} after {train_time:.0f} s")
    if name == cfg.models[-1]:
        shape = list(train.x.shape[1:])
        spec = ModelSpec(name, kwargs, shape, list(train.mean), list(train.std), train.classes)
        ctx.save_model(model, spec)
    return {
        "model": name,
        "test_acc": float(test_acc),
        "params": params,
        "gflops": flops / 1e9,
        "samples_per_s": trainer.state.step * cfg.batch_size / max(train_time, 1e-9),
        "epochs": trainer.state.step / len(loader),
        "train_time": train_time,
    }


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """The zoo as a markdown table, one row per model."""
    lines = [
        "| model | test acc | params (M) | GFLOPs/image | train samples/s | epochs | s |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['test_acc']:.4f} | {r['params'] / 1e6:.2f} | "
            f"{r['gflops']:.3f} | {r['samples_per_s']:.0f} | {r['epochs']:.2f} | "
            f"{r['train_time']:.0f} |"
        )
    return "\n".join(lines) + "\n"


def zoo_figure(rows: list[dict[str, Any]]) -> Figure:
    """Accuracy, throughput, and accuracy against FLOPs, side by side."""
    fig = Figure(figsize=(13, 4), layout="constrained")
    acc_ax, speed_ax, flops_ax = fig.subplots(1, 3)
    names = [r["model"] for r in rows]
    acc_ax.bar(names, [r["test_acc"] for r in rows], color="tab:blue")
    acc_ax.set(title="test accuracy (equal time budget)", ylim=(0, 1))
    speed_ax.bar(names, [r["samples_per_s"] for r in rows], color="tab:orange")
    speed_ax.set(title="training samples / s (CPU)", yscale="log")
    for ax in (acc_ax, speed_ax):
        ax.tick_params(axis="x", rotation=30)
    for r in rows:
        flops_ax.scatter(r["gflops"], r["test_acc"], s=20 + r["params"] / 5e4)
        flops_ax.annotate(r["model"], (r["gflops"], r["test_acc"]), fontsize=8)
    flops_ax.set(title="accuracy vs GFLOPs (size = params)", xscale="log", xlabel="GFLOPs/image")
    flops_ax.xaxis.set_minor_formatter(NullFormatter())
    return fig


RECIPE = Recipe(
    name="cifar10-zoo",
    description="CIFAR-10 model zoo: five classic nets under equal CPU time budgets, one table.",
    config=Config,
    run=run,
    smoke=Config(
        dataset="cifar10-tiny",
        models=("lenet5", "mnist-cnn"),
        epochs=2,
        batch_size=64,
        budget_per_model=60.0,
        threads=1,
    ),  # fmt: skip
    expected={
        "best_test_acc": Expected(
            # measured with 180 s per model on a quiet 2-core CPU: lenet5 0.533 (3 epochs in
            # 12 s), vgg11 0.669, resnet18 0.499, mobilenet-v2 0.434, vit-tiny 0.365
            0.60,
            data="CIFAR-10 JPEG re-encoded (shared cifar10-jpg.tar.gz), 50k / 2k-test subset",
            measured_by="torchdojo run cifar10-zoo --time-budget 900 --set max_test_samples=2000",
        )
    },
    lesson="lessons/12_cnn_zoo.py",
)
