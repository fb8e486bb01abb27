"""What every object-detection recipe shares: data, the loss, train/eval steps, mAP, the finish.

A detection recipe loads its split with :func:`load_detection_data` (BCCD, synthetic scenes, a
VOC folder or a COCO file; unreadable images are reported and skipped), trains with
``ctx.fit(task, step=detection_step, eval_step=make_eval_step(...))`` and ends with
:func:`finish_detection`: the model bundle for ``predict``/``export``/``serve``, COCO mAP with a
per-class table and precision-recall curves, and predictions drawn beside the ground truth.

Our detectors (:mod:`torchdojo.models.ssd`) follow the dense contract: ``head_outputs(x)``
for the loss (:func:`detection_loss`), ``decode`` + :func:`torchdojo.nn.boxes.postprocess`
for boxes. torchvision's detectors (``tv-*`` models) take a list of images and return their
losses in training mode and their boxes in eval mode; the steps handle both.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from torchdojo.data.detection import (
    DetectionDataset,
    detection_collate,
    detection_transforms,
    load_bccd,
    load_coco,
    load_voc,
)
from torchdojo.data.errors import DataError
from torchdojo.engine import EvalOutput, History, StepOutput, Trainer
from torchdojo.nn.boxes import fcos_loss, multibox_loss, postprocess
from torchdojo.runs.context import RunContext
from torchdojo.runs.contract import ConfigError, Setup

Target = dict[str, Tensor]
SHOWN_IMAGES = 4  # validation images drawn in the report


@dataclass
class DetectionData:
    """The run's training and evaluation images, their classes, and where they came from."""

    train: DetectionDataset
    test: DetectionDataset
    classes: list[str]
    source: str
    reference: bool
    skipped: list[str] = field(default_factory=list)


@dataclass
class DetectionSetup(Setup):
    """A :class:`Setup` plus the evaluation images and the post-processing thresholds."""

    test_dataset: DetectionDataset | None = None
    score_thresh: float = 0.05
    iou_thresh: float = 0.5
    max_detections: int = 100
    skipped: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------- data


def load_detection_data(
    ctx: RunContext, dataset: str, *, seed: int, scenes: tuple[int, int, int] = (256, 64, 128)
) -> DetectionData:
    """The train/test images of ``dataset``, unreadable images skipped and reported.

    Args:
        ctx: The run (data root, ``note_data``).
        dataset: ``bccd`` (official split: trainval 292 for training, test 72),
            ``scenes`` (synthetic, offline), ``voc:<folder>`` (``ImageSets/Main`` trainval /
            test, else a seeded 85/15 split) or ``coco:<file.json>`` (images next to the file
            or in ``images/`` beside it; a seeded 85/15 split).
        seed: Seeds the synthetic scenes and the split of a COCO file.
        scenes: Synthetic scenes: ``(train images, test images, side)``.

    Raises:
        ConfigError: An unknown name, or data that cannot be read (the one-line reason).
    """
    try:
        data = _load(ctx, dataset, seed=seed, scenes=scenes)
    except (DataError, ValueError) as err:
        raise ConfigError(f"dataset={dataset!r}: {err}") from None
    train, bad_train = readable(data.train)
    test, bad_test = readable(data.test)
    data.train, data.test, data.skipped = train, test, bad_train + bad_test
    for line in data.skipped:
        ctx.echo(f"[yellow]skipped:[/yellow] {line}")
    if not len(train) or not len(test):
        raise ConfigError(f"dataset={dataset!r}: no readable training or test images left")
    reason = "" if data.reference else f"dataset={dataset}: the floors are for bccd"
    ctx.note_data(data.source, reference=data.reference, reason=reason)
    return data


def _load(
    ctx: RunContext, dataset: str, *, seed: int, scenes: tuple[int, int, int]
) -> DetectionData:
    if dataset == "bccd":
        train = load_bccd(ctx.data_dir, "trainval")
        test = load_bccd(ctx.data_dir, "test")
        source = f"BCCD (official split: trainval {len(train)}, test {len(test)} images)"
        return DetectionData(train, test, train.classes, source, reference=True)
    if dataset == "scenes":
        from torchdojo.data.scenes import scenes_detection

        n_train, n_test, side = scenes
        train = scenes_detection(n_train, (side, side), seed)
        test = scenes_detection(n_test, (side, side), seed + 1_000_003)
        source = f"synthetic scenes ({n_train} train / {n_test} test, {side}px, seed {seed})"
        return DetectionData(train, test, train.classes, source, reference=False)
    kind, _, path = dataset.partition(":")
    if kind == "voc" and path:
        root = Path(path).expanduser()
        train = load_voc(root, "trainval")
        test = load_voc(root, "test", train.classes)
        source = f"VOC folder {root} (trainval {len(train)}, test {len(test)} images)"
        return DetectionData(train, test, train.classes, source, reference=False)
    if kind == "coco" and path:
        file = Path(path).expanduser()
        images = file.parent / "images" if (file.parent / "images").is_dir() else file.parent
        full = load_coco(file, images)
        order = np.random.default_rng(seed).permutation(len(full)).tolist()
        n_test = max(1, round(0.15 * len(full)))
        test, train = full.subset(sorted(order[:n_test])), full.subset(sorted(order[n_test:]))
        source = f"COCO file {file} ({len(train)} train / {len(test)} test, seed {seed})"
        return DetectionData(train, test, full.classes, source, reference=False)
    raise ValueError("use bccd, scenes, voc:<folder> or coco:<file.json>")


