# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 19 · Object detection: IoU, default boxes, matching, NMS
#
# A detector answers "what, and where": for every object a class and a box. SSD (Liu et al.,
# 2016) does it in one pass: it lays a fixed grid of *default boxes* over the image, and for
# each one predicts a class (or background) and a small correction of the box. Training needs
# four pieces of box arithmetic, and inference one more; here each is written by hand, then
# checked against the library (`torchvision.ops`, `torchdojo.nn.boxes`) with an `assert`.
#
# **You will learn**
# - boxes as tensors (`xyxy`, `cxcywh`) and the intersection over union (IoU);
# - SSD's default boxes: scales and aspect ratios on each feature map, 8,732 of them at 300 px;
# - matching ground truth to default boxes (IoU >= 0.5, plus each box's best anchor);
# - encoding boxes as offsets from their default box, and decoding them back;
# - hard negative mining: three background boxes per object, the hardest ones;
# - non-maximum suppression (NMS) by hand, and average precision (AP) by hand vs torchmetrics;
# - box-aware augmentation (`transforms.v2`) and checking annotations with the doctor.
#
# Data: BCCD blood-cell images (Pascal VOC, `$TORCHDOJO_DATA/bccd/BCCD`) when present,
# otherwise the seeded synthetic scenes of `torchdojo.data.scenes`. Recipe: `object-detection`.
# Seed: 003 ch2 (its SSD, rebuilt on today's API; see docs/crosswalk.md).

# %%
import math
import os
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import torch
from matplotlib import patches
from torch import Tensor
from torchvision import ops

from torchdojo.data.annotation_doctor import check_voc
from torchdojo.data.detection import DetectionDataset, detection_transforms, load_bccd
from torchdojo.data.errors import DataError
from torchdojo.data.scenes import scenes_detection, write_scenes_voc
from torchdojo.nn import boxes as B
from torchdojo.viz import start_lesson

LESSON = start_lesson("19_object_detection")
SMOKE, OUT, save = LESSON.smoke, LESSON.out, LESSON.save

# %% [markdown]
# ## 1. The data: images with boxes
#
# A detection sample is an image and a target: `boxes`, a float `(N, 4)` tensor of corners
# `x1, y1, x2, y2` in pixels (`xyxy`), and `labels`, int64 `(N,)` in 1..C, since 0 is kept
# for background. BCCD has three classes: red cells (many, large), white cells (one per
# image, large) and platelets (small).


# %%
def load_data() -> tuple[DetectionDataset, str]:
    """BCCD's training split if the data is there, else 8 synthetic scenes."""
    try:
        return load_bccd(os.environ.get("TORCHDOJO_DATA") or "/nonexistent", "train"), "BCCD"
    except DataError:
        return scenes_detection(8, (256, 256), seed=0), "synthetic scenes"


data, SOURCE = load_data()
COLOURS = ["tab:red", "tab:blue", "tab:green", "tab:orange", "tab:purple"]


def draw(ax, image: Tensor, target: dict[str, Tensor], classes: list[str], title: str) -> None:
    """An image (3, H, W) in [0, 1] with its boxes, coloured by class."""
    ax.imshow(image.permute(1, 2, 0).numpy())
    for (x1, y1, x2, y2), label in zip(
        target["boxes"].tolist(), target["labels"].tolist(), strict=True
    ):
        colour = COLOURS[(label - 1) % len(COLOURS)]
        ax.add_patch(patches.Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, color=colour))
    ax.set(title=title, xticks=[], yticks=[])
    ax.legend(
        handles=[patches.Patch(color=COLOURS[i], label=c) for i, c in enumerate(classes)],
        fontsize=7,
        loc="lower right",
    )


