"""CIFAR-10 model zoo: five classic nets under equal CPU time budgets, one table.

Seeds: "classic CNNs and model evaluation" chapters. Lesson: accuracy is bought with FLOPs and
time; on a CPU, compare models at an equal time budget and read parameters, FLOPs and samples/s
beside the accuracy. Each model trains with the same data pipeline (in-memory uint8, batch-wise
translate + flip), AdamW, label smoothing and a triangular LR schedule that ends with its budget.
Writes ``zoo.md`` (a markdown table) and figures. Each model has its own trainer, checkpoints
(``checkpoints/<model>/``) and curves (``<model>/metrics.jsonl``); ``torchdojo resume`` keeps the
models a run finished (``zoo_rows.json``) and resumes the one it was training. Use
``--set models=...`` to train a subset.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter
from torch import nn

import torchdojo.data.cifar10  # noqa: F401 - registers cifar10 / cifar10-tiny
from torchdojo.data import ArrayDataset, Normalize
from torchdojo.engine import CheckpointManager, Loaders, TensorLoader
from torchdojo.engine.augment import AugmentedLoader
from torchdojo.engine.schedules import TriangularSchedule
from torchdojo.models import create_model
from torchdojo.models.summary import count_flops, count_params
from torchdojo.runs import Expected, Recipe, Setup
from torchdojo.runs.classify import accuracy, load_split_pair, model_spec, report_classifier
from torchdojo.runs.context import RunContext
from torchdojo.utils.io import atomic_write_json, atomic_write_text
from torchdojo.utils.seed import set_rng_state

MODEL_KWARGS: dict[str, dict[str, Any]] = {
    "lenet5": {"in_channels": 3, "padding": 0, "activation": "relu"},  # 32x32 as in the paper
    "mnist-cnn": {"in_channels": 3, "width": 8},
}
ROWS_FILE = "zoo_rows.json"  # the finished models' rows: what a resumed run keeps


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


def setup(cfg: Config, ctx: RunContext) -> Setup:
    """The first model's training as ``run`` does it (what diagnose, lr-find, show-batch use)."""
    train, test = load_data(cfg, ctx)
    return model_setup(cfg, ctx, cfg.models[0], train, test)


def load_data(cfg: Config, ctx: RunContext) -> tuple[ArrayDataset, ArrayDataset]:
    return load_split_pair(
        ctx,
        cfg.dataset,
        max_train=cfg.max_train_samples,
        max_test=cfg.max_test_samples,
        seed=cfg.seed,
    )


def model_setup(
    cfg: Config, ctx: RunContext, name: str, train: ArrayDataset, test: ArrayDataset
) -> Setup:
    """Model ``name`` with the data, loss, optimizer and schedule every model of the zoo shares."""
    kwargs = {**MODEL_KWARGS.get(name, {}), "num_classes": len(train.classes)}
    model = create_model(name, **kwargs)
    normalize = Normalize(train.mean, train.std)
    train_loader = AugmentedLoader(
        train.x, train.y, batch_size=cfg.batch_size, normalize=normalize, seed=cfg.seed
    )
    test_loader = TensorLoader(test.x, test.y, batch_size=1000, shuffle=False, transform=normalize)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = TriangularSchedule(  # its clock is the trainer's, set in train_one
        optimizer,
        total_steps=cfg.epochs * len(train_loader),
        time_budget=model_budget(cfg, ctx),
        start=0.1,
        end=0.0,
    )
    return Setup(
        model,
        Loaders(train_loader, test_loader),
        nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing),
        optimizer,
        scheduler,
        epochs=cfg.epochs,
        classes=train.classes,
        spec=model_spec(name, kwargs, train),
        mean=train.mean,
        std=train.std,
    )


def model_budget(cfg: Config, ctx: RunContext) -> float:
    """Seconds of training per model: ``--time-budget`` shared equally, else the config's."""
    if ctx.options.time_budget:
        return ctx.options.time_budget / len(cfg.models)
    return cfg.budget_per_model


def run(cfg: Config, ctx: RunContext) -> dict[str, float]:
    train, test = load_data(cfg, ctx)
    rows: list[dict[str, Any]] = read_rows(ctx.run_dir) if ctx.resume else []
    finished = {row["model"] for row in rows}
    for i, name in enumerate(cfg.models):
        if name in finished:
            continue
        if i > 0 and cfg.models[i - 1] in finished:  # the first model this resumed run trains
            restore_rng_after(ctx, cfg.models[i - 1])
        rows.append(train_one(cfg, ctx, name, train, test))
        atomic_write_json(ctx.run_dir / ROWS_FILE, rows)
    table = markdown_table(rows)
    atomic_write_text(ctx.run_dir / "zoo.md", table)
    ctx.echo(table)
    ctx.save_figure(zoo_figure(rows), "zoo")
    ctx.save_figure(curves_figure(ctx.run_dir, [row["model"] for row in rows]), "zoo_curves")
    metrics = {f"{row['model']}_test_acc": row["test_acc"] for row in rows}
    return {**metrics, "best_test_acc": max(row["test_acc"] for row in rows)}


