"""Lung nodule vs other candidates from 3-D CT chips (LUNA16 or its synthetic twin), balanced.

Seeds: 004 ch11-12 (LunaModel, "99.7 % accuracy, 0 recall", balancing, augmentation). Lesson:
lessons/27_honest_metrics.py. Each candidate of ``candidates.csv`` becomes a 24x32x32-voxel
chip of HU / 1000 (clipped to -1000..1000, cached on disk); whole series are held out for
validation. The 3-D CNN (the book's LunaModel with batch norm after every conv) trains with
AdamW on batches that hold one nodule per ``ratio`` other candidates (``balanced=true``), with
flips, shifts, zoom, rotation and noise. ``--set balanced=false`` trains on the candidates as
they come (about 1 nodule in 100 here, 1 in 400 in LUNA16) and reproduces the book's useless
classifier: accuracy of the never-a-nodule answer, recall 0. The results table puts the model
beside that answer and beside the intensity floor (the mean HU of the chip's centre as a
score). ``data=`` names a LUNA16 folder (``subset*/``, ``candidates.csv``, ``annotations.csv``)
instead of the synthetic twin (written once into the cache folder).

Measured (``torchdojo run nodule-classifier --threads 1``, seed 0; 64 synthetic series, 48 train
/ 16 held out: 8,701 training candidates with 101 nodules, 2,831 held-out candidates with 31
nodules; 8 epochs of 4,000 chips, cosine LR from 0.001, the final scores averaged over each
chip's 8 mirror images): ROC AUC 0.978 (per epoch without the flips: 0.764, 0.885, 0.958, 0.967,
0.972, 0.982, 0.971, 0.976), recall 0.935 (29 of 31) at precision 0.580 at the operating point
chosen for precision >= 0.5 (threshold 0.84), recall 0.935 at precision 0.188 at the 0.5
threshold, accuracy 0.955 (the never-a-nodule answer: 0.989). The intensity floor's AUC is
0.722. 1,211 s of CPU (``env.json``; 20 CPU-minutes), 3,235 s wall on 2 cores shared with about
ten other jobs. Goals: recall >= 0.90 at precision >= 0.50 is met; AUC >= 0.98 is missed by
0.002 (0.978). Where the errors are (the 10-epoch row's model, below): of the 6 lowest-ranked of
31 held-out nodules, 4 are ground-glass (~-550 HU; those 4 of the 6 ground-glass ones each score
below 160 other candidates) and 2 small solid ones (3.0 and 7.2 mm); the negatives ranked
highest are candidates on the pleura and chest wall with a centre at -300 to -500 HU, between
lung and wall, as bright as ground-glass and told apart only by shape. Earlier rows (same data
and seed, before the channels-last convs and the flips): 4 epochs of 2,000 chips, AUC 0.918,
recall 0.355 at precision >= 0.5, 457 CPU-s; 10 epochs of 2,000 chips, AUC 0.971 (0.984 with the
flips, scored afterwards), recall 0.774 at precision 0.615, 1,182 CPU-s. The convs run
channels-last (``LunaModel``): 2.2x fewer CPU-seconds per training chip, which paid for the
longer run. The unbalanced run, the book's "99.7 % and useless" (``torchdojo run
nodule-classifier --threads 1 --epochs 2 --set balanced=false``, 240 CPU-s): accuracy 0.989,
exactly the never-a-nodule answer's, recall 0 at the 0.5 threshold (no candidate called a
nodule), ROC AUC 0.762, recall 0.097 (3 of 31) at precision >= 0.5; the balanced run had
AUC 0.885 and recall 0.58 at the 0.5 threshold after the same 2 epochs (its per-epoch log).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from matplotlib.figure import Figure
from torch import Tensor

from torchdojo.runs import Expected, Recipe, Setup
from torchdojo.runs.context import RunContext
from torchdojo.runs.contract import Range
from torchdojo.runs.ct import operating_point, scores_at
from torchdojo.runs.lung_ct import (
    ChipSettings,
    chip_setup,
    load_ct_data,
    predict_chips,
    rows_table,
    train_chips,
)


@dataclass(frozen=True)
class Config:
    data: str = "synthetic"  # synthetic | a LUNA16 folder
    n_series: Annotated[int, Range(2, 1000)] = 64  # synthetic: series written
    volume: tuple[int, int, int] = (48, 96, 96)  # synthetic: voxels (index, row, col)
    val_fraction: float = 0.25  # series held out
    chip: tuple[int, int, int] = (24, 32, 32)  # chip voxels (index, row, col)
    balanced: bool = True  # one nodule per `ratio` other candidates in every batch
    ratio: Annotated[int, Range(1, 1000)] = 1
    augment: bool = True
    samples_per_epoch: Annotated[int, Range(1)] = 4000
    max_val_candidates: Annotated[int, Range(0)] = 0  # held-out chips scored (0: all)
    epochs: int = 8
    batch_size: int = 32
    lr: float = 0.001
    width: int = 8  # channels of the first conv stage
    min_precision: Annotated[float, Range(0, 1)] = 0.5  # the operating point's precision floor
    flips: bool = True  # final scores: mean over each chip's 8 mirror images (8 forward passes)
    seed: int = 0


def settings(cfg: Config) -> ChipSettings:
    return ChipSettings(
        chip=cfg.chip,
        width=cfg.width,
        epochs=cfg.epochs,
        batch_size=cfg.batch_size,
        lr=cfg.lr,
        balanced=cfg.balanced,
        ratio=cfg.ratio,
        augment=cfg.augment,
        samples_per_epoch=cfg.samples_per_epoch,
        max_val=cfg.max_val_candidates,
        seed=cfg.seed,
    )


def setup(cfg: Config, ctx: RunContext) -> Setup:
    data = load_ct_data(
        ctx,
        cfg.data,
        n_series=cfg.n_series,
        shape=cfg.volume,
        val_fraction=cfg.val_fraction,
        seed=cfg.seed,
    )
    return chip_setup(data, settings(cfg), label="nodule")


def run(cfg: Config, ctx: RunContext) -> dict[str, float]:
    task = setup(cfg, ctx)
    history = train_chips(ctx, task, seed=cfg.seed)
    assert task.spec is not None
    ctx.save_model(task.model, task.spec)
    probs, labels, floor = predict_chips(task.model, task.loaders.val, flips=cfg.flips)  # type: ignore[arg-type]
    final = {f"val_{k}": v for k, v in scores_at(probs, labels).items()}
    threshold, recall, precision = operating_point(probs, labels, min_precision=cfg.min_precision)
    final.update(op_recall=recall, op_precision=precision, op_threshold=threshold)
    _, floor_recall, _ = operating_point(floor, labels, min_precision=cfg.min_precision)
    final["floor_auc"] = scores_at(floor, labels)["auc"]
    final["never_nodule_acc"] = 1.0 - float(labels.float().mean())
    final["train_loss"] = history.last()["train_loss"]
    rows = [
        ("always 'not a nodule'", final["never_nodule_acc"], 0.0, 0.0, 0.5, 0.0),
        (
            "intensity floor (centre HU)",
            float("nan"),
            float("nan"),
            float("nan"),
            final["floor_auc"],
            floor_recall,
        ),
        (
            f"LunaModel, balanced={cfg.balanced}",
            final["val_acc"],
            final["val_precision"],
            final["val_recall"],
            final["val_auc"],
            recall,
        ),
    ]
    header = [
        "model",
        "accuracy",
        "precision",
        "recall",
        "ROC AUC",
        f"recall at precision >= {cfg.min_precision:g}",
    ]
    ctx.add_section("Held-out candidates", rows_table(header, rows))
    ctx.save_figure(roc_figure(probs, floor, labels), "roc")
    return final


def roc_figure(probs: Tensor, floor: Tensor, labels: Tensor) -> Figure:
    """ROC curves of the model and of the intensity floor on the held-out candidates."""
    from torchmetrics.functional.classification import binary_roc

    fig = Figure(figsize=(4.5, 4), layout="constrained")
    ax = fig.subplots()
    for name, scores in (("LunaModel", probs), ("centre HU", floor)):
        fpr, tpr, _ = binary_roc(scores.float(), labels.long())
        ax.plot(fpr.numpy(), tpr.numpy(), label=name)
    ax.plot([0, 1], [0, 1], "k:", label="chance")
    ax.set(xlabel="false-positive rate", ylabel="recall", title="nodule vs candidate")
    ax.legend()
    return fig


RECIPE = Recipe(
    config=Config,
    setup=setup,
    run=run,
    smoke=Config(
        max_val_candidates=24,
        n_series=3,
        volume=(24, 48, 48),
        chip=(16, 24, 24),
        samples_per_epoch=16,
        epochs=1,
        batch_size=8,
        width=4,
        val_fraction=0.34,
    ),
    cpu_minutes=20.2,  # 1,211 s, the run in the docstring
    expected={
        "val_auc": Expected(
            0.96,
            data="synthetic LUNA16 twin: 64 series 48x96x96 (seed 0), 16 held out, 2,831 candidates",
            measured_by="torchdojo run nodule-classifier --threads 1",
        ),
        "op_recall": Expected(
            0.87,
            data="synthetic LUNA16 twin: 64 series 48x96x96 (seed 0), 16 held out, 31 nodules",
            measured_by="torchdojo run nodule-classifier --threads 1",
        ),
    },
    lesson="lessons/27_honest_metrics.py",
)