fig, axes = plt.subplots(1, 3, figsize=(12, 3.6), layout="constrained")
for ax, index in zip(axes, range(3), strict=True):
    image, target = data[index]
    assert image.dtype == torch.float32 and 0 <= float(image.min()) <= float(image.max()) <= 1
    assert target["labels"].min() >= 1 and target["boxes"].shape == (len(target["labels"]), 4)
    draw(ax, image, target, data.classes, f"{SOURCE} #{index}: {len(target['labels'])} boxes")
save(fig, "samples.png")
print(f"{SOURCE}: {len(data)} images, classes {data.classes}")
if data.notes:
    print("the loader repaired:", *data.notes, sep="\n  ")

# %% [markdown]
# ## 2. Intersection over union
#
# Two boxes overlap by the area of their intersection divided by the area of their union:
# 1 for the same box, 0 for disjoint ones. Box `a` = (0, 0, 4, 4) and `b` = (2, 2, 6, 6)
# share a 2x2 square: IoU = 4 / (16 + 16 − 4) = 1/7.


# %%
def iou_by_hand(a: Tensor, b: Tensor) -> Tensor:
    """IoU matrix (N, M) of xyxy boxes, broadcasting every pair."""
    top_left = torch.maximum(a[:, None, :2], b[None, :, :2])  # (N, M, 2)
    bottom_right = torch.minimum(a[:, None, 2:], b[None, :, 2:])  # (N, M, 2)
    inter = (bottom_right - top_left).clamp(min=0).prod(-1)  # (N, M)
    area_a = (a[:, 2:] - a[:, :2]).prod(-1)  # (N,)
    area_b = (b[:, 2:] - b[:, :2]).prod(-1)  # (M,)
    return inter / (area_a[:, None] + area_b[None, :] - inter)


a, b = torch.tensor([[0.0, 0, 4, 4]]), torch.tensor([[2.0, 2, 6, 6], [5.0, 5, 7, 7]])
assert torch.allclose(iou_by_hand(a, b), torch.tensor([[1 / 7, 0.0]]))
gen = torch.Generator().manual_seed(0)
corners = torch.rand(2, 50, 2, 2, generator=gen) * 100  # 2 sets of 50 boxes from 2 points
random_boxes = torch.cat((corners.min(2).values, corners.max(2).values), -1)  # (2, 50, 4)
assert torch.allclose(iou_by_hand(*random_boxes), ops.box_iou(*random_boxes), atol=1e-6)
assert torch.allclose(
    B.xyxy_to_cxcywh(B.cxcywh_to_xyxy(random_boxes[0])), random_boxes[0], atol=1e-4
)
print("IoU by hand == torchvision.ops.box_iou on 50 x 50 random boxes")

# %% [markdown]
# ## 3. Default boxes
#
# SSD predicts from several feature maps: a fine 38x38 grid for small objects down to a 1x1
# grid for the whole image (at 300x300 input). On level `k` every cell gets boxes centred on
# the cell: a square of side `s_k`, a square of side `sqrt(s_k * s_{k+1})`, and for each
# aspect ratio `r` two boxes `s_k*sqrt(r) x s_k/sqrt(r)` (wide) and its transpose (tall).
# Sizes are fractions of the image. Below: a 2x2 grid by hand vs `nn.boxes.default_boxes`, and
# the count of SSD300's 8,732 boxes.


# %%
def default_boxes_by_hand(grid: int, s: float, s_next: float, ratios: list[float]) -> Tensor:
    """Default boxes (cx, cy, w, h) of one square feature map, cells row by row."""
    shapes = [(s, s), (math.sqrt(s * s_next), math.sqrt(s * s_next))]
    for r in ratios:
        shapes += [(s * math.sqrt(r), s / math.sqrt(r)), (s / math.sqrt(r), s * math.sqrt(r))]
    rows = []
    for i in range(grid):  # row (y)
        for j in range(grid):  # column (x)
            rows += [[(j + 0.5) / grid, (i + 0.5) / grid, w, h] for w, h in shapes]
    return torch.tensor(rows).clamp(0, 1)


