"""What the lung-CT recipes share: honest metrics, the recall-weighted Dice loss, FROC, grouping.

The four recipes (``nodule-classifier``, ``nodule-segmentation``, ``nodule-malignancy``,
``lung-ct-end-to-end``) follow *Deep Learning with PyTorch* part 2 (seed ch9-14) on LUNA16:

- **Honest metrics.** Candidates are ~99.7 % not-nodules, so a classifier that always says "no"
  is 99.7 % accurate and finds nothing. Every run reports precision, recall, F1 and ROC AUC
  (torchmetrics) and the recall at a precision floor (:func:`operating_point`); taught in
  lessons/27_honest_metrics.py.
- **Recall-weighted Dice** (:class:`RecallDiceLoss`): the book's ``dice + 8 * dice(pred * label,
  label)``: the second term only sees the true nodule pixels, so a missed pixel costs 9x a
  false one. (MONAI's ``DiceLoss`` computes the same soft Dice, but importing MONAI costs ~10 s
  of CPU per process; the two lines below are the whole formula.)
- **FROC** (LUNA16, Setio et al. 2017, https://arxiv.org/abs/1612.08012): sensitivity against
  false positives per scan, scored as the mean sensitivity at 1/8, 1/4, ..., 8 FPs per scan
  (:func:`froc_score`, the formula of ``monai.metrics.compute_froc_score``). A detection hits a
  nodule when it lies within the nodule's radius of its centre.
- **Grouping**: :func:`group_components` gives a mask's 3-D connected components
  (``scipy.ndimage.label``, the book's grouping); :func:`peak_centres` gives the deepest
  points of the mask; :func:`blob_centres` the round bright blobs (Laplacian of Gaussian)
  inside it, which the chain uses (measured: components merge nodules with the lung walls a
  recall-weighted U-Net also marks, and distance peaks miss small nodules touching them; see
  ``lung-ct-end-to-end``).
  :func:`threshold_detections` is the intensity-threshold detector, the floor row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from scipy import ndimage
from torch import Tensor, nn
from torchmetrics import Metric
from torchmetrics.classification import (
    BinaryAccuracy,
    BinaryAUROC,
    BinaryF1Score,
    BinaryPrecision,
    BinaryRecall,
)

from torchdojo.engine import EvalOutput, Trainer

FROC_FPS = (0.125, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0)  # LUNA16's false positives per scan
HU_CLIP = (-1000.0, 1000.0)  # air .. dense bone: what the inputs keep


# ------------------------------------------------------------------------------ inputs
def hu_to_input(hu: np.ndarray | Tensor) -> Tensor:
    """HU clipped to [-1000, 1000] and divided by 1000: the segmentation network's input scale."""
    x = torch.as_tensor(np.asarray(hu, dtype=np.float32))
    return x.clamp(*HU_CLIP) / 1000.0


def slice_stack(volume: Tensor, z: int, context: int) -> Tensor:
    """Slices ``z - context .. z + context`` of ``volume`` (Z, H, W) as channels (2c+1, H, W);
    indices past either end repeat the edge slice."""
    idx = torch.arange(z - context, z + context + 1).clamp(0, volume.shape[0] - 1)
    return volume[idx]  # (2c+1, H, W)


# ------------------------------------------------------------------------------ losses
def soft_dice(probs: Tensor, target: Tensor, eps: float = 1.0) -> Tensor:
    """Soft Dice of each sample: ``(2 sum(p t) + eps) / (sum(p) + sum(t) + eps)``, shape (B,)."""
    p, t = probs.flatten(1), target.flatten(1)  # (B, N)
    return (2 * (p * t).sum(1) + eps) / (p.sum(1) + t.sum(1) + eps)


