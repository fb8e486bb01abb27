"""What pose recipes share: OpenPose training steps, decoding a data set, PCK and OKS AP.

A pose recipe trains a model with ``stages(x)`` (:class:`~torchdojo.models.openpose.OpenPose`)
on batches of :class:`~torchdojo.data.poses.PoseCollate` with ``ctx.fit(task,
step=pose_step, eval_step=pose_eval_step)``, then decodes the held-out images with
:func:`predict_poses` and scores them with :func:`evaluate_poses`:

- **PCK@0.2** (Yang & Ramanan, 2013): a labelled keypoint is correct when the matched
  predicted person has it within ``0.2 x max(box width, box height)`` of the truth. People are
  matched one-to-one per image by the Hungarian algorithm on OKS; a person with no match gets
  all keypoints wrong. ``pck_torso`` uses the LSP convention instead (0.2 x the distance from
  left shoulder to right hip, people where both are labelled), a stricter number.
- **OKS AP** (COCO keypoint evaluation via faster-coco-eval, ``iouType="keypoints"``, COCO's
  17 sigmas): AP over OKS thresholds 0.50:0.95, AP50 and AP75. The object scale is the box
  area (stick figures have almost no pixel area; COCO uses the person's segment area).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from torchdojo.engine import EvalOutput, StepOutput, Trainer
from torchdojo.models.openpose import pose_loss
from torchdojo.nn.pose import COCO_SIGMAS, DecodeConfig, decode_poses

PCK_ALPHA = 0.2
Poses = list[tuple[Tensor, Tensor]]  # per image: keypoints (P, K, 3), scores (P,)


def _stages(trainer: Trainer, images: Tensor) -> list[tuple[Tensor, Tensor]]:
    model = getattr(trainer.model, "module", trainer.model)  # DDP / compile wrappers
    model = getattr(model, "_orig_mod", model)
    stages = cast(Callable[[Tensor], list[tuple[Tensor, Tensor]]], model.stages)
    return stages(images)


def last_stage_loss(outputs: tuple[Tensor, Tensor], targets: tuple[Tensor, Tensor]) -> Tensor:
    """:func:`~torchdojo.models.openpose.pose_loss` of ``model(x)`` (the last stage) against
    ``(heatmaps, pafs)``: the ``Setup.loss_fn`` of pose recipes."""
    return pose_loss([outputs], *targets)


def pose_step(trainer: Trainer, batch: Any, *, positive_weight: float = 0.0) -> StepOutput:
    """One optimizer step: the paper's L2 loss on heatmaps and PAFs, summed over stages
    (``positive_weight``: see :func:`~torchdojo.models.openpose.pose_loss`)."""
    images, heatmaps, pafs, _ = batch
    with trainer.autocast():
        outputs = _stages(trainer, images)
        loss = pose_loss(outputs, heatmaps, pafs, positive_weight=positive_weight)
    trainer.backward(loss)
    trainer.step_optimizer()
    return StepOutput(loss=loss.detach(), batch_size=len(images))


def pose_eval_step(trainer: Trainer, batch: Any, *, positive_weight: float = 0.0) -> EvalOutput:
    """The validation loss of one batch (keypoint metrics come after training)."""
    images, heatmaps, pafs, targets = batch
    loss = pose_loss(_stages(trainer, images), heatmaps, pafs, positive_weight=positive_weight)
    return EvalOutput(loss=loss, preds=None, target=targets, batch_size=len(images))


@torch.inference_mode()
def predict_poses(
    model: nn.Module,
    dataset: Dataset[Any],
    skeleton: Sequence[tuple[int, int]],
    *,
    batch_size: int = 32,
    decode: DecodeConfig | None = None,
) -> Poses:
    """Decoded people of every image in ``dataset``: ``(keypoints (P, K, 3), scores (P,))``."""
    model.eval()
    device = next(model.parameters()).device
    results: Poses = []
    n = len(dataset)  # type: ignore[arg-type]
    for start in range(0, n, batch_size):
        images = torch.stack([dataset[i][0] for i in range(start, min(start + batch_size, n))])
        size = (int(images.shape[-2]), int(images.shape[-1]))
        heat, fields = model(images.to(device))
        for h, f in zip(heat.cpu(), fields.cpu(), strict=True):
            results.append(decode_poses(h, f, skeleton, image_size=size, config=decode))
    return results


# ------------------------------------------------------------------------- metrics


def oks(pred: Tensor, truth: Tensor, areas: Tensor, sigmas: Sequence[float]) -> Tensor:
    """COCO's object keypoint similarity of every true person with every prediction: (P, Q).

    ``exp(-d^2 / (2 s^2 (2 sigma_k)^2))`` averaged over the true person's labelled keypoints,
    ``s^2`` its area; a keypoint the prediction lacks counts 0.
    """
    if len(truth) == 0 or len(pred) == 0:
        return torch.zeros(len(truth), len(pred))
    var = (2 * torch.tensor(sigmas)) ** 2  # (K,)
    d2 = ((truth[:, None, :, :2] - pred[None, :, :, :2]) ** 2).sum(-1)  # (P, Q, K)
    e = d2 / var / (areas[:, None, None] + 1e-9) / 2
    found = (pred[None, :, :, 2] > 0).float()  # (1, Q, K)
    labelled = (truth[:, None, :, 2] > 0).float()  # (P, 1, K)
    score = (torch.exp(-e) * found * labelled).sum(-1)
    return score / labelled.sum(-1).clamp_min(1)


def match_people(
    pred: Tensor, truth: Tensor, areas: Tensor, sigmas: Sequence[float]
) -> list[tuple[int, int]]:
    """One-to-one ``(true, predicted)`` pairs maximizing the total OKS (Hungarian algorithm)."""
    from scipy.optimize import linear_sum_assignment

    similarity = oks(pred, truth, areas, sigmas)
    if similarity.numel() == 0:
        return []
    rows, cols = linear_sum_assignment(-similarity.numpy())
    return [(int(r), int(c)) for r, c in zip(rows, cols, strict=True)]


@dataclass
class PoseScores:
    """PCK per keypoint and overall (box- and torso-normalized) and COCO OKS AP."""

    pck_per_keypoint: list[float]
    pck: float
    pck_torso: float
    oks_ap: float
    oks_ap50: float
    oks_ap75: float
    people: int
    predicted_people: int

    def metrics(self) -> dict[str, float]:
        """The run's final numbers, ``test_`` prefixed."""
        return {
            "test_pck": self.pck,
            "test_pck_torso": self.pck_torso,
            "test_oks_ap": self.oks_ap,
            "test_oks_ap50": self.oks_ap50,
            "test_oks_ap75": self.oks_ap75,
        }