mine = default_boxes_by_hand(2, 0.2, 0.37, [2.0])
assert torch.allclose(mine, B.default_boxes([2], 300, [0.2, 0.37], [[2.0]]))
SSD300_SIZES = [38, 19, 10, 5, 3, 1]
SSD300_RATIOS = [[2.0], [2.0, 3.0], [2.0, 3.0], [2.0, 3.0], [2.0], [2.0]]
SSD300_SCALES = [0.1, 0.2, 0.37, 0.54, 0.71, 0.88, 1.05]
ssd300 = B.default_boxes(SSD300_SIZES, 300, SSD300_SCALES, SSD300_RATIOS)
assert len(ssd300) == 38**2 * 4 + 19**2 * 6 + 10**2 * 6 + 5**2 * 6 + 3**2 * 4 + 1 * 4 == 8732
print(f"SSD300: {len(ssd300)} default boxes; {len(mine)} on a 2x2 map with ratio 2")

fig, axes = plt.subplots(1, 2, figsize=(9, 4.2), layout="constrained")
for ax, (grid, s, s_next, ratios) in zip(
    axes, [(4, 0.2, 0.37, [2.0]), (3, 0.54, 0.71, [2.0, 3.0])], strict=True
):
    anchors = B.cxcywh_to_xyxy(default_boxes_by_hand(grid, s, s_next, ratios)) * 300
    per_cell = len(anchors) // grid**2
    cell = (grid // 2) * grid + grid // 2  # a cell in the middle
    for k, (x1, y1, x2, y2) in enumerate(anchors[cell * per_cell : (cell + 1) * per_cell].tolist()):
        ax.add_patch(
            patches.Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, color=COLOURS[k % 5])
        )
    for t in range(grid + 1):
        ax.axhline(300 * t / grid, color="0.8", lw=0.6)
        ax.axvline(300 * t / grid, color="0.8", lw=0.6)
    ax.set(
        xlim=(0, 300),
        ylim=(300, 0),
        aspect="equal",
        title=f"{grid}x{grid} map: {per_cell} boxes per cell (s={s})",
    )
save(fig, "default_boxes.png")

# %% [markdown]
# ## 4. Matching ground truth to default boxes
#
# Each default box learns from at most one object. SSD gives a default box the object it
# overlaps most if that IoU is at least 0.5; otherwise it is background. Then every object
# also claims its single best default box, whatever the IoU, so a small object that overlaps
# every default box below 0.5 still trains one. Written by hand on a 4x4 grid and compared
# with `nn.boxes.match`.


# %%
def match_by_hand(gt: Tensor, labels: Tensor, anchors_cxcywh: Tensor, thresh: float = 0.5):
    """(labels (A,), matched xyxy boxes (A, 4)) for one image."""
    iou = iou_by_hand(gt, B.cxcywh_to_xyxy(anchors_cxcywh))  # (N, A)
    out_labels = torch.zeros(len(anchors_cxcywh), dtype=torch.int64)
    out_boxes = torch.zeros(len(anchors_cxcywh), 4)
    for a_idx in range(iou.shape[1]):  # the threshold rule, one default box at a time
        best = int(iou[:, a_idx].argmax())
        if iou[best, a_idx] >= thresh:
            out_labels[a_idx], out_boxes[a_idx] = labels[best], gt[best]
    for g_idx in range(iou.shape[0]):  # every object takes its best default box
        best_anchor = int(iou[g_idx].argmax())
        out_labels[best_anchor], out_boxes[best_anchor] = labels[g_idx], gt[g_idx]
    return out_labels, out_boxes