def train_one(
    cfg: Config, ctx: RunContext, name: str, train: ArrayDataset, test: ArrayDataset
) -> dict[str, Any]:
    """Train model ``name`` for at most its budget (from its checkpoint on resume); its row."""
    task = model_setup(cfg, ctx, name, train, test)
    params, flops = count_params(task.model), count_flops(task.model, (1, *train.x.shape[1:]))
    checkpoints, log_dir = ctx.run_dir / "checkpoints" / name, ctx.run_dir / name
    resume = checkpoints if ctx.resume and CheckpointManager(checkpoints).step_files() else None
    if resume is None:
        (log_dir / "metrics.jsonl").unlink(missing_ok=True)  # rows of a start killed early
    trainer = ctx.trainer(
        metrics={"acc": accuracy(len(task.classes))},
        checkpoint_dir=checkpoints,
        log_dir=log_dir,
        epochs=task.epochs,
        seed=cfg.seed,
        channels_last=True,
        num_threads=cfg.threads,
        log_every=20,
        time_budget=model_budget(cfg, ctx),  # --time-budget is the whole zoo's, shared
    )
    task.scheduler.clock = lambda: trainer.state.train_time
    history = trainer.fit(
        task.model, task.loaders, task.loss_fn, task.optimizer, task.scheduler, resume=resume
    )
    test_acc, train_time = float(history.last()["val_acc"]), trainer.state.train_time
    ctx.echo(f"{name}: test_acc {test_acc:.4f} after {train_time:.0f} s")
    if name == cfg.models[-1] and task.spec is not None:  # the saved model gets the report
        ctx.save_model(task.model, task.spec)  # pictures: confusion matrix, mistakes, Grad-CAM
        report_classifier(ctx, task)
    steps, steps_per_epoch = trainer.state.step, trainer.num_train_batches or 1
    return {
        "model": name,
        "test_acc": test_acc,
        "params": params,
        "gflops": flops / 1e9,
        "samples_per_s": steps * cfg.batch_size / max(train_time, 1e-9),
        "epochs": steps / steps_per_epoch,
        "train_time": train_time,
    }


def read_rows(run_dir: Path) -> list[dict[str, Any]]:
    """The rows of the models a run finished (empty when none has)."""
    path = run_dir / ROWS_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else []


def restore_rng_after(ctx: RunContext, name: str) -> None:
    """Put the global RNG where model ``name``'s training left it (its last checkpoint), so the
    next model is initialized as in an uninterrupted run."""
    checkpoint = CheckpointManager(ctx.run_dir / "checkpoints" / name).load_latest()
    if checkpoint is not None:
        set_rng_state(checkpoint.state["rng"])


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


def curves_figure(run_dir: Path, names: list[str]) -> Figure:
    """Each model's training loss and test accuracy by step, from ``<model>/metrics.jsonl``."""
    fig = Figure(figsize=(11, 4), layout="constrained")
    loss_ax, acc_ax = fig.subplots(1, 2)
    for name in names:
        path = run_dir / name / "metrics.jsonl"
        lines = path.read_text(encoding="utf-8").splitlines() if path.is_file() else []
        rows = [json.loads(line) for line in lines if line]
        for ax, split, key in ((loss_ax, "train", "loss"), (acc_ax, "val", "acc")):
            points = [(r["step"], r[key]) for r in rows if r["split"] == split and key in r]
            ax.plot(*zip(*points, strict=True), marker="o" if split == "val" else None, label=name)
    loss_ax.set(title="training loss", xlabel="optimizer step")
    acc_ax.set(title="test accuracy", xlabel="optimizer step", ylim=(0, 1))
    acc_ax.legend(fontsize=8)
    return fig


RECIPE = Recipe(
    config=Config,
    setup=setup,
    run=run,
    smoke=Config(
        dataset="cifar10-tiny",
        models=("lenet5", "mnist-cnn"),
        epochs=2,
        batch_size=64,
        budget_per_model=60.0,
        threads=1,
    ),
    cpu_minutes=30,  # the --time-budget 900 of its command, on 2 threads
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