class RecallDiceLoss(nn.Module):
    """The book's segmentation loss: ``(1 - dice(p, t)) + fn_weight * (1 - dice(p * t, t))``.

    The second term is Dice restricted to the true nodule pixels: it is 0 only when every
    nodule pixel is predicted, so recall is bought with some precision, which the classifier
    after segmentation restores. Taught in lessons/27_honest_metrics.py.

    Args:
        fn_weight: Weight of the false-negative (recall) term (the book: 8).
    """

    def __init__(self, fn_weight: float = 8.0) -> None:
        super().__init__()
        self.fn_weight = fn_weight

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        probs = torch.sigmoid(logits.float())  # (B, 1, H, W)
        target = target.float()
        all_pixels = 1 - soft_dice(probs, target)  # (B,)
        nodule_pixels = 1 - soft_dice(probs * target, target)  # (B,)
        return (all_pixels + self.fn_weight * nodule_pixels).mean()


# ----------------------------------------------------------------------------- metrics
def binary_metrics(threshold: float = 0.5) -> dict[str, Metric]:
    """Accuracy, precision, recall, F1 (at ``threshold``) and ROC AUC of a positive-class
    probability (torchmetrics); keys become ``val_<key>`` in the history."""
    return {
        "acc": BinaryAccuracy(threshold=threshold),
        "precision": BinaryPrecision(threshold=threshold),
        "recall": BinaryRecall(threshold=threshold),
        "f1": BinaryF1Score(threshold=threshold),
        "auc": BinaryAUROC(),
    }


def chip_eval_step(trainer: Trainer, batch: tuple[Tensor, Tensor]) -> EvalOutput:
    """Cross-entropy and the positive-class probability ``(B,)`` of a batch of chips."""
    chips, labels = batch
    logits = trainer.model(chips).float()  # (B, 2)
    loss = trainer.loss_fn(logits, labels) if trainer.loss_fn is not None else None
    return EvalOutput(loss, preds=logits.softmax(1)[:, 1], target=labels, batch_size=len(labels))


def mask_eval_step(trainer: Trainer, batch: tuple[Tensor, Tensor]) -> EvalOutput:
    """Loss and per-pixel nodule probability (flattened) of a batch of slice stacks."""
    stacks, masks = batch
    logits = trainer.model(stacks).float()  # (B, 1, H, W)
    loss = trainer.loss_fn(logits, masks) if trainer.loss_fn is not None else None
    preds = torch.sigmoid(logits).flatten()  # (B * H * W,)
    return EvalOutput(loss, preds=preds, target=masks.flatten().long(), batch_size=len(masks))


def pixel_metrics() -> dict[str, Metric]:
    """Pixel precision, recall and Dice (= F1 on pixels) at probability 0.5."""
    return {"precision": BinaryPrecision(), "recall": BinaryRecall(), "dice": BinaryF1Score()}


def scores_at(probs: Tensor, labels: Tensor, threshold: float = 0.5) -> dict[str, float]:
    """Accuracy, precision, recall, F1 and AUC of ``probs`` (N,) against ``labels`` (N,)."""
    out = {}
    for key, metric in binary_metrics(threshold).items():
        metric.update(probs.float(), labels.long())
        out[key] = float(metric.compute())
    return out


def operating_point(
    probs: Tensor, labels: Tensor, *, min_precision: float = 0.5
) -> tuple[float, float, float]:
    """``(threshold, recall, precision)`` with the highest recall whose precision is at least
    ``min_precision`` (threshold 1.0, recall 0 when none reaches it)."""
    order = probs.argsort(descending=True)
    hits = labels[order].float().cumsum(0)  # true positives when the top k are called positive
    called = torch.arange(1, len(probs) + 1, dtype=torch.float32)
    precision = hits / called
    recall = hits / max(float(labels.sum()), 1.0)
    ok = (precision >= min_precision).nonzero().flatten()
    if len(ok) == 0:
        return 1.0, 0.0, 0.0
    k = int(ok[recall[ok].argmax()])
    return float(probs[order[k]]), float(recall[k]), float(precision[k])


