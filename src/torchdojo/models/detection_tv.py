"""torchvision's detectors as comparison rows: RetinaNet, FCOS and Faster R-CNN on our offline
MobileNetV2, and ``tv:<name>`` detectors with COCO weights where a network exists.

torchvision's detection models differ from ours (:mod:`torchdojo.models.ssd`): they take a
list of images, resize and normalize them themselves, return their losses in training mode
(``model(images, targets)``) and NMS-ed boxes in eval mode (``model(images)``). The
``object-detection`` recipe trains and evaluates both kinds; only ours follow the dense
export contract, so library detectors are trained and measured but not bundled. They are not in
the zoo registry (whose contract test expects tensors out) but in :data:`LIBRARY_DETECTORS`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from torchdojo.models.hub import _is_file_path, create_hub_model, load_local_weights


def mobilenet_fpn(*, pretrained: bool, trainable_layers: int = 3) -> nn.Module:
    """MobileNetV2 (ImageNet weights from ``$TORCH_HOME`` when ``pretrained``) with a feature
    pyramid on its last two stages plus a max-pooled level: 256 channels at strides 16, 32
    and 64."""
    from torchvision.models.detection.backbone_utils import _mobilenet_extractor

    base: Any = create_hub_model("tv:mobilenet_v2", weights="IMAGENET1K_V1" if pretrained else None)
    return _mobilenet_extractor(base, fpn=True, trainable_layers=trainable_layers)


def _anchors(scales: int) -> Any:
    from torchvision.models.detection.anchor_utils import AnchorGenerator

    sides = (32, 64, 128)  # one base side per pyramid level
    sizes = tuple(tuple(int(s * 2 ** (k / scales)) for k in range(scales)) for s in sides)
    ratios = ((0.5, 1.0, 2.0),) * len(sides) if scales > 1 else ((1.0,),) * len(sides)
    return AnchorGenerator(sizes, ratios)


def _common(image_size: int, min_size: int | None, **kwargs: Any) -> dict[str, Any]:
    side = min_size or image_size  # torchvision resizes the short side to min_size
    return {"min_size": side, "max_size": max(image_size, side), **kwargs}


def tv_fcos_mobilenetv2(
    *, num_classes: int, image_size: int = 320, pretrained: bool = False, **kwargs: Any
) -> nn.Module:
    """torchvision's FCOS on our MobileNetV2 + FPN (labels 1..C; index 0 unused)."""
    from torchvision.models.detection import FCOS

    backbone = mobilenet_fpn(pretrained=pretrained)
    return FCOS(
        backbone, num_classes + 1, anchor_generator=_anchors(1), **_common(image_size, **kwargs)
    )


def tv_retinanet_mobilenetv2(
    *, num_classes: int, image_size: int = 320, pretrained: bool = False, **kwargs: Any
) -> nn.Module:
    """torchvision's RetinaNet (focal loss, 9 anchors per cell) on MobileNetV2 + FPN."""
    from torchvision.models.detection import RetinaNet

    backbone = mobilenet_fpn(pretrained=pretrained)
    return RetinaNet(
        backbone, num_classes + 1, anchor_generator=_anchors(3), **_common(image_size, **kwargs)
    )


def tv_fasterrcnn_mobilenetv2(
    *, num_classes: int, image_size: int = 320, pretrained: bool = False, **kwargs: Any
) -> nn.Module:
    """torchvision's two-stage Faster R-CNN (RPN + RoIAlign head) on MobileNetV2 + FPN."""
    from torchvision.models.detection import FasterRCNN
    from torchvision.ops import MultiScaleRoIAlign

    backbone = mobilenet_fpn(pretrained=pretrained)
    return FasterRCNN(
        backbone,
        num_classes + 1,
        rpn_anchor_generator=_anchors(3),
        box_roi_pool=MultiScaleRoIAlign(["0", "1", "pool"], output_size=7, sampling_ratio=2),
        **_common(image_size, **kwargs),
    )


LIBRARY_DETECTORS: dict[str, Callable[..., nn.Module]] = {
    "tv-fcos-mobilenetv2": tv_fcos_mobilenetv2,
    "tv-retinanet-mobilenetv2": tv_retinanet_mobilenetv2,
    "tv-fasterrcnn-mobilenetv2": tv_fasterrcnn_mobilenetv2,
}

# What the recipe's thresholds are called in torchvision's constructors.
THRESHOLD_NAMES = {
    "tv-fasterrcnn-mobilenetv2": ("box_score_thresh", "box_nms_thresh", "box_detections_per_img"),
}
DEFAULT_THRESHOLD_NAMES = ("score_thresh", "nms_thresh", "detections_per_img")


