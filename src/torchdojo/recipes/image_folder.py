"""Your own image folder -> a fine-tuned pretrained classifier (ants vs bees 94 %+).

Any folder of class subfolders, any pretrained backbone. Seeds: the PyTorch transfer-learning
tutorial (ants vs bees, fine-tune vs fixed feature extractor), fastai lesson 1 (``fine_tune``:
frozen head first, then discriminative LRs). Lesson: lessons/10_transfer_learning.py.
``--set data=PATH`` takes ``PATH/<class>/*`` or ``PATH/train|val/<class>/*``; unreadable files
are skipped and listed in ``bad_files.json``; ``mode=features`` trains only the head on frozen
ImageNet features (the baseline to beat).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn
from torchmetrics.classification import MulticlassAccuracy

from torchdojo.data.image_folder import (
    ImageFolderData,
    class_weights,
    image_folder_path,
    write_shapes_folder,
)
from torchdojo.data.transforms import IMAGENET_MEAN, IMAGENET_STD, train_transforms
from torchdojo.engine import Freeze, Loaders, make_loader
from torchdojo.engine.loader import BalancedSampler
from torchdojo.engine.transfer import param_groups, two_phase_schedule
from torchdojo.models import ModelSpec, create_model
from torchdojo.runs import ConfigError, Expected, Recipe, Setup
from torchdojo.runs.classify import accuracy, finish_classifier
from torchdojo.runs.context import RunContext
from torchdojo.utils import cache_dir

SHAPES = "builtin:shapes"  # a generated two-class folder, for offline smoke runs


@dataclass(frozen=True)
class Config:
    data: str = ""  # folder of class subfolders; "" = hymenoptera_data under the data root
    backbone: str = "tv:mobilenet_v2"  # any tv:<name> / timm:<name> / torchdojo model name
    weights: str = "IMAGENET1K_V1"  # torchvision weights name, "DEFAULT", a file, or "none"
    image_size: int = 224
    mode: Literal["finetune", "features"] = "finetune"
    freeze_epochs: int = 3  # finetune: head-only epochs before unfreezing
    epochs: int = 6  # finetune: epochs after unfreezing; features: head-only epochs
    bn_frozen: bool = True  # keep ImageNet's BatchNorm statistics after unfreezing
    batch_size: int = 32
    lr: float = 2e-3  # head LR while frozen; after unfreezing lr/2 (head) .. lr/2/lr_mult (stem)
    lr_mult: float = 1000.0  # head LR / stem LR after unfreezing (100 measured 0.928 here)
    augment: Literal["none", "trivial", "randaugment"] = "trivial"  # TrivialAugmentWide
    min_scale: float = 0.35  # smallest crop area RandomResizedCrop keeps (fastai's 0.35)
    balance: Literal["none", "sampler", "weights"] = "none"
    val_fraction: float = 0.2  # used when the folder has no val split
    max_bad_fraction: float = 0.05
    num_workers: int = 0
    seed: int = 0


def load_data(cfg: Config, ctx: RunContext) -> ImageFolderData:
    """The folder's train/val splits; writes ``bad_files.json``, stops when too many are bad."""
    folder = image_folder_path(cfg.data, ctx.data_dir)
    if cfg.data == SHAPES:
        folder = cache_dir("image-folder-shapes")
        if len(list(folder.glob("*/*.png"))) < 24:  # absent or half written
            write_shapes_folder(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"image folder {folder} not found; pass --set data=PATH")
    try:
        train_tf = train_transforms(
            image_size=cfg.image_size, augment=cfg.augment, min_scale=cfg.min_scale
        )
        data = ImageFolderData.from_folder(
            folder,
            image_size=cfg.image_size,
            val_fraction=cfg.val_fraction,
            seed=cfg.seed,
            train_transform=train_tf,
            max_bad_fraction=None,
        )
        data.write_bad_files(ctx.run_dir / "bad_files.json")
        data.check_bad_fraction(cfg.max_bad_fraction)
    except ValueError as err:
        raise ConfigError(str(err)) from None
    ctx.note_data(f"{folder} ({len(data.train)} train / {len(data.val)} val, {data.classes})")
    return data


def build_model(cfg: Config, num_classes: int) -> nn.Module:
    """The backbone with a fresh ``num_classes`` head, pretrained unless ``weights=none``."""
    weights = None if cfg.weights.lower() == "none" else cfg.weights
    if not cfg.backbone.startswith(("tv:", "timm:")):
        if weights is not None:
            raise ConfigError(f"{cfg.backbone} has no pretrained weights; use --set weights=none")
        return create_model(cfg.backbone, num_classes=num_classes)
    return create_model(cfg.backbone, num_classes=num_classes, weights=weights)


