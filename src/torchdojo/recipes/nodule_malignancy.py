"""Benign vs malignant lung nodules from 3-D CT chips, optionally fine-tuned from the classifier.

Seeds: 004 ch14 (malignancy by fine-tuning the nodule classifier). Lesson:
lessons/27_honest_metrics.py. The chips are those of the annotated nodules only (the synthetic
twin's ``malignancy.csv``; LUNA16 itself has no malignancy: the book takes it from LIDC-IDRI,
and a LUNA16 folder needs a ``malignancy.csv`` with the same columns). Malignancy in the twin
follows a noisy logistic of size and spiculation, so no single feature decides it and the
best possible AUC is below 1. ``classifier_run=<run folder of nodule-classifier>`` starts from
that model's weights (all but the head), as the book does; the default trains from scratch.
The results table puts the model beside the diameter alone as a score (bigger = more
suspicious: the radiologist's first rule, and the floor).

Measured: not on its own. Inside ``lung-ct-end-to-end`` (fine-tuned from the measured
nodule classifier, 4 epochs of 500 chips, batch 16) the AUC on the 31 held-out nodules was
0.786 (goal 0.90 not met). ``expected`` stays empty until a run of this recipe is measured.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import torch

from torchdojo.runs import Recipe, Setup
from torchdojo.runs.context import RunContext
from torchdojo.runs.contract import Range
from torchdojo.runs.ct import operating_point, scores_at
from torchdojo.runs.lung_ct import (
    ChipSettings,
    chip_setup,
    init_from_bundle,
    load_ct_data,
    predict_chips,
    rows_table,
    train_chips,
)


@dataclass(frozen=True)
class Config:
    data: str = "synthetic"  # synthetic | a LUNA16 folder with malignancy.csv
    n_series: Annotated[int, Range(2, 1000)] = 64  # synthetic: series written (~2 nodules each)
    volume: tuple[int, int, int] = (48, 96, 96)  # synthetic: voxels (index, row, col)
    val_fraction: float = 0.25  # series held out (the classifier's split: no leak)
    chip: tuple[int, int, int] = (24, 32, 32)  # chip voxels (index, row, col)
    classifier_run: str = ""  # a nodule-classifier run folder to fine-tune from ("" = scratch)
    augment: bool = True
    samples_per_epoch: Annotated[int, Range(1)] = 500
    max_val_candidates: Annotated[int, Range(0)] = 0  # held-out chips scored (0: all)
    epochs: int = 4
    batch_size: int = 32
    lr: float = 0.001
    width: int = 8  # channels of the first conv stage (the classifier's, to fine-tune)
    seed: int = 0


def setup(cfg: Config, ctx: RunContext) -> Setup:
    data = load_ct_data(
        ctx,
        cfg.data,
        n_series=cfg.n_series,
        shape=cfg.volume,
        val_fraction=cfg.val_fraction,
        seed=cfg.seed,
    )
    settings = ChipSettings(
        chip=cfg.chip,
        width=cfg.width,
        epochs=cfg.epochs,
        batch_size=cfg.batch_size,
        lr=cfg.lr,
        augment=cfg.augment,
        samples_per_epoch=cfg.samples_per_epoch,
        max_val=cfg.max_val_candidates,
        seed=cfg.seed,
    )
    task = chip_setup(data, settings, label="malignant")
    if cfg.classifier_run:
        count = init_from_bundle(task.model, cfg.classifier_run)
        ctx.echo(f"fine-tuning: {count} tensors from {cfg.classifier_run}")
    return task


def run(cfg: Config, ctx: RunContext) -> dict[str, float]:
    task = setup(cfg, ctx)
    history = train_chips(ctx, task, seed=cfg.seed)
    assert task.spec is not None
    ctx.save_model(task.model, task.spec)
    probs, labels, _ = predict_chips(task.model, task.loaders.val)  # type: ignore[arg-type]
    final = {f"val_{k}": v for k, v in scores_at(probs, labels).items()}
    _, recall, _ = operating_point(probs, labels, min_precision=0.5)
    val_set = task.loaders.val.dataset  # type: ignore[union-attr]
    diameters = torch.tensor([c.diameter_mm for c in val_set.candidates])
    final["floor_auc"] = scores_at(diameters / diameters.max().clamp(min=1e-6), labels)["auc"]
    final["val_nodules"] = float(len(labels))
    final["train_loss"] = history.last()["train_loss"]
    header = ["score", "ROC AUC", "accuracy", "recall", "recall at precision >= 0.5"]
    rows = [
        ("diameter alone (floor)", final["floor_auc"], "", "", ""),
        (
            "LunaModel" + (" (fine-tuned)" if cfg.classifier_run else ""),
            final["val_auc"],
            final["val_acc"],
            final["val_recall"],
            recall,
        ),
    ]
    ctx.add_section(f"Held-out nodules ({len(labels)})", rows_table(header, rows))
    return final


RECIPE = Recipe(
    config=Config,
    setup=setup,
    run=run,
    smoke=Config(
        max_val_candidates=24,
        n_series=4,
        volume=(24, 48, 48),
        val_fraction=0.5,
        chip=(16, 24, 24),
        samples_per_epoch=16,
        epochs=1,
        batch_size=8,
        width=4,
    ),
    expected={},
    unmeasured=(
        "measured so far only inside a lung-ct-end-to-end run (AUC 0.786 on 31 held-out "
        "nodules; goal 0.90); measure it alone with `torchdojo run nodule-malignancy --threads 1`"
    ),
    lesson="lessons/27_honest_metrics.py",
)