anchors = default_boxes_by_hand(4, 0.25, 0.35, [2.0])  # (96, 4) in [0, 1]
gt = torch.tensor([[0.225, 0.225, 0.525, 0.525], [0.62, 0.62, 0.7, 0.68]])  # big and tiny
gt_labels = torch.tensor([1, 3])
labels_hand, boxes_hand = match_by_hand(gt, gt_labels, anchors)
labels_lib, boxes_lib = B.match(gt, gt_labels, anchors)
assert torch.equal(labels_hand, labels_lib)
matched = labels_lib > 0  # the boxes of background anchors are never used
assert torch.allclose(boxes_hand[matched], boxes_lib[matched])
best_iou_tiny = float(iou_by_hand(gt[1:], B.cxcywh_to_xyxy(anchors)).max())
assert best_iou_tiny < 0.5 and int((labels_lib == 3).sum()) == 1  # only the forced match
print(
    f"positives: {int((labels_lib == 1).sum())} for the big object, 1 for the tiny one "
    f"(its best IoU is {best_iou_tiny:.2f} < 0.5); {int((labels_lib == 0).sum())} background"
)

# %% [markdown]
# ## 5. Encoding and decoding offsets
#
# The network does not output boxes; it outputs how to move and stretch its default box:
# `((cx − cx_a) / (0.1 w_a), (cy − cy_a) / (0.1 h_a), log(w / w_a) / 0.2, log(h / h_a) / 0.2)`.
# The "variances" 0.1 and 0.2 scale the targets to about unit size; the log makes
# "twice as wide" and "half as wide" symmetric. Decoding inverts it exactly.

# %%
positive = labels_lib > 0
x = B.xyxy_to_cxcywh(boxes_lib[positive])
a_ = anchors[positive]
by_hand = torch.cat(
    ((x[:, :2] - a_[:, :2]) / (0.1 * a_[:, 2:]), torch.log(x[:, 2:] / a_[:, 2:]) / 0.2), 1
)
offsets = B.encode(boxes_lib[positive], anchors[positive])
assert torch.allclose(by_hand, offsets, atol=1e-5)
assert torch.allclose(B.decode(offsets, anchors[positive]), boxes_lib[positive], atol=1e-5)
print("encode by hand == nn.boxes.encode; decode(encode(box)) == box")

# %% [markdown]
# ## 6. Hard negative mining
#
# Of SSD300's 8,732 default boxes, a BCCD image matches a few hundred; the rest are
# background. Counting every background box would drown the objects, so the classification
# loss keeps every positive and only the `3 x positives` negatives with the *highest* loss
# (the ones the model gets most wrong). By hand with a sort, vs `nn.boxes.hard_negative_mining`.

# %%
cls_loss = torch.rand(2, 40, generator=gen)  # per-default-box cross-entropy, 2 images
pos = torch.zeros(2, 40, dtype=torch.bool)
pos[0, [3, 17]] = True  # image 0: 2 positives -> 6 negatives
pos[1, [5, 6, 7, 30, 31]] = True  # image 1: 5 positives -> 15 negatives
keep_hand = pos.clone()
for i in range(2):
    negatives = torch.nonzero(~pos[i]).flatten()
    hardest = negatives[cls_loss[i, negatives].argsort(descending=True)[: 3 * int(pos[i].sum())]]
    keep_hand[i, hardest] = True
keep_lib = B.hard_negative_mining(cls_loss, pos, neg_pos_ratio=3)
assert torch.equal(keep_hand, keep_lib)
assert (keep_lib & ~pos).sum(1).tolist() == [6, 15]
print("kept per image (pos + neg):", keep_lib.sum(1).tolist())

# %% [markdown]
# ## 7. Non-maximum suppression
#
# A trained detector fires on many overlapping default boxes around each object. NMS keeps
# the best-scoring box, drops every other box that overlaps it by more than a threshold, and
# repeats with what is left. Detectors run it per class (`batched_nms`): a platelet does not
# suppress the red cell under it. `nn.boxes.postprocess` does threshold, top-k and
# `batched_nms` after the model, outside the ONNX graph.