def evaluate_poses(
    predictions: Poses,
    truths: Sequence[tuple[Tensor, Tensor]],
    *,
    sigmas: Sequence[float] = COCO_SIGMAS,
    image_size: tuple[int, int] = (128, 128),
    alpha: float = PCK_ALPHA,
) -> PoseScores:
    """PCK@``alpha`` and OKS AP of ``predictions`` against ``truths`` (keypoints, boxes)."""
    K = len(sigmas)
    hits, totals = np.zeros(K), np.zeros(K)
    torso_hits = torso_total = 0.0
    for (pred, _), (truth, boxes) in zip(predictions, truths, strict=True):
        areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        pairs = dict(match_people(pred, truth, areas, sigmas))
        side = (boxes[:, 2:] - boxes[:, :2]).amax(1)  # (P,)
        for p in range(len(truth)):
            labelled = (truth[p, :, 2] > 0).numpy()
            totals += labelled
            if p not in pairs:
                continue
            guess = pred[pairs[p]]
            dist = (guess[:, :2] - truth[p, :, :2]).norm(dim=1)
            ok = ((dist <= alpha * side[p]) & (guess[:, 2] > 0)).numpy() & labelled
            hits += ok
            if K == 17 and truth[p, 5, 2] > 0 and truth[p, 12, 2] > 0:
                torso = float((truth[p, 5, :2] - truth[p, 12, :2]).norm())
                torso_ok = ((dist <= alpha * torso) & (guess[:, 2] > 0)).numpy() & labelled
                torso_hits += torso_ok.sum()
                torso_total += labelled.sum()
    ap = coco_keypoint_ap(predictions, truths, sigmas=sigmas, image_size=image_size)
    return PoseScores(
        pck_per_keypoint=(hits / np.maximum(totals, 1)).tolist(),
        pck=float(hits.sum() / max(totals.sum(), 1)),
        pck_torso=float(torso_hits / max(torso_total, 1)) if K == 17 else float("nan"),
        oks_ap=ap[0],
        oks_ap50=ap[1],
        oks_ap75=ap[2],
        people=sum(len(t) for t, _ in truths),
        predicted_people=sum(len(p) for p, _ in predictions),
    )


