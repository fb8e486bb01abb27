"""Object detection (FCOS / SSDlite / SSD) on blood cells (BCCD), synthetic scenes, or your own boxes.

Seeds: 003 ch2 (SSD: default boxes, matching, hard negative mining, multibox loss, NMS; its
``Detect`` autograd function no longer runs on today's torch, see torchdojo.nn.boxes), 000's
plans for SSD/YOLO chapters. Lesson: lessons/19_object_detection.py.
Data: ``bccd`` (364 blood-smear images, RBC/WBC/Platelets; official split, trained on
trainval 292, evaluated on test 72), ``scenes`` (synthetic shapes, offline: the smoke run),
``voc:<folder>`` or ``coco:<file.json>`` for your own annotated images. Models:
``fcos-mobilenetv2`` (default, anchor-free) and ``ssdlite-mobilenetv2`` (MobileNetV2 backbone
from torchvision's ImageNet weights in ``$TORCH_HOME``), ``ssd-vgg`` (the book's, slimmed;
from scratch, slow), and torchvision's detectors on the same backbone (``tv-fcos-mobilenetv2``,
``tv-retinanet-mobilenetv2``, ``tv-fasterrcnn-mobilenetv2``) as comparison rows. Metrics: COCO
mAP@0.5 and mAP@[.5:.95] with torchmetrics (faster-coco-eval), AP per class, PR curves.

Measured on the 72 BCCD test images (``torchdojo run object-detection --threads 1``: FCOS on
the ImageNet MobileNetV2 with its first 4 blocks frozen, 320x240 input, 8 epochs of AdamW
one-cycle, seed 0): mAP@0.5 0.770, mAP@[.5:.95] 0.447; AP@0.5 RBC 0.860, WBC 0.985, Platelets
0.465. 545 s user + 82 s sys of CPU (10.5 CPU-minutes), 773 s wall (637 s of training) on 2
cores shared with five other jobs. **The issue's goal (mAP@0.5 >= 0.88 within 30 CPU-minutes)
is not reached**: platelets (~20 px at this size, 361 boxes against 4,155 RBCs) are the gap.
SSDlite under the same budget (``--set model=ssdlite-mobilenetv2``, stride-8 map added): mAP@0.5
0.608, mAP 0.394, platelets 0.017 (their scores stay near background); without the stride-8
map (``--set model=ssdlite-mobilenetv2 first_stride=16 anchor_min_scale=0.07 --epochs 7``):
0.594, platelets 0.110.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal

import torch
from torch import nn

from torchdojo.engine import Loaders
from torchdojo.models import ModelSpec, create_model
from torchdojo.runs import ConfigError, Expected, Recipe
from torchdojo.runs.context import RunContext
from torchdojo.runs.contract import Range
from torchdojo.runs.detection import (
    DetectionEvalStep,
    DetectionSetup,
    HeadLoss,
    detection_loaders,
    detection_step,
    finish_detection,
    load_detection_data,
    map_metric,
)

OUR_MODELS = ("ssdlite-mobilenetv2", "fcos-mobilenetv2", "ssd-vgg")
LIBRARY_MODELS = ("tv-fcos-mobilenetv2", "tv-retinanet-mobilenetv2", "tv-fasterrcnn-mobilenetv2")


@dataclass(frozen=True)
class Config:
    DATASET_REGISTRY: ClassVar[bool] = False  # names and paths are checked by the loader

    dataset: str = "bccd"  # bccd | scenes (synthetic) | voc:<folder> | coco:<file.json>
    model: str = "fcos-mobilenetv2"  # see OUR_MODELS and LIBRARY_MODELS, or tv:<name>
    pretrained: bool = True  # MobileNetV2 backbone from ImageNet weights ($TORCH_HOME)
    weights: str | None = None  # tv:<name> models: torchvision weights name or a local file
    image_size: int = 320  # input width; the height keeps the aspect (see height)
    height: Annotated[int, Range(0, 1024)] = 240  # input height; 0: square
    freeze_blocks: Annotated[int, Range(0, 19)] = 4  # first backbone blocks kept frozen
    first_stride: Literal[8, 16] = 8  # ssdlite: 8 adds a stride-8 map for small objects
    anchor_min_scale: Annotated[float, Range(0.01, 1)] = 0.05  # smallest default box / side
    anchor_max_scale: Annotated[float, Range(0.01, 1)] = 0.9  # largest default box / side
    box_loss: Literal["smooth_l1", "giou"] = "smooth_l1"  # SSD's box loss
    zoom_out: Annotated[float, Range(1, 4)] = 1.5  # largest zoom-out augmentation (1: off)
    epochs: int = 8
    batch_size: int = 16
    lr: float = 2e-3  # peak LR of the one-cycle schedule (AdamW)
    weight_decay: float = 1e-4
    warmup_fraction: float = 0.1  # share of the steps spent warming the LR up
    grad_clip: Annotated[float, Range(0)] = 10.0  # clip the gradient norm (0: off)
    score_thresh: Annotated[float, Range(0, 1)] = 0.05  # lowest detection score kept
    iou_thresh: Annotated[float, Range(0, 1)] = 0.5  # NMS IoU
    max_detections: Annotated[int, Range(1, 10_000)] = 100  # per image
    scene_images: Annotated[int, Range(2, 100_000)] = 256  # synthetic: training images
    num_workers: int = 0
    seed: int = 0


def model_kwargs(cfg: Config, num_classes: int) -> dict[str, Any]:
    """The registered builder's arguments for ``cfg.model`` (the bundle rebuilds it without
    the ImageNet file: ``pretrained`` is only for the start of training)."""
    kwargs: dict[str, Any] = {"num_classes": num_classes, "image_size": cfg.image_size}
    if cfg.model in ("ssdlite-mobilenetv2", "ssd-vgg"):
        kwargs.update(min_scale=cfg.anchor_min_scale, max_scale=cfg.anchor_max_scale)
    if cfg.model == "ssdlite-mobilenetv2":
        kwargs["first_stride"] = cfg.first_stride
    return kwargs


def freeze_first_blocks(model: nn.Module, blocks: int) -> None:
    """Stop gradients to the first ``blocks`` modules of the backbone (generic ImageNet edges
    and blobs; on a CPU their backward pass costs the most)."""
    stages = getattr(model, "stages", None)
    if not blocks or stages is None:
        return
    children = [child for stage in stages for child in stage.children()]
    for child in children[:blocks]:
        child.requires_grad_(False)


def build_model(cfg: Config, kwargs: dict[str, Any], size: tuple[int, int]) -> nn.Module:
    """Ours from the zoo; torchvision's through :func:`create_library_detector` (which
    resizes and normalizes inside, and post-processes with the recipe's thresholds)."""
    if cfg.model in OUR_MODELS:
        return create_model(cfg.model, pretrained=cfg.pretrained, **kwargs)
    from torchdojo.models.detection_tv import create_library_detector

    return create_library_detector(
        cfg.model,
        num_classes=kwargs["num_classes"],
        image_size=max(size),
        min_size=min(size),
        pretrained=cfg.pretrained,
        weights=cfg.weights,
        score_thresh=cfg.score_thresh,
        iou_thresh=cfg.iou_thresh,
        max_detections=cfg.max_detections,
    )