# %%
def nms_by_hand(boxes: Tensor, scores: Tensor, thresh: float) -> list[int]:
    """Indices kept by greedy NMS, best first."""
    order = scores.argsort(descending=True).tolist()
    kept = []
    while order:
        best = order.pop(0)
        kept.append(best)
        ious = iou_by_hand(boxes[best : best + 1], boxes[order])[0] if order else torch.zeros(0)
        order = [j for j, v in zip(order, ious.tolist(), strict=True) if v <= thresh]
    return kept


centres = torch.rand(60, 2, generator=gen) * 80
sizes = 10 + torch.rand(60, 2, generator=gen) * 30
cluttered = torch.cat((centres, centres + sizes), 1)  # (60, 4): many overlaps
scores = torch.rand(60, generator=gen)
for thresh in (0.3, 0.5, 0.7):
    assert nms_by_hand(cluttered, scores, thresh) == ops.nms(cluttered, scores, thresh).tolist()
kept = nms_by_hand(cluttered, scores, 0.5)
print(f"NMS at IoU 0.5 keeps {len(kept)} of 60 boxes, the same set as torchvision.ops.nms")

class_scores = torch.zeros(1, 60, 2)  # 2 classes: each box scores for one of them
class_ids = torch.randint(0, 2, (60,), generator=gen)
class_scores[0, torch.arange(60), class_ids] = scores
(detections,) = B.postprocess(cluttered[None], class_scores, score_thresh=0.0, iou_thresh=0.5)
per_class = sum(
    len(nms_by_hand(cluttered[class_ids == c], scores[class_ids == c], 0.5)) for c in (0, 1)
)
assert len(detections["boxes"]) == per_class and set(detections["labels"].tolist()) <= {1, 2}

fig, axes = plt.subplots(1, 2, figsize=(9, 4.2), layout="constrained")
for ax, show, title in [
    (axes[0], range(60), "before NMS: 60 boxes"),
    (axes[1], kept, f"after NMS (IoU 0.5): {len(kept)}"),
]:
    for k in show:
        x1, y1, x2, y2 = cluttered[k].tolist()
        ax.add_patch(
            patches.Rectangle(
                (x1, y1), x2 - x1, y2 - y1, fill=False, alpha=float(0.2 + 0.8 * scores[k])
            )
        )
    ax.set(xlim=(0, 120), ylim=(120, 0), aspect="equal", title=title)
save(fig, "nms.png")

# %% [markdown]
# ## 8. Average precision, by hand and with torchmetrics
#
# Detections are sorted by score; each is a true positive if it overlaps a not-yet-found
# object of its class by IoU >= 0.5, else a false positive. Precision and recall after each
# detection trace a curve; AP is the area under its upper envelope, sampled (as COCO does) at
# 101 recall levels. mAP@0.5 averages AP over classes; mAP@.5:.95 also averages over IoU
# thresholds 0.5, 0.55, ..., 0.95. A hand-made case: 3 objects, 4 detections.

# %%
truth = torch.tensor([[0.0, 0, 10, 10], [20, 20, 30, 30], [40, 40, 50, 50]])
dets = torch.tensor([[1.0, 1, 10, 10], [20, 21, 30, 30], [60, 60, 70, 70], [40, 40, 45, 45]])
det_scores = torch.tensor([0.9, 0.8, 0.7, 0.6])
found: set[int] = set()
hits = []
for k in det_scores.argsort(descending=True).tolist():
    ious = iou_by_hand(dets[k : k + 1], truth)[0]
    best = int(ious.argmax())
    hit = bool(ious[best] >= 0.5) and best not in found
    found |= {best} if hit else set()
    hits.append(hit)
tp = torch.tensor(hits, dtype=torch.float64).cumsum(0)
precision = tp / torch.arange(1, len(hits) + 1)
recall = tp / len(truth)
envelope = precision.flip(0).cummax(0).values.flip(0)  # best precision at >= this recall
levels = torch.linspace(0, 1, 101, dtype=torch.float64)
where = torch.searchsorted(recall, levels, side="left")
ap_hand = float(
    torch.where(where < len(recall), envelope[where.clamp(max=len(recall) - 1)], 0).mean()
)
print(f"hits {hits}; AP@0.5 by hand = {ap_hand:.4f}")
assert hits == [True, True, False, False]  # the last box covers a quarter of its object

