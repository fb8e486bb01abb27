"""Export a detector or a segmenter to ONNX, with a card and a parity report after post-processing.

The graph holds the network only: a detector's graph returns decoded ``boxes (B, A, 4)`` and
``scores (B, A, C)`` and NMS runs after it in Python (:func:`torchdojo.nn.boxes.postprocess`,
the same call after the eager and the ONNX outputs); a segmenter's graph returns
``logits (B, K, H, W)`` and the arg-max runs after it. The parity report compares what a user
gets, on real images of the run's data where they are found:

- detection: the raw boxes and scores within ``atol_boxes`` pixels and ``atol_scores``, and per
  image the same number of kept boxes, each ONNX box matched to an eager box of the same class
  with max |dbox| <= ``atol_boxes`` and |dscore| <= ``atol_scores``. Where candidate scores
  tie within ``atol_scores`` (an untrained detector), NMS may keep other boxes of equal score
  in either run; such images are counted in ``tied_images`` and judged by the raw outputs;
- segmentation: the arg-max class agrees on >= ``min_pixel_agreement`` of the pixels; the
  largest logit difference is reported too;
- pose: per image the same number of people after :func:`torchdojo.nn.pose.decode_poses`,
  each ONNX person matched to an eager one with every found keypoint within ``atol_keypoints``
  pixels (peaks on a plateau may move by a pixel when the maps differ by 1e-7).

Each image runs alone (batch 1) and all together (batch N), which also proves the dynamic batch.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

import torch
from torch import Tensor, nn

from torchdojo.export.card import ONNX_FILE, PARITY_FILE
from torchdojo.export.dense import (
    DETECTION,
    IOU_THRESH,
    MAX_DETECTIONS,
    POSE,
    SCORE_THRESH,
    DenseModelCard,
    DensePredictor,
    Person,
    dense_card,
    poses_of,
)
from torchdojo.export.exporter import (
    DEFAULT_OPSET,
    Exporter,
    GraphSignature,
    _check_dynamic_batch,
    _graph_opset,
    _versions,
    write_onnx,
)
from torchdojo.utils.io import atomic_write_json

logger = logging.getLogger(__name__)

PARITY_BATCH = 4  # random parity images when the caller has none
ATOL_BOXES = 1e-2  # pixels of the model input
ATOL_SCORES = 1e-4
MIN_PIXEL_AGREEMENT = 0.999
ATOL_KEYPOINTS = 1.0  # pixels of the model input
NMS_WHERE = "python: torchdojo.nn.boxes.postprocess after the graph, for eager and ONNX alike"


@dataclass(frozen=True)
class DetectionParityReport:
    """ONNX Runtime against eager PyTorch, compared after NMS (what a user gets).

    Args:
        images: How many images were compared.
        batch_sizes: Batch sizes run through the graph (1 and N: a dynamic batch).
        detections: Boxes kept for all images by the eager model.
        same_count: Every image kept as many boxes in ONNX as in eager.
        max_abs_diff_boxes: Largest |dcoordinate| of matched boxes, in input pixels.
        max_abs_diff_scores: Largest |dscore| of matched boxes.
        max_abs_diff_raw_boxes: Largest difference of the raw decoded boxes, before NMS.
        max_abs_diff_raw_scores: Largest difference of the raw scores, before NMS.
        tied_images: Images whose kept boxes differ because candidates tie within
            ``atol_scores`` (:func:`scores_tied`); they are judged by the raw outputs alone.
        atol_boxes: Tolerance on matched boxes (pixels).
        atol_scores: Tolerance on matched scores.
        nms: Where NMS runs.
        passed: The raw outputs within tolerance, and after NMS every image keeps as many
            boxes, each matched to one of the same class within tolerance (tied images
            excepted).
    """

    images: int
    batch_sizes: tuple[int, ...]
    detections: int
    same_count: bool
    max_abs_diff_boxes: float
    max_abs_diff_scores: float
    max_abs_diff_raw_boxes: float
    max_abs_diff_raw_scores: float
    tied_images: int
    atol_boxes: float
    atol_scores: float
    nms: str
    passed: bool

    def describe(self) -> str:
        """One line for the command line."""
        return (
            f"batches {list(self.batch_sizes)}: {self.detections} boxes after NMS (NMS in "
            f"Python, outside the graph), same count {self.same_count}, max |dbox| "
            f"{self.max_abs_diff_boxes:.2e} px (tol {self.atol_boxes:.0e}), max |dscore| "
            f"{self.max_abs_diff_scores:.2e} (tol {self.atol_scores:.0e})"
            + f"; raw outputs max |dbox| {self.max_abs_diff_raw_boxes:.2e}, max |dscore| "
            f"{self.max_abs_diff_raw_scores:.2e}"
            + (f"; {self.tied_images} images with tied scores" if self.tied_images else "")
        )


@dataclass(frozen=True)
class SegmentationParityReport:
    """ONNX Runtime against eager PyTorch on the arg-max mask and the logits.

    Args:
        images: How many images were compared.
        batch_sizes: Batch sizes run through the graph (1 and N: a dynamic batch).
        pixel_agreement: Fraction of pixels whose arg-max class agrees.
        max_abs_diff_logits: Largest absolute difference of the logits.
        min_pixel_agreement: The agreement required.
        passed: ``pixel_agreement >= min_pixel_agreement``.
    """

    images: int
    batch_sizes: tuple[int, ...]
    pixel_agreement: float
    max_abs_diff_logits: float
    min_pixel_agreement: float
    passed: bool

    def describe(self) -> str:
        """One line for the command line."""
        return (
            f"batches {list(self.batch_sizes)}: arg-max agrees on {self.pixel_agreement:.4%} "
            f"of pixels (need {self.min_pixel_agreement:.1%}), max |dlogit| "
            f"{self.max_abs_diff_logits:.2e}"
        )


@dataclass(frozen=True)
class PoseParityReport:
    """ONNX Runtime against eager PyTorch, compared after decoding people.

    Args:
        images: How many images were compared.
        batch_sizes: Batch sizes run through the graph (1 and N: a dynamic batch).
        people: People found in all images by the eager model.
        same_count: Every image gave as many people in ONNX as in eager.
        max_abs_diff_keypoints: Largest |dx| or |dy| of matched keypoints, in input pixels.
        max_abs_diff_maps: Largest difference of the heatmaps and PAFs.
        atol_keypoints: Tolerance on matched keypoints (pixels).
        passed: Same counts and every keypoint within tolerance.
    """

    images: int
    batch_sizes: tuple[int, ...]
    people: int
    same_count: bool
    max_abs_diff_keypoints: float
    max_abs_diff_maps: float
    atol_keypoints: float
    passed: bool

    def describe(self) -> str:
        """One line for the command line."""
        return (
            f"batches {list(self.batch_sizes)}: {self.people} people decoded (in Python, "
            f"outside the graph), same count {self.same_count}, max |dkeypoint| "
            f"{self.max_abs_diff_keypoints:.2e} px (tol {self.atol_keypoints:g}), max |dmap| "
            f"{self.max_abs_diff_maps:.2e}"
        )


ParityReport = DetectionParityReport | SegmentationParityReport | PoseParityReport


@dataclass(frozen=True)
class DenseExportResult:
    """What ``export_dense_model`` wrote."""

    out_dir: Path
    model_path: Path
    card: DenseModelCard
    parity: ParityReport


def export_dense_model(
    model: nn.Module,
    *,
    out_dir: str | Path,
    task: str,
    class_names: Sequence[str],
    input_size: tuple[int, int, int],
    parity_inputs: Tensor | None = None,
    metrics: dict[str, float] | None = None,
    exporter: Exporter = "auto",
    opset: int = DEFAULT_OPSET,
    score_thresh: float = SCORE_THRESH,
    iou_thresh: float = IOU_THRESH,
    max_detections: int = MAX_DETECTIONS,
    skeleton: Sequence[tuple[int, int]] = (),
    intensity: str = "percentiles",
) -> DenseExportResult:
    """Export a detector or segmenter to ``out_dir/model.onnx`` with ``card.json`` and parity.

    Args:
        model: Detection: ``images (B, 3, H, W)`` in [0, 1] -> ``(boxes (B, A, 4), scores
            (B, A, C))``. Segmentation: ``x (B, C, H, W)`` -> ``logits (B, K, H, W)``.
        out_dir: Folder for ``model.onnx``, ``card.json`` and ``parity.json``.
        task: ``"detection"`` or ``"segmentation"``.
        class_names: Detection: the C object classes; segmentation: the K classes.
        input_size: ``(C, H, W)`` of one input.
        parity_inputs: Prepared images ``(N, C, H, W)`` in [0, 1]; random ones if ``None``.
        metrics: Measured metrics to record in the card.
        exporter: ``"auto"`` tries dynamo then TorchScript; or force one of them.
        opset: ONNX opset to ask for.
        score_thresh: Detection: lowest score kept (written to the card).
        iou_thresh: Detection: NMS IoU (written to the card).
        max_detections: Detection: most boxes per image (written to the card).
        skeleton: Pose: ``(a, b)`` keypoint indices of each limb, in PAF order.
        intensity: How 16-bit images were scaled in training (written to the card).

    Raises:
        ValueError: Bad arguments, an export blocker (the message says the fix), or an
            exported model that disagrees with PyTorch after post-processing.
    """
    card = dense_card(
        task,
        class_names,
        input_size,
        score_thresh=score_thresh,
        iou_thresh=iou_thresh,
        max_detections=max_detections,
        skeleton=tuple(skeleton),
        intensity=intensity,
    )
    eager = copy.deepcopy(model).cpu().eval()
    inputs = _inputs(parity_inputs, card.input_size)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    example = inputs[:2] if len(inputs) >= 2 else inputs.repeat(2, 1, 1, 1)  # batch 2: symbolic
    used, graph = write_onnx(eager, (example,), out / ONNX_FILE, exporter, opset, _signature(card))
    _check_dynamic_batch(graph, model=eager, example=example)
    card = dense_card(
        task,
        card.class_names,
        card.input_size,
        model_file=ONNX_FILE,
        exporter=used,
        opset=_graph_opset(graph),
        score_thresh=score_thresh,
        iou_thresh=iou_thresh,
        max_detections=max_detections,
        skeleton=tuple(skeleton),
        intensity=intensity,
        metrics={k: float(v) for k, v in (metrics or {}).items()},
        versions=_versions(),
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )
    atomic_write_json(out / "card.json", card.to_dict())
    parity = check_dense_parity(eager, out, inputs)
    atomic_write_json(out / PARITY_FILE, asdict(parity))
    if not parity.passed:
        raise ValueError(
            f"exported model disagrees with PyTorch (see {out / PARITY_FILE}): "
            f"{parity.describe()}; check for ops that behave differently in eval mode or a "
            "batch-dependent forward"
        )
    logger.info("exported %s (%s) with %s to %s", type(model).__name__, task, used, out)
    return DenseExportResult(out_dir=out, model_path=out / ONNX_FILE, card=card, parity=parity)


def _inputs(inputs: Tensor | None, input_size: tuple[int, int, int]) -> Tensor:
    if inputs is None:  # uniform pixels: an image, not a normalized tensor
        generator = torch.Generator().manual_seed(0)
        return torch.rand((PARITY_BATCH, *input_size), generator=generator)
    if inputs.ndim != 4 or tuple(inputs.shape[1:]) != tuple(input_size):  # (N, C, H, W)
        raise ValueError(
            f"parity_inputs must have shape (N, {', '.join(map(str, input_size))}), "
            f"got {tuple(inputs.shape)}"
        )
    return inputs.detach().float().cpu()


def _signature(card: DenseModelCard) -> GraphSignature:
    """``images (batch, C, H, W)`` in; every output has the batch axis first."""
    names = (card.input_name, *card.output_names)
    return GraphSignature(
        inputs=(card.input_name,),
        outputs=card.output_names,
        axes=tuple((name, ((0, "batch"),)) for name in names),
    )


# ---------------------------------------------------------------------------------------------
# Parity


def check_dense_parity(model: nn.Module, export_dir: Path, inputs: Tensor) -> ParityReport:
    """Compare the ONNX export in ``export_dir`` with eager ``model`` on ``inputs``.

    Args:
        model: The eager model, in eval mode.
        export_dir: Folder holding ``model.onnx`` and its ``card.json``.
        inputs: Prepared images ``(N, C, H, W)`` in [0, 1].
    """
    onnx = DensePredictor.from_export(export_dir, threads=1)
    eager = DensePredictor.from_module(model, onnx.card)
    batches = [inputs[:1], inputs] if len(inputs) > 1 else [inputs]
    want = eager.outputs(inputs)
    got = [onnx.outputs(x) for x in batches]
    if onnx.card.task == DETECTION:
        return _detection_parity(onnx.card, inputs, want, got)
    if onnx.card.task == POSE:
        return _pose_parity(onnx.card, inputs, want, got)
    agree, total, diff = 0, 0, 0.0
    for out in got:
        n = len(out[0])
        expected = want[0][:n]  # (n, K, H, W)
        diff = max(diff, float((out[0] - expected).abs().max()))
        agree += int((out[0].argmax(1) == expected.argmax(1)).sum())
        total += expected.argmax(1).numel()
    agreement = agree / total
    return SegmentationParityReport(
        images=len(inputs),
        batch_sizes=tuple(len(x) for x in batches),
        pixel_agreement=agreement,
        max_abs_diff_logits=diff,
        min_pixel_agreement=MIN_PIXEL_AGREEMENT,
        passed=agreement >= MIN_PIXEL_AGREEMENT,
    )


def _detection_parity(
    card: DenseModelCard,
    inputs: Tensor,
    want: tuple[Tensor, ...],
    got: list[tuple[Tensor, ...]],
) -> DetectionParityReport:
    from torchdojo.nn.boxes import postprocess

    def nms(boxes: Tensor, scores: Tensor) -> list[dict[str, Tensor]]:
        return postprocess(
            boxes,
            scores,
            score_thresh=card.score_thresh,
            iou_thresh=card.iou_thresh,
            max_detections=card.max_detections,
        )

    expected = nms(want[0], want[1])
    raw_boxes = raw_scores = box_diff = score_diff = 0.0
    same_count, tied_images, failed = True, 0, False
    for boxes, scores in got:
        n = len(boxes)
        raw_boxes = max(raw_boxes, float((boxes - want[0][:n]).abs().max()))
        raw_scores = max(raw_scores, float((scores - want[1][:n]).abs().max()))
        for i, (found, reference) in enumerate(zip(nms(boxes, scores), expected, strict=False)):
            same_count = same_count and len(found["boxes"]) == len(reference["boxes"])
            ok, d_box, d_score = match_detections(found, reference)
            ok = ok and len(found["boxes"]) == len(reference["boxes"])
            if ok and d_box <= ATOL_BOXES and d_score <= ATOL_SCORES:
                box_diff, score_diff = max(box_diff, d_box), max(score_diff, d_score)
            elif scores_tied(want[1][i], card.score_thresh):
                tied_images += 1  # NMS chose among equal scores: not the graph's doing
            else:
                failed = True
                box_diff, score_diff = max(box_diff, d_box), max(score_diff, d_score)
    graph_ok = raw_boxes <= ATOL_BOXES and raw_scores <= ATOL_SCORES
    kept_ok = box_diff <= ATOL_BOXES and score_diff <= ATOL_SCORES
    return DetectionParityReport(
        images=len(inputs),
        batch_sizes=tuple(len(out[0]) for out in got),
        detections=sum(len(e["boxes"]) for e in expected),
        same_count=same_count,
        max_abs_diff_boxes=box_diff,
        max_abs_diff_scores=score_diff,
        max_abs_diff_raw_boxes=raw_boxes,
        max_abs_diff_raw_scores=raw_scores,
        tied_images=tied_images,
        atol_boxes=ATOL_BOXES,
        atol_scores=ATOL_SCORES,
        nms=NMS_WHERE,
        passed=graph_ok and kept_ok and not failed,
    )


def scores_tied(scores: Tensor, score_thresh: float, pre_nms_top_k: int = 1000) -> bool:
    """Whether two of the NMS candidates of one image (``scores (A, C)``) score within
    ``ATOL_SCORES`` of each other: then 1e-7 differences can change which box NMS keeps.

    An untrained or barely trained detector scores every box about ``1 / (C + 1)``: its kept
    boxes depend on float rounding in eager PyTorch as much as in ONNX Runtime.
    """
    flat = scores.flatten()
    top = flat[flat > score_thresh].topk(min(pre_nms_top_k + 1, int((flat > score_thresh).sum())))
    gaps = top.values[:-1] - top.values[1:]
    return bool(len(gaps)) and float(gaps.min()) <= ATOL_SCORES


def match_detections(
    found: dict[str, Tensor], reference: dict[str, Tensor]
) -> tuple[bool, float, float]:
    """Pair each found box with the closest unused reference box of the same label.

    Near-equal scores may swap places between two runs, so boxes are paired by position, not
    by rank. Returns whether every box found a partner, and the largest box and score
    differences of the pairs.
    """
    free = torch.ones(len(reference["boxes"]), dtype=torch.bool)
    box_diff = score_diff = 0.0
    for box, score, label in zip(found["boxes"], found["scores"], found["labels"], strict=True):
        distance = (reference["boxes"] - box).abs().amax(dim=1)  # (N,)
        distance[(reference["labels"] != label) | ~free] = float("inf")
        best = int(distance.argmin()) if len(distance) else -1
        if best < 0 or not torch.isfinite(distance[best]):
            return False, float("inf"), float("inf")
        free[best] = False
        box_diff = max(box_diff, float(distance[best]))
        score_diff = max(score_diff, float((reference["scores"][best] - score).abs()))
    return True, box_diff, score_diff


def _pose_parity(
    card: DenseModelCard,
    inputs: Tensor,
    want: tuple[Tensor, ...],
    got: list[tuple[Tensor, ...]],
) -> PoseParityReport:
    _, h, w = card.input_size
    sizes = [(w, h)] * len(inputs)  # keypoints in input pixels
    expected = poses_of(want[0], want[1], sizes, card)
    maps = keypoints = 0.0
    same_count = True
    for heatmaps, pafs in got:
        n = len(heatmaps)
        maps = max(maps, float((heatmaps - want[0][:n]).abs().max()))
        maps = max(maps, float((pafs - want[1][:n]).abs().max()))
        for found, reference in zip(
            poses_of(heatmaps, pafs, sizes[:n], card), expected, strict=False
        ):
            if len(found.people) != len(reference.people):
                same_count = False
                continue
            keypoints = max(keypoints, _match_people(found.people, reference.people))
    return PoseParityReport(
        images=len(inputs),
        batch_sizes=tuple(len(out[0]) for out in got),
        people=sum(len(e.people) for e in expected),
        same_count=same_count,
        max_abs_diff_keypoints=keypoints,
        max_abs_diff_maps=maps,
        atol_keypoints=ATOL_KEYPOINTS,
        passed=same_count and keypoints <= ATOL_KEYPOINTS,
    )


def _match_people(found: Sequence[Person], reference: Sequence[Person]) -> float:
    """Largest keypoint difference after pairing each found person with the closest unused
    reference person; infinite when a keypoint is found in one and not the other."""
    free = list(range(len(reference)))
    worst = 0.0
    for person in found:
        a = torch.tensor(person.keypoints)  # (K, 3)
        distances = []
        for j in free:
            b = torch.tensor(reference[j].keypoints)
            if not torch.equal(a[:, 2] > 0, b[:, 2] > 0):
                distances.append(float("inf"))
                continue
            distances.append(float((a[:, :2] - b[:, :2]).abs().max()) if len(a) else 0.0)
        best = min(range(len(free)), key=distances.__getitem__)
        worst = max(worst, distances[best])
        free.pop(best)
    return worst