# -------------------------------------------------------------------------------- FROC
@dataclass(frozen=True)
class Detection:
    """One detection of a scan: its centre in patient millimetres and its nodule score."""

    center_xyz: tuple[float, float, float]
    score: float


def match_detections(
    detections: Sequence[Detection], nodules: Sequence[tuple[Sequence[float], float]]
) -> tuple[list[float], list[float]]:
    """LUNA16 matching of one scan: ``(tp_scores, fp_scores)``.

    ``nodules`` are ``(center_xyz, diameter_mm)``. A detection within a nodule's radius of its
    centre hits it; each nodule counts once, with its best hit's score; detections that hit
    no nodule are false positives; further hits on a found nodule are neither.
    """
    best: dict[int, float] = {}
    fps: list[float] = []
    centers = np.asarray([c for c, _ in nodules], dtype=np.float64).reshape(-1, 3)
    radii = np.asarray([d / 2 for _, d in nodules], dtype=np.float64)
    for det in detections:
        dist = np.linalg.norm(centers - np.asarray(det.center_xyz), axis=1)
        inside = np.flatnonzero(dist <= radii)
        if len(inside) == 0:
            fps.append(det.score)
        for i in inside:
            best[int(i)] = max(best.get(int(i), -np.inf), det.score)
    return list(best.values()), fps


def froc_curve(
    tp_scores: Sequence[float], fp_scores: Sequence[float], *, num_targets: int, num_scans: int
) -> tuple[np.ndarray, np.ndarray]:
    """``(fps_per_scan, sensitivity)`` at every score threshold, most permissive first.

    As ``monai.metrics.compute_froc_curve_data``, except that the lowest score is a threshold
    too (MONAI skips it, so its least confident detection never counts).
    """
    tp, fp = np.asarray(tp_scores, np.float64), np.asarray(fp_scores, np.float64)
    thresholds = np.unique(np.concatenate([tp, fp]))
    fps = np.array([(fp >= t).sum() for t in thresholds] + [0]) / max(num_scans, 1)
    sens = np.array([(tp >= t).sum() for t in thresholds] + [0]) / max(num_targets, 1)
    return fps, sens


def froc_score(fps: np.ndarray, sens: np.ndarray, at: Sequence[float] = FROC_FPS) -> float:
    """Mean sensitivity at ``at`` false positives per scan (linear interpolation, as
    ``monai.metrics.compute_froc_score``; past the curve's last point, its sensitivity)."""
    return float(np.mean(np.interp(at, fps[::-1], sens[::-1])))


def froc(
    per_scan: Sequence[tuple[Sequence[Detection], Sequence[tuple[Sequence[float], float]]]],
) -> tuple[float, np.ndarray, np.ndarray]:
    """FROC score and curve over scans, each ``(detections, nodules)``."""
    tps: list[float] = []
    fps: list[float] = []
    for detections, nodules in per_scan:
        tp, fp = match_detections(detections, nodules)
        tps += tp
        fps += fp
    num_targets = sum(len(nodules) for _, nodules in per_scan)
    curve = froc_curve(tps, fps, num_targets=num_targets, num_scans=len(per_scan))
    return froc_score(*curve), *curve


# ---------------------------------------------------------------------------- grouping
@dataclass(frozen=True)
class Component:
    """A connected blob of a 3-D mask: centre (index, row, col), voxel count, mean value."""

    center_irc: tuple[float, float, float]
    voxels: int
    mean: float


def group_components(
    mask: np.ndarray, values: np.ndarray | None = None, *, min_voxels: int = 1
) -> list[Component]:
    """The 26-connected components of ``mask`` (Z, Y, X) with at least ``min_voxels`` voxels,
    each with its centre of mass and the mean of ``values`` (e.g. the nodule probability)."""
    labels, count = ndimage.label(mask, structure=np.ones((3, 3, 3), bool))
    if count == 0:
        return []
    index = np.arange(1, count + 1)
    sizes = ndimage.sum_labels(np.ones_like(labels), labels, index)
    vals = values if values is not None else mask.astype(np.float32)
    means = ndimage.mean(vals, labels, index)
    centers = ndimage.center_of_mass(np.ones_like(labels), labels, index)
    return [
        Component(tuple(float(v) for v in c), int(n), float(m))  # type: ignore[arg-type]
        for c, n, m in zip(centers, sizes, means, strict=True)
        if n >= min_voxels
    ]