def create_library_detector(
    name: str,
    *,
    num_classes: int,
    image_size: int = 320,
    min_size: int | None = None,
    pretrained: bool = False,
    weights: str | None = None,
    score_thresh: float = 0.05,
    iou_thresh: float = 0.5,
    max_detections: int = 100,
) -> nn.Module:
    """A library detector for C = ``num_classes`` classes (labels 1..C).

    Args:
        name: A key of :data:`LIBRARY_DETECTORS` (our MobileNetV2 backbone) or ``tv:<name>``,
            any torchvision detection model (``tv:fcos_resnet50_fpn``, ...).
        num_classes: C, without the background.
        image_size: The input's long side; ``min_size`` its short side (default: square).
        pretrained: ``LIBRARY_DETECTORS``: the ImageNet backbone; ``tv:``: the COCO weights
            (``weights`` or ``"DEFAULT"``).
        weights: ``tv:`` only: a torchvision weights name or a local ``.pth``/``.safetensors``
            file (class-head tensors of another shape are skipped).
        score_thresh, iou_thresh, max_detections: The detector's own post-processing.

    Raises:
        ValueError: An unknown name, or a ``tv:`` model whose class head cannot be replaced.
        RuntimeError: Weights neither cached nor downloadable (:mod:`torchdojo.models.hub`).
    """
    if name.startswith("tv:"):
        keys = DEFAULT_THRESHOLD_NAMES
        if "rcnn" in name:
            keys = THRESHOLD_NAMES["tv-fasterrcnn-mobilenetv2"]
        limits = dict(zip(keys, (score_thresh, iou_thresh, max_detections), strict=True))
        chosen = weights or ("DEFAULT" if pretrained else None)
        return create_tv_detector(name[3:], num_classes=num_classes, weights=chosen, **limits)
    if name not in LIBRARY_DETECTORS:
        raise ValueError(
            f"unknown library detector {name!r}; use {', '.join(LIBRARY_DETECTORS)} or tv:<name>"
        )
    keys = THRESHOLD_NAMES.get(name, DEFAULT_THRESHOLD_NAMES)
    limits = dict(zip(keys, (score_thresh, iou_thresh, max_detections), strict=True))
    return LIBRARY_DETECTORS[name](
        num_classes=num_classes,
        image_size=image_size,
        pretrained=pretrained,
        min_size=min_size,
        **limits,
    )


def create_tv_detector(
    name: str, *, num_classes: int, weights: str | None = None, **kwargs: Any
) -> nn.Module:
    """torchvision detection model ``name`` for labels 1..C, from scratch, from a local file,
    or from named (COCO) weights with its class head replaced."""
    import torchvision.models as tvm

    if name not in tvm.list_models(module=tvm.detection):
        raise ValueError(
            f"unknown torchvision detector {name!r}; see "
            "torchvision.models.list_models(module=torchvision.models.detection)"
        )
    if weights is None or _is_file_path(weights):
        model = tvm.get_model(
            name, weights=None, weights_backbone=None, num_classes=num_classes + 1, **kwargs
        )
        return model if weights is None else load_local_weights(model, weights)
    model = create_hub_model(f"tv:{name}", weights=weights, **kwargs)
    return replace_class_head(model, num_classes + 1)


def replace_class_head(model: nn.Module, num_classes: int) -> nn.Module:
    """Swap a Faster R-CNN, RetinaNet or FCOS class head for a fresh ``num_classes`` one.

    Raises:
        ValueError: For another kind of detector.
    """
    from torchvision.models.detection import FCOS, FasterRCNN, RetinaNet
    from torchvision.models.detection.faster_rcnn import FastRCNNPredictor
    from torchvision.models.detection.fcos import FCOSClassificationHead
    from torchvision.models.detection.retinanet import RetinaNetClassificationHead

    if isinstance(model, FasterRCNN):
        predictor: Any = model.roi_heads.box_predictor
        model.roi_heads.box_predictor = FastRCNNPredictor(
            predictor.cls_score.in_features, num_classes
        )
        return model
    if isinstance(model, RetinaNet | FCOS):
        old: Any = model.head.classification_head
        in_channels = old.conv[0][0].in_channels
        head = (
            RetinaNetClassificationHead if isinstance(model, RetinaNet) else FCOSClassificationHead
        )
        model.head.classification_head = head(in_channels, old.num_anchors, num_classes)
        return model
    raise ValueError(
        f"cannot replace the class head of {type(model).__name__}; use Faster R-CNN, RetinaNet "
        "or FCOS, or pass a weights file trained for your classes"
    )