def coco_ground_truth(
    truths: Sequence[tuple[Tensor, Tensor]], *, num_keypoints: int, image_size: tuple[int, int]
) -> dict[str, Any]:
    """A COCO keypoints dict (images, annotations, categories) of ``truths``; ids from 1."""
    H, W = image_size
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    for index, (keypoints, boxes) in enumerate(truths):
        images.append({"id": index + 1, "width": W, "height": H, "file_name": f"{index}.png"})
        for kps, box in zip(keypoints, boxes, strict=True):
            x0, y0, x1, y1 = (float(v) for v in box)
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": index + 1,
                    "category_id": 1,
                    "keypoints": kps.flatten().tolist(),
                    "num_keypoints": int((kps[:, 2] > 0).sum()),
                    "bbox": [x0, y0, x1 - x0, y1 - y0],
                    "area": (x1 - x0) * (y1 - y0),
                    "iscrowd": 0,
                }
            )
    category = {"id": 1, "name": "person", "keypoints": [str(k) for k in range(num_keypoints)]}
    return {"images": images, "annotations": annotations, "categories": [category]}


def coco_keypoint_ap(
    predictions: Poses,
    truths: Sequence[tuple[Tensor, Tensor]],
    *,
    sigmas: Sequence[float] = COCO_SIGMAS,
    image_size: tuple[int, int] = (128, 128),
) -> tuple[float, float, float]:
    """COCO keypoint AP (OKS 0.50:0.95), AP50 and AP75 with faster-coco-eval."""
    from faster_coco_eval import COCO, COCOeval_faster

    gt = COCO(coco_ground_truth(truths, num_keypoints=len(sigmas), image_size=image_size))
    results = [
        {
            "image_id": index + 1,
            "category_id": 1,
            "keypoints": torch.cat([kps[:, :2], (kps[:, 2:] > 0).float()], 1).flatten().tolist(),
            "score": float(score),
        }
        for index, (people, scores) in enumerate(predictions)
        for kps, score in zip(people, scores, strict=True)
    ]
    if not results or not gt.dataset["annotations"]:
        return 0.0, 0.0, 0.0
    evaluator = COCOeval_faster(
        gt,
        gt.loadRes(results),
        iouType="keypoints",
        kpt_oks_sigmas=list(sigmas),
        print_function=lambda *a: None,
    )
    evaluator.evaluate()
    evaluator.accumulate()
    evaluator.summarize()
    stats = [max(float(s), 0.0) for s in evaluator.stats[:3]]  # -1: no people of a range
    return stats[0], stats[1], stats[2]


__all__ = [
    "PCK_ALPHA",
    "PoseScores",
    "coco_ground_truth",
    "coco_keypoint_ap",
    "evaluate_poses",
    "last_stage_loss",
    "match_people",
    "oks",
    "pose_eval_step",
    "pose_step",
    "predict_poses",
]
