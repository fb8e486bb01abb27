"""MNIST-1D paper table: logistic ~32 %, MLP ~68 %, CNN ~94 %, GRU ~91 %, on a CPU in minutes.

Seeds: the MNIST-1D paper (Greydanus & Kobak, 2020, https://arxiv.org/abs/2011.14439), its
baselines and training setup (Adam, lr 0.01, batch 100, 6,000 steps, constant LR).
Measured here (seed 0): logistic 33.0 %, MLP 66.5 %, GRU 92.1 %, CNN 91.4 % (peak 92.4 %).
Lesson: spatial priors matter. The same 40 points give 32 % to a linear model, 68 % to an MLP
and 94 % to a 5 k-parameter CNN; shuffling the points hurts only the CNN and GRU (the paper's shuffled-sequence experiment).
``--set model=all`` (the default) trains the four and writes ``table.md``; ``model=cnn`` one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

import torchdojo.data.mnist1d  # noqa: F401  (registers mnist1d, mnist1d-tiny)
from torchdojo.data import ArrayDataset
from torchdojo.models import create_model
from torchdojo.runs import Expected, Recipe, Setup
from torchdojo.runs.classify import (
    accuracy,
    classifier_metrics,
    finish_classifier,
    load_split_pair,
    model_spec,
    tensor_loaders,
)
from torchdojo.runs.context import RunContext
from torchdojo.utils.io import atomic_write_text

MODELS = {  # paper name -> registered model
    "logistic": "mnist1d-logistic",
    "mlp": "mnist1d-mlp",
    "gru": "mnist1d-gru",
    "cnn": "mnist1d-convbase",
}
PAPER = {"logistic": 0.32, "mlp": 0.68, "cnn": 0.94, "gru": 0.91}


@dataclass(frozen=True)
class Config:
    model: Literal["all", "logistic", "mlp", "cnn", "gru"] = "all"
    dataset: str = "mnist1d"  # mnist1d | mnist1d-tiny
    epochs: int = 150  # 150 x 40 batches = the paper's 6,000 steps
    batch_size: int = 100
    lr: float = 0.01
    seed: int = 0


def setup(cfg: Config, ctx: RunContext) -> Setup:
    """The model ``cfg.model`` names (for ``"all"``: the first of :data:`MODELS`)."""
    train, test = load_split_pair(ctx, cfg.dataset)
    name = next(iter(MODELS)) if cfg.model == "all" else cfg.model
    return paper_setup(cfg, name, train, test)


def paper_setup(cfg: Config, name: str, train: ArrayDataset, test: ArrayDataset) -> Setup:
    """The paper's training of baseline ``name``: Adam at a constant LR, plain cross-entropy."""
    loaders = tensor_loaders(train, test, batch_size=cfg.batch_size, seed=cfg.seed)
    model = create_model(MODELS[name])
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    return Setup(
        model,
        loaders,
        nn.CrossEntropyLoss(),
        optimizer,
        scheduler=None,  # the paper keeps the LR constant
        epochs=cfg.epochs,
        classes=train.classes,
        spec=model_spec(MODELS[name], {}, train),
    )


def run(cfg: Config, ctx: RunContext) -> dict[str, float]:
    train, test = load_split_pair(ctx, cfg.dataset)
    names: list[str] = list(MODELS) if cfg.model == "all" else [cfg.model]
    metrics: dict[str, float] = {}
    for name in names:  # each model starts from the RNG state the previous one left
        ctx.echo(f"[bold]{name}[/bold]: {MODELS[name]}")
        task = paper_setup(cfg, name, train, test)
        history = ctx.fit(
            task, metrics={"acc": accuracy(len(task.classes))}, seed=cfg.seed, monitor="val_acc"
        )
        last = name == names[-1]  # the one saved and reported (the CNN for "all")
        result = finish_classifier(ctx, task, history) if last else classifier_metrics(history)
        metrics[f"test_acc_{name}"] = result["test_acc"]
        metrics[f"train_time_{name}"] = result["train_time"]
    if len(names) == 1:
        metrics["test_acc"] = metrics[f"test_acc_{names[0]}"]
    table = paper_table(metrics, names)
    atomic_write_text(ctx.run_dir / "table.md", table)
    ctx.echo(table)
    return metrics


def paper_table(metrics: dict[str, float], names: list[str]) -> str:
    """A Markdown table: model, the paper's accuracy, this run's, and its training time."""
    rows = ["| model | paper | this run | train time (s) |", "|---|---|---|---|"]
    for name in names:
        acc, secs = metrics[f"test_acc_{name}"], metrics[f"train_time_{name}"]
        rows.append(f"| {name} | {PAPER[name]:.0%} | {acc:.1%} | {secs:.1f} |")
    return "\n".join(rows) + "\n"


def _floor(value: float) -> Expected:
    return Expected(
        value, data="MNIST-1D paper set (4,000/1,000)", measured_by="torchdojo run mnist1d-paper"
    )


RECIPE = Recipe(
    config=Config,
    setup=setup,
    run=run,
    smoke=Config(dataset="mnist1d-tiny", epochs=2),
    cpu_minutes=3.2,  # 190 s, `torchdojo run mnist1d-paper`, all four models
    expected={
        "test_acc_logistic": _floor(0.30),
        "test_acc_mlp": _floor(0.62),
        "test_acc_cnn": _floor(0.88),
        "test_acc_gru": _floor(0.88),
    },
    lesson="",
)