def _local_maxima(values: np.ndarray, spacing_irc: np.ndarray, window_mm: float) -> np.ndarray:
    """Where ``values`` (Z, Y, X) equal the maximum of the odd-sided box about ``window_mm``
    wide around them (anisotropic voxels: the box is in mm)."""
    window = np.maximum(np.rint(window_mm / spacing_irc).astype(int) | 1, 1)
    return values == ndimage.maximum_filter(values, size=tuple(window))


def peak_centres(
    mask: np.ndarray,
    spacing_xyz: Sequence[float] | np.ndarray,
    *,
    min_radius_mm: float = 2.0,
    window_mm: float = 8.0,
) -> list[Component]:
    """Candidate centres of a mask as the local maxima of its distance to the background.

    Connected components merge a nodule with whatever the mask also touches (the pleura, a
    vessel) and move its centre out of the nodule; the deepest point of a round blob is its
    centre however it is attached. Maxima within ``window_mm`` of a deeper one are dropped,
    and so are those under ``min_radius_mm`` (thin false positives along walls). ``mean``
    holds the inscribed radius in mm (the diameter is about twice it).
    """
    spacing_irc = np.asarray(spacing_xyz, dtype=np.float64)[::-1]
    depth = ndimage.distance_transform_edt(mask, sampling=spacing_irc)  # (Z, Y, X) mm
    peaks = _local_maxima(depth, spacing_irc, window_mm) & (depth >= min_radius_mm)
    labels, count = ndimage.label(peaks)
    if count == 0:
        return []
    centers = ndimage.center_of_mass(peaks, labels, np.arange(1, count + 1))
    return [
        Component(
            tuple(float(v) for v in c),  # type: ignore[arg-type]
            int(peaks[labels == i + 1].sum()),
            float(depth[tuple(np.rint(c).astype(int))]),
        )
        for i, c in enumerate(centers)
    ]


def blob_centres(
    hu: np.ndarray,
    spacing_xyz: Sequence[float] | np.ndarray,
    mask: np.ndarray | None = None,
    *,
    radii_mm: Sequence[float] = (1.5, 2.5, 4.0, 6.0, 9.0),
    window_mm: float = 3.0,
    min_response: float = 100.0,
) -> list[Component]:
    """Candidate centres as the bright round blobs of the scan (Lindeberg's scale-normalized
    Laplacian of Gaussian), kept where ``mask`` (the segmentation) is set.

    HU clipped to -1000..200 is smoothed at ``sigma = r / sqrt(3)`` for each radius ``r``
    (anisotropic voxels: sigma and derivatives in mm); ``-sigma^2 * laplacian`` peaks at the
    centre of a ball of radius ``r`` brighter than its surroundings, and is weaker on a tube
    of that radius. Local maxima of the best scale, ``window_mm`` apart and above
    ``min_response``, are the centres; ``mean`` holds the best scale's radius in mm.
    Measured on the synthetic twin's 16 held-out scans (``lung-ct-end-to-end``): inside the
    U-Net's mask these blobs reach 27 of 28 nodules with ~210 centres per scan, where the
    mask's distance peaks (:func:`peak_centres`) reach 21 with ~62: small nodules touching a
    thick part of the mask have no distance peak of their own.
    """
    spacing_irc = np.asarray(spacing_xyz, dtype=np.float64)[::-1]
    x = np.clip(hu, -1000.0, 200.0).astype(np.float32)
    best = np.full(x.shape, -np.inf, dtype=np.float32)
    scale = np.zeros(x.shape, dtype=np.float32)
    for r in radii_mm:
        sigma_mm = r / np.sqrt(3.0)
        sigma = sigma_mm / spacing_irc
        laplacian = sum(
            ndimage.gaussian_filter(x, sigma, order=[2 if a == b else 0 for b in range(3)])
            / spacing_irc[a] ** 2
            for a in range(3)
        )
        response = -(sigma_mm**2) * laplacian
        better = response > best
        best = np.where(better, response, best)
        scale = np.where(better, np.float32(r), scale)
    peaks = _local_maxima(best, spacing_irc, window_mm) & (best > min_response)
    if mask is not None:
        peaks &= mask.astype(bool)
    return [
        Component(tuple(float(v) for v in irc), 1, float(scale[tuple(irc)]))  # type: ignore[arg-type]
        for irc in np.argwhere(peaks)
    ]