from torchmetrics.detection import MeanAveragePrecision  # noqa: E402

metric = MeanAveragePrecision(iou_thresholds=[0.5], backend="faster_coco_eval")
metric.update(
    [{"boxes": dets, "scores": det_scores, "labels": torch.zeros(4, dtype=torch.long)}],
    [{"boxes": truth, "labels": torch.zeros(3, dtype=torch.long)}],
)
ap_lib = float(metric.compute()["map"])
assert abs(ap_hand - ap_lib) < 1e-4, (ap_hand, ap_lib)
print(f"torchmetrics MeanAveragePrecision (faster-coco-eval) = {ap_lib:.4f}")

# %% [markdown]
# ## 9. Augmentation that moves the boxes too
#
# Flipping or cropping an image must flip or crop its boxes. torchvision's `transforms.v2`
# does both when the boxes are a `tv_tensors.BoundingBoxes`; `detection_transforms` chains
# SSD's recipe: photometric distortion, zoom-out, a random IoU crop, flips, a resize, and
# `SanitizeBoundingBoxes` to drop boxes a crop cut away. As in SSD, the crop keeps only the
# objects whose box *centre* lies inside it: an object cut at the edge may lose its box and
# count as background. Four draws of one image:

# %%
train_view = data.with_transform(detection_transforms((300, 300), train=True))
fig, axes = plt.subplots(1, 4, figsize=(13, 3.6), layout="constrained")
torch.manual_seed(0)
for ax, draw_index in zip(axes, range(4), strict=True):
    image, target = train_view[0]
    assert image.shape == (3, 300, 300) and (target["boxes"][:, 2:] <= 300).all()
    draw(ax, image, target, data.classes, f"draw {draw_index}: {len(target['boxes'])} boxes")
save(fig, "augmented.png")

# %% [markdown]
# ## 10. Checking your own annotations
#
# Real annotation files have mistakes: a box that leaves the image, a class name with a typo,
# an image nobody labelled, an XML whose image was deleted. `torchdojo doctor FOLDER` reads a
# VOC folder (or a COCO JSON, or images + masks) and names each file with its fix. Here a
# small VOC folder with three planted mistakes:

# %%
voc = write_scenes_voc(Path(tempfile.mkdtemp()) / "voc_demo", 4, (64, 64), seed=1)
xml = voc / "Annotations" / "scene_00000.xml"
first = xml.read_text().replace("<name>", "<name>x", 1)  # a typo in a class name
xml.write_text(first.replace("<xmax>", "<xmax>9", 1))  # and a box that leaves the image
(voc / "JPEGImages" / "scene_00001.jpg").unlink()  # an annotation without its image
report = check_voc(voc, classes=["circle", "square", "triangle", "star", "ellipse"])
for finding in report.findings:
    print(f"{finding.severity:7s} {finding.problem:24s} {finding.file}: {finding.fix}")
assert {f.problem for f in report.findings} >= {
    "unknown-class",
    "box-out-of-bounds",
    "annotation-without-image",
}

# %% [markdown]
# ## Takeaways
# - Every piece of SSD is a few lines of tensor code: IoU, default boxes, matching,
#   offsets, mining and NMS; the library versions agree with the hand-written ones.
# - Matching is where small objects are won or lost: a box smaller than every default box
#   trains exactly one of them (the forced match), so the scales must fit the objects
#   (BCCD's platelets are ~6 % of the image side).
# - NMS and the score threshold run after the model, outside any exported graph, so eager
#   and ONNX outputs go through the same `postprocess`.
# - `torchdojo run object-detection` trains an SSDlite-style MobileNetV2 detector on BCCD.

# %%
print("lesson 19 done")