def setup(cfg: Config, ctx: RunContext) -> DetectionSetup:
    if cfg.model not in OUR_MODELS + LIBRARY_MODELS and not cfg.model.startswith("tv:"):
        raise ConfigError(
            f"model={cfg.model!r}: use one of {', '.join(OUR_MODELS + LIBRARY_MODELS)} "
            "or tv:<torchvision detector>"
        )
    if cfg.model == "ssd-vgg" and cfg.pretrained:
        raise ConfigError("model=ssd-vgg has no pretrained weights; add --set pretrained=false")
    scene_side = max(cfg.image_size, 64)
    data = load_detection_data(
        ctx,
        cfg.dataset,
        seed=cfg.seed,
        scenes=(cfg.scene_images, max(cfg.scene_images // 4, 2), scene_side),
    )
    size = (cfg.height or cfg.image_size, cfg.image_size)  # (H, W)
    train, test = detection_loaders(
        data,
        size=size,
        batch_size=cfg.batch_size,
        seed=cfg.seed,
        zoom_out=cfg.zoom_out,
        num_workers=cfg.num_workers,
    )
    kwargs = model_kwargs(cfg, len(data.classes))
    try:
        model = build_model(cfg, kwargs, size)
    except (RuntimeError, ValueError) as err:  # weights neither cached nor downloadable
        raise ConfigError(f"model={cfg.model}: {err}") from None
    if cfg.model in ("ssdlite-mobilenetv2", "ssd-vgg"):
        model.box_loss = cfg.box_loss  # type: ignore[assignment]
    freeze_first_blocks(model, cfg.freeze_blocks)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps = max(cfg.epochs * len(train), 8)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=cfg.lr, total_steps=steps, pct_start=max(cfg.warmup_fraction, 0.01)
    )
    spec = ModelSpec(
        cfg.model,
        {**kwargs, "pretrained": False},
        input_shape=[3, *size],
        classes=data.classes,
        task="detection",
        preprocess={
            "resize": list(size),
            "score_thresh": cfg.score_thresh,
            "iou_thresh": cfg.iou_thresh,
            "max_detections": cfg.max_detections,
        },
    )
    return DetectionSetup(
        model,
        Loaders(train, test),
        loss_fn=HeadLoss(model),
        optimizer=optimizer,
        scheduler=scheduler,
        epochs=cfg.epochs,
        classes=data.classes,
        spec=spec,
        test_dataset=data.test,
        score_thresh=cfg.score_thresh,
        iou_thresh=cfg.iou_thresh,
        max_detections=cfg.max_detections,
        skipped=data.skipped,
    )


def run(cfg: Config, ctx: RunContext) -> dict[str, float]:
    task = setup(cfg, ctx)
    eval_step = DetectionEvalStep(cfg.score_thresh, cfg.iou_thresh, cfg.max_detections)
    history = ctx.fit(
        task,
        metrics={"ap": map_metric()},
        step=detection_step,
        eval_step=eval_step,
        seed=cfg.seed,
        grad_clip=cfg.grad_clip or None,
    )
    metrics = finish_detection(ctx, task, history)
    metrics["skipped_images"] = float(len(task.skipped))
    return metrics


RECIPE = Recipe(
    config=Config,
    setup=setup,
    run=run,
    smoke=Config(
        dataset="scenes",
        model="ssdlite-mobilenetv2",
        pretrained=False,
        image_size=64,
        height=0,
        freeze_blocks=0,
        epochs=1,
        batch_size=8,
        scene_images=16,
        anchor_min_scale=0.15,
    ),
    cpu_minutes=10.5,  # 627 s user + sys, the run in the docstring
    expected={
        "test_map_50": Expected(
            0.74,
            data="BCCD official split (trainval 292 / test 72), FCOS, seed 0: 0.770 "
            "(the issue's goal of 0.88 is not met)",
            measured_by="torchdojo run object-detection --threads 1",
        ),
        "test_map": Expected(
            0.42,
            data="BCCD official split, COCO mAP@[.5:.95] on the 72 test images: 0.447",
            measured_by="torchdojo run object-detection --threads 1",
        ),
        "test_ap50_wbc": Expected(
            0.95,
            data="BCCD test, AP@0.5 of white blood cells: 0.985",
            measured_by="torchdojo run object-detection --threads 1",
        ),
    },
    lesson="lessons/19_object_detection.py",
)