def readable(dataset: DetectionDataset) -> tuple[DetectionDataset, list[str]]:
    """``dataset`` without the images that cannot be decoded, and one line per skipped file."""
    keep, bad = [], []
    for index, item in enumerate(dataset.items):
        if isinstance(item.image, np.ndarray):
            keep.append(index)
            continue
        try:
            dataset.load_image(index)
        except DataError as err:
            bad.append(str(err))
        else:
            keep.append(index)
    return (dataset if not bad else dataset.subset(keep)), bad


def detection_loaders(
    data: DetectionData,
    *,
    size: tuple[int, int],
    batch_size: int,
    seed: int,
    zoom_out: float,
    num_workers: int = 0,
) -> tuple[Any, Any]:
    """Training batches (box-aware augmentation) and evaluation batches (resize only)."""
    from torchdojo.engine import make_loader

    train = data.train.with_transform(detection_transforms(size, True, zoom_out=zoom_out))
    test = data.test.with_transform(detection_transforms(size, False))
    return (
        make_loader(
            train,
            batch_size=batch_size,
            seed=seed,
            num_workers=num_workers,
            collate_fn=detection_collate,
            drop_last=len(train) > batch_size,
        ),
        make_loader(
            test,
            batch_size=batch_size,
            shuffle=False,
            seed=seed,
            num_workers=num_workers,
            collate_fn=detection_collate,
        ),
    )


# ----------------------------------------------------------------- the steps


def is_library_detector(model: nn.Module) -> bool:
    """True for torchvision's detectors (lists in, losses or boxes out)."""
    return not hasattr(model, "head_outputs")


def detection_loss(
    model: nn.Module, outputs: dict[str, Tensor], targets: Sequence[Target]
) -> tuple[Tensor, dict[str, Tensor]]:
    """The loss that fits ``model``'s head: SSD's multibox loss (outputs with ``anchors``) or
    FCOS's (outputs with ``centerness``)."""
    if "anchors" in outputs:
        box_loss = str(getattr(model, "box_loss", "smooth_l1"))
        return multibox_loss(
            outputs["cls_logits"].float(),
            outputs["box_reg"].float(),
            targets,
            outputs["anchors"],
            box_loss=box_loss,
        )
    return fcos_loss(
        outputs["cls_logits"].float(),
        outputs["ltrb"].float(),
        outputs["centerness"].float(),
        targets,
        outputs["points"],
        outputs["strides"],
        outputs["size_ranges"],
    )


@dataclass(frozen=True)
class HeadLoss:
    """``loss_fn(model.head_outputs(x), targets)`` of a :class:`DetectionSetup`: the total of
    :func:`detection_loss` (tools that take a setup's ``loss_fn`` call it so)."""

    model: nn.Module

    def __call__(self, outputs: dict[str, Tensor], targets: Sequence[Target]) -> Tensor:
        return detection_loss(self.model, outputs, targets)[0]


def detection_step(trainer: Trainer, batch: tuple[Tensor, list[Target]]) -> StepOutput:
    """One optimizer step: the head's loss (or a library detector's summed losses)."""
    images, targets = batch
    model: Any = trainer.model
    with trainer.autocast():
        if is_library_detector(trainer.unwrapped_model):
            parts = model(list(images), targets)
            loss = sum(parts.values())
            parts = {k.removeprefix("loss_"): v.detach() for k, v in parts.items()}
        else:
            loss, parts = detection_loss(model, model.head_outputs(images), targets)
    trainer.backward(loss)
    trainer.step_optimizer()
    return StepOutput(loss=loss.detach(), batch_size=len(images), values=parts)


@dataclass(frozen=True)
class DetectionEvalStep:
    """Validation: the loss and NMS-ed detections ``(preds, targets)`` for mAP."""

    score_thresh: float = 0.05
    iou_thresh: float = 0.5
    max_detections: int = 100

    def __call__(self, trainer: Trainer, batch: tuple[Tensor, list[Target]]) -> EvalOutput:
        images, targets = batch
        model: Any = trainer.model
        loss = None
        if is_library_detector(trainer.unwrapped_model):
            preds = [
                {"boxes": p["boxes"].float(), "scores": p["scores"].float(), "labels": p["labels"]}
                for p in model(list(images))
            ]
        else:
            outputs = model.head_outputs(images)
            loss = detection_loss(model, outputs, targets)[0]
            decode: Any = trainer.unwrapped_model.decode
            boxes, scores = decode(outputs, *images.shape[-2:])
            preds = postprocess(
                boxes.float(),
                scores.float(),
                score_thresh=self.score_thresh,
                iou_thresh=self.iou_thresh,
                max_detections=self.max_detections,
            )
        return EvalOutput(loss=loss, preds=preds, target=targets, batch_size=len(images))