def equivalent_diameter(voxels: int, spacing_xyz: Sequence[float] | np.ndarray) -> float:
    """Diameter (mm) of the sphere with the volume of ``voxels`` voxels of this spacing."""
    volume = voxels * float(np.prod(spacing_xyz))
    return float((6 * volume / np.pi) ** (1 / 3))


def lung_mask(hu: np.ndarray, *, air_below: float = -400.0) -> np.ndarray:
    """The lungs (Z, Y, X): air-like voxels not connected to the in-plane border (the air
    around the body; the lungs do reach the first and last slice), holes (vessels, nodules)
    filled slice by slice."""
    air = hu < air_below
    labels, _ = ndimage.label(air)
    outside = np.unique(np.concatenate([labels[:, [0, -1]].ravel(), labels[..., [0, -1]].ravel()]))
    lungs = air & ~np.isin(labels, outside)
    return np.stack([ndimage.binary_fill_holes(s) for s in lungs])


def threshold_detections(
    hu: np.ndarray,
    spacing_xyz: Sequence[float] | np.ndarray,
    *,
    hu_above: float = -400.0,
    diameter_mm: tuple[float, float] = (3.0, 32.0),
) -> list[Component]:
    """The intensity-threshold detector (the floor): blobs above ``hu_above`` inside the lungs
    with an equivalent diameter in ``diameter_mm``. ``mean`` holds their roundness, the score:
    the blob's volume over that of the ball whose diameter is the blob's longest side (1 for a
    ball, near 0 for a vessel), so round nodules outrank branching vessels, roughly."""
    dense = (hu > hu_above) & lung_mask(hu)
    labels, _ = ndimage.label(dense, structure=np.ones((3, 3, 3), bool))
    spacing_irc = np.asarray(spacing_xyz, dtype=np.float64)[::-1]
    found = []
    for i, box in enumerate(ndimage.find_objects(labels), start=1):
        if box is None:
            continue
        blob = labels[box] == i
        n = int(blob.sum())
        if not diameter_mm[0] <= equivalent_diameter(n, spacing_xyz) <= diameter_mm[1]:
            continue
        longest = float(max(np.asarray(blob.shape) * spacing_irc))
        roundness = n * float(np.prod(spacing_irc)) / (np.pi / 6 * longest**3)
        center = ndimage.center_of_mass(blob)
        irc = tuple(float(c + s.start) for c, s in zip(center, box, strict=True))
        found.append(Component(irc, n, min(roundness, 1.0)))  # type: ignore[arg-type]
    return found


__all__ = [
    "FROC_FPS",
    "Component",
    "Detection",
    "RecallDiceLoss",
    "binary_metrics",
    "blob_centres",
    "chip_eval_step",
    "equivalent_diameter",
    "froc",
    "froc_curve",
    "froc_score",
    "group_components",
    "hu_to_input",
    "lung_mask",
    "mask_eval_step",
    "match_detections",
    "operating_point",
    "peak_centres",
    "pixel_metrics",
    "scores_at",
    "slice_stack",
    "soft_dice",
    "threshold_detections",
]