def build_loaders(cfg: Config, data: ImageFolderData) -> Loaders:
    """Resumable loaders; ``balance=sampler`` draws every class equally often."""
    balanced = BalancedSampler(data.train.labels, seed=cfg.seed)
    train = make_loader(
        data.train,
        batch_size=cfg.batch_size,
        seed=cfg.seed,
        num_workers=cfg.num_workers,
        drop_last=len(data.train) > cfg.batch_size,
        sampler=balanced if cfg.balance == "sampler" else None,
    )
    return Loaders(train, make_loader(data.val, batch_size=2 * cfg.batch_size, shuffle=False))


def setup(cfg: Config, ctx: RunContext) -> Setup:
    return build_setup(cfg, load_data(cfg, ctx))


def build_setup(cfg: Config, data: ImageFolderData) -> Setup:
    """fastai's ``fine_tune`` on ``data``: one LR cycle on the head alone (peak ``lr``), then a
    second over every group, the head peaking at ``lr / 2`` and the stem at ``lr / 2 / lr_mult``.
    ``mode=features`` is the first phase only (a frozen-feature probe)."""
    model = build_model(cfg, len(data.classes))
    loaders = build_loaders(cfg, data)
    frozen_epochs, unfrozen_epochs = frozen_and_unfrozen_epochs(cfg)
    groups = param_groups(model, lr=cfg.lr / 2, lr_mult=cfg.lr_mult)  # stem .. head
    optimizer = torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=0.01)
    steps = len(loaders.train)  # type: ignore[arg-type]
    scheduler = two_phase_schedule(
        optimizer,
        frozen_steps=frozen_epochs * steps,
        unfrozen_steps=unfrozen_epochs * steps,
        frozen_scale=[0.0] * (len(groups) - 1) + [2.0],  # while frozen only the head, at lr
    )
    weight = class_weights(data.train.labels, num_classes=len(data.classes))
    loss_fn = nn.CrossEntropyLoss(weight=weight if cfg.balance == "weights" else None)
    shape = [3, cfg.image_size, cfg.image_size]
    kwargs = {"num_classes": len(data.classes)}
    spec = ModelSpec(
        cfg.backbone, kwargs, shape, list(IMAGENET_MEAN), list(IMAGENET_STD), data.classes
    )
    return Setup(
        model,
        loaders,
        loss_fn,
        optimizer,
        scheduler,
        epochs=frozen_epochs + unfrozen_epochs,
        classes=data.classes,
        spec=spec,
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
    )


def frozen_and_unfrozen_epochs(cfg: Config) -> tuple[int, int]:
    """Epochs with the body frozen, then unfrozen: finetune ``(freeze_epochs, epochs)``,
    features ``(epochs, 0)``."""
    return (cfg.freeze_epochs, cfg.epochs) if cfg.mode == "finetune" else (cfg.epochs, 0)


def run(cfg: Config, ctx: RunContext) -> dict[str, float]:
    data = load_data(cfg, ctx)
    task = build_setup(cfg, data)
    num_classes = len(task.classes)
    metrics = {  # acc: share of images right; balanced_acc: mean of per-class recalls
        "acc": accuracy(num_classes),
        "balanced_acc": MulticlassAccuracy(num_classes, average="macro"),
    }
    frozen_epochs, _ = frozen_and_unfrozen_epochs(cfg)
    history = ctx.fit(
        task,
        callbacks=[Freeze(frozen_epochs, bn_frozen=cfg.bn_frozen)],
        metrics=metrics,
        seed=cfg.seed,
        monitor="val_acc",
        channels_last=True,
    )
    data.write_bad_files(ctx.run_dir / "bad_files.json")  # plus files that failed mid-training
    finish_classifier(ctx, task, history)  # saves the model; confusion, top losses, Grad-CAM
    last = history.last()
    keys = ("val_acc", "val_balanced_acc", "val_loss", "train_loss", "train_time")
    return {key: last[key] for key in keys} | {"best_val_acc": history.best("val_acc") or 0.0}


RECIPE = Recipe(
    config=Config,
    setup=setup,
    run=run,
    smoke=Config(
        data=SHAPES,
        backbone="timm:test_efficientnet",
        weights="none",
        image_size=64,
        freeze_epochs=1,
        epochs=1,
        batch_size=8,
        lr=1e-2,
    ),
    cpu_minutes=5.0,  # 301 s, `torchdojo run image-folder` on a quiet 2-core CPU (156 s wall)
    expected={
        "val_acc": Expected(
            # seeds 0/1/2 (--set seed=N): 0.948 / 0.961 / 0.948, val loss 0.158 / 0.133 / 0.159;
            # the probe (--set mode=features, the same 6 epochs and augmentation): 0.954 / 0.941 /
            # 0.948, loss 0.149 / 0.148 / 0.146 (3 epochs, no augmentation: 0.954 / 0.928 / 0.928).
            # epochs=6 + augment=trivial were chosen on a split of the train folder (val unseen):
            # held-out acc 0.972 vs 0.965 for 3 epochs / no augmentation and 0.965 for the probe
            0.94,
            data="hymenoptera_data (243 train / 153 val) with TORCH_HOME holding MobileNetV2",
            measured_by="torchdojo run image-folder",
        )
    },
    lesson="lessons/10_transfer_learning.py",
)