def require_coco_eval() -> None:
    """Raise the one-line error that names the extra when faster-coco-eval is missing."""
    import importlib.util

    if importlib.util.find_spec("faster_coco_eval") is None:
        raise ConfigError(
            'COCO mAP and keypoint OKS need faster-coco-eval: pip install "torchdojo[dense]"'
        )


def map_metric(*, extended: bool = False) -> Any:
    """COCO mAP (torchmetrics, faster-coco-eval backend) with per-class values."""
    from torchmetrics.detection import MeanAveragePrecision

    require_coco_eval()

    return MeanAveragePrecision(
        backend="faster_coco_eval", class_metrics=True, extended_summary=extended
    )


# ---------------------------------------------------------------- the finish


@torch.inference_mode()
def predict_detections(
    model: nn.Module, loader: Any, step: DetectionEvalStep
) -> tuple[list[Target], list[Target], list[Tensor]]:
    """Detections, targets and the first :data:`SHOWN_IMAGES` images of ``loader``."""
    model.eval()
    device = next(model.parameters()).device
    preds: list[Target] = []
    targets: list[Target] = []
    shown: list[Tensor] = []
    library = is_library_detector(model)
    for images, batch_targets in loader:
        images = images.to(device)
        if library:
            found = model(list(images))
        else:
            boxes, scores = model(images)
            found = postprocess(
                boxes,
                scores,
                score_thresh=step.score_thresh,
                iou_thresh=step.iou_thresh,
                max_detections=step.max_detections,
            )
        preds += [{k: v.cpu() for k, v in p.items()} for p in found]
        targets += batch_targets
        shown += [img.cpu() for img in images[: SHOWN_IMAGES - len(shown)]]
    return preds, targets, shown


def per_class_ap50(precision: Tensor) -> list[float]:
    """AP at IoU 0.5 per class from COCO's ``(T, R, K, A, M)`` precision array (NaN for a
    class without ground truth)."""
    out = []
    for k in range(precision.shape[2]):
        curve = precision[0, :, k, 0, -1]
        defined = curve >= 0
        out.append(float(curve[defined].mean()) if defined.any() else float("nan"))
    return out


def ap_table(classes: Sequence[str], ap50: Sequence[float], ap: Sequence[float]) -> str:
    """An HTML table: AP@0.5 and AP@[.5:.95] per class."""
    from html import escape

    rows = "".join(
        f"<tr><td>{escape(name)}</td><td>{a50:.3f}</td><td>{a:.3f}</td></tr>"
        for name, a50, a in zip(classes, ap50, ap, strict=True)
    )
    return (
        "<table><thead><tr><th>class</th><th>AP@0.5</th><th>AP@[.5:.95]</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
    )


def finish_detection(ctx: RunContext, task: DetectionSetup, history: History) -> dict[str, float]:
    """Save the model, evaluate it on the test images (COCO mAP, per class), draw the report's
    figures, and return the run's metrics."""
    from torchdojo.viz.detection import pr_curves_figure, predictions_figure

    model = getattr(task.model, "module", task.model)
    if task.spec is not None and not is_library_detector(model):
        ctx.save_model(model, task.spec)
    step = DetectionEvalStep(task.score_thresh, task.iou_thresh, task.max_detections)
    preds, targets, shown = predict_detections(model, task.loaders.val, step)
    metric = map_metric(extended=True)
    metric.update(preds, targets)
    result = metric.compute()
    present = [int(c) for c in result["classes"].reshape(-1)]
    all_names = [task.classes[c - 1] for c in present]
    ap50 = per_class_ap50(result["precision"])
    ap = [float(v) for v in result["map_per_class"].reshape(-1)]
    # A class in the test images that is never detected has AP 0 (COCO leaves it -1); a
    # class only predicted, never in the test images, has no AP and is left out.
    truth = {int(c) for t in targets for c in t["labels"]}
    rows = [
        (n, a50 if a50 == a50 else 0.0, max(a, 0.0))
        for c, n, a50, a in zip(present, all_names, ap50, ap, strict=True)
        if c in truth
    ]
    names, ap50, ap = [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows]
    ctx.add_section("Average precision per class (test images)", ap_table(names, ap50, ap))
    ctx.save_figure(pr_curves_figure(result["precision"], all_names), "pr_curves")
    n = len(shown)
    ctx.save_figure(predictions_figure(shown, preds[:n], targets[:n], task.classes), "predictions")
    last = history.last()
    metrics = {
        "test_map_50": float(result["map_50"]),
        "test_map": float(result["map"]),
        "test_map_75": float(result["map_75"]),
        "train_loss": last["train_loss"],
        "train_time": last["train_time"],
    }
    for name, value in zip(names, ap50, strict=True):
        metrics[f"test_ap50_{name.lower().replace(' ', '_')}"] = value
    if "val_loss" in last:
        metrics["test_loss"] = last["val_loss"]
    seen = len(task.loaders.train.dataset) * len(history.records)  # type: ignore[attr-defined]
    metrics["samples_per_s"] = seen / max(metrics["train_time"], 1e-9)
    return metrics
