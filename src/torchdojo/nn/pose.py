"""Keypoints and part affinity fields: COCO's person layout and OpenPose's decoding.

Cao et al., 2017, "Realtime Multi-Person 2D Pose Estimation using Part Affinity Fields"
(https://arxiv.org/abs/1611.08050); seed 003 ch4. Taught in lessons/21_pose.py.

A pose network outputs ``heatmaps (K + 1, h, w)`` (one confidence map per keypoint, background
last) and ``pafs (2 L, h, w)`` (a 2-D unit-vector field per limb: channels ``2 l`` and
``2 l + 1`` hold x and y). Decoding, in pure torch, is three steps: :func:`find_peaks` (local
maxima by max-pool non-maximum suppression), :func:`score_limbs` (the line integral of the
PAF along each candidate limb) and :func:`group_people` (the paper's greedy association:
best-scoring limbs first, each keypoint used once per limb, people merged along shared
keypoints). :func:`decode_poses` chains them.

Coordinates are continuous pixels: pixel ``i`` covers ``[i, i + 1)``, its centre is
``i + 0.5``; a map at ``stride`` s has cell ``j`` centred at ``s * (j + 0.5)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

COCO_KEYPOINTS: tuple[str, ...] = (
    "nose",
    "left_eye",
    "right_eye",
    "left_ear",
    "right_ear",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
)
# COCO's 19 limbs (person_keypoints annotations' "skeleton"), 0-based here (COCO's is 1-based).
COCO_SKELETON: tuple[tuple[int, int], ...] = (
    (15, 13),
    (13, 11),
    (16, 14),
    (14, 12),
    (11, 12),
    (5, 11),
    (6, 12),
    (5, 6),
    (5, 7),
    (6, 8),
    (7, 9),
    (8, 10),
    (1, 2),
    (0, 1),
    (0, 2),
    (1, 3),
    (2, 4),
    (3, 5),
    (4, 6),
)
# Per-keypoint OKS falloff of the COCO keypoint evaluation (cocoeval.py, Ronchi & Perona 2017).
COCO_SIGMAS: tuple[float, ...] = (
    0.026,
    0.025,
    0.025,
    0.035,
    0.035,
    0.079,
    0.079,
    0.072,
    0.072,
    0.062,
    0.062,
    0.107,
    0.107,
    0.087,
    0.087,
    0.089,
    0.089,
)


@dataclass(frozen=True)
class DecodeConfig:
    """Thresholds of :func:`decode_poses` (the paper's defaults where they exist).

    Args:
        peak_threshold: A heatmap peak below this is no keypoint.
        window: Side of the max-pool window that suppresses non-maxima (input pixels).
        samples: Points sampled along a candidate limb for the PAF line integral.
        dot_threshold: A sample supports the limb when the PAF's dot product exceeds this.
        min_support: Fraction of the samples that must support a limb.
        min_parts: People with fewer keypoints are dropped.
        min_score: People whose mean keypoint-and-limb score is lower are dropped.
    """

    peak_threshold: float = 0.1
    window: int = 5
    samples: int = 10
    dot_threshold: float = 0.05
    min_support: float = 0.8
    min_parts: int = 3
    min_score: float = 0.2


def find_peaks(heatmaps: Tensor, *, threshold: float = 0.1, window: int = 5) -> list[Tensor]:
    """Local maxima of each keypoint map: ``(n, 3)`` rows of ``x, y, score`` per map.

    A pixel is a peak when it equals the maximum of its ``window x window`` neighbourhood
    (max-pool non-maximum suppression) and exceeds ``threshold``. The position is refined to
    sub-pixel precision by the score-weighted mean of its 3 x 3 neighbourhood.

    Args:
        heatmaps: ``(K, H, W)`` maps (without the background channel).
        threshold: Lowest score of a peak.
        window: Side of the suppression window, odd.
    """
    maps = heatmaps.float()  # (K, H, W)
    H, W = maps.shape[-2:]
    # a plateau (two equal neighbours) must give one peak: break ties by position, in float64
    ramp = torch.arange(H * W, dtype=torch.float64).view(H, W) * 1e-12
    tied = maps.double() + ramp
    pooled = F.max_pool2d(tied[None], window, stride=1, padding=window // 2)[0]
    is_peak = (tied == pooled) & (maps > threshold)  # (K, H, W)
    padded = F.pad(maps.clamp_min(0), (1, 1, 1, 1))  # (K, H + 2, W + 2)
    offsets = torch.tensor([-1, 0, 1])
    peaks = []
    for k in range(maps.shape[0]):
        ys, xs = is_peak[k].nonzero(as_tuple=True)  # (n,) each
        # the 3x3 neighbourhood of each peak: (n, 3, 3), rows dy, columns dx
        patch = padded[
            k, (ys + 1)[:, None, None] + offsets[:, None], (xs + 1)[:, None, None] + offsets
        ]
        total = patch.sum((1, 2)).clamp_min(1e-12)
        dx = (patch.sum(1) * offsets).sum(1) / total  # score-weighted mean offset
        dy = (patch.sum(2) * offsets).sum(1) / total
        x, y = xs.float() + 0.5 + dx, ys.float() + 0.5 + dy
        peaks.append(torch.stack([x, y, maps[k, ys, xs]], 1))  # (n, 3)
    return peaks


def score_limbs(
    paf: Tensor,
    starts: Tensor,
    ends: Tensor,
    *,
    samples: int = 10,
    dot_threshold: float = 0.05,
    min_support: float = 0.8,
) -> Tensor:
    """The PAF line integral of every candidate limb ``starts[i] -> ends[j]``: ``(n, m)``.

    ``samples`` points are read on the segment (the centres of ``samples`` equal pieces, in the
    pixel that holds each); each contributes the dot
    product of the field with the segment's unit direction. The score is their mean, plus the
    paper's length prior ``min(0, H / (2 * length) - 1)`` (long limbs pay); a candidate whose
    share of supporting samples (dot > ``dot_threshold``) is below ``min_support`` scores
    ``-inf``. A true limb scores about 1, a pairing across people about 0.

    Args:
        paf: ``(2, H, W)`` x and y of one limb's field, in input pixels.
        starts: ``(n, 2)`` x, y of the limb's first keypoint candidates.
        ends: ``(m, 2)`` x, y of its second keypoint candidates.
        samples: Points sampled along each segment.
        dot_threshold: The dot product a sample needs to support the limb.
        min_support: Fraction of supporting samples a limb needs.
    """
    H, W = paf.shape[-2:]
    n, m = len(starts), len(ends)
    if n == 0 or m == 0:
        return torch.empty(n, m)
    vec = ends[None, :, :2] - starts[:, None, :2]  # (n, m, 2)
    length = vec.norm(dim=-1).clamp_min(1e-6)  # (n, m)
    unit = vec / length[..., None]  # (n, m, 2)
    t = (torch.arange(samples) + 0.5) / samples  # (S,) the midpoint rule for the integral
    points = starts[:, None, None, :2] + t[None, None, :, None] * vec[:, :, None]  # (n, m, S, 2)
    # point (x, y) lies in pixel (floor x, floor y)
    xs = points[..., 0].floor().long().clamp(0, W - 1)
    ys = points[..., 1].floor().long().clamp(0, H - 1)
    field = paf.float()[:, ys, xs]  # (2, n, m, S)
    dots = field[0] * unit[..., None, 0] + field[1] * unit[..., None, 1]  # (n, m, S)
    prior = (0.5 * H / length - 1).clamp(max=0)  # (n, m)
    score = dots.mean(-1) + prior
    support = (dots > dot_threshold).float().mean(-1)
    return score.masked_fill(support < min_support, float("-inf"))


def connect_limbs(scores: Tensor) -> list[tuple[int, int, float]]:
    """Greedy bipartite matching: the best-scoring pairs first, each candidate used once.

    Args:
        scores: ``(n, m)`` limb scores from :func:`score_limbs` (``-inf`` or <= 0: no limb).

    Returns:
        ``(i, j, score)`` of the accepted limbs, best first.
    """
    flat = scores.flatten()
    order = flat.argsort(descending=True).tolist()
    used_i: set[int] = set()
    used_j: set[int] = set()
    limbs = []
    m = scores.shape[1]
    for index in order:
        score = float(flat[index])
        if not score > 0:
            break
        i, j = divmod(index, m)
        if i in used_i or j in used_j:
            continue
        used_i.add(i)
        used_j.add(j)
        limbs.append((i, j, score))
    return limbs


@dataclass
class _Person:
    parts: list[int]  # peak index per keypoint, -1: not found
    score: float = 0.0  # sum of peak and limb scores
    count: int = 0  # keypoints found
    limbs: int = 0


def group_people(
    peaks: Sequence[Tensor],
    connections: Sequence[list[tuple[int, int, float]]],
    skeleton: Sequence[tuple[int, int]],
    *,
    min_parts: int = 3,
    min_score: float = 0.2,
) -> tuple[Tensor, Tensor]:
    """Assemble accepted limbs into people (OpenPose's greedy association).

    Limbs are taken in skeleton order: a limb touching one person's keypoint extends that
    person; a limb joining two people with no keypoint type in common merges them; a limb
    touching nobody starts a new person. People with fewer than ``min_parts`` keypoints or a
    mean score under ``min_score`` are dropped.

    Args:
        peaks: Per keypoint, ``(n_k, 3)`` x, y, score (from :func:`find_peaks`).
        connections: Per limb, the accepted ``(i, j, score)`` (from :func:`connect_limbs`).
        skeleton: ``(a, b)`` keypoint indices of each limb.
        min_parts: Fewest keypoints a person must have.
        min_score: Lowest mean score per keypoint.

    Returns:
        ``keypoints (P, K, 3)`` (x, y, peak score; zeros where a keypoint is missing) and
        ``scores (P,)`` (mean peak score times the fraction of keypoints found).
    """
    K = len(peaks)
    people: list[_Person] = []
    for (a, b), limbs in zip(skeleton, connections, strict=True):
        for i, j, score in limbs:
            gain = score + float(peaks[a][i, 2]) + float(peaks[b][j, 2])
            found = [p for p in people if p.parts[a] == i or p.parts[b] == j]
            if len(found) == 2 and _disjoint(found[0], found[1]):
                _merge(found[0], found[1], score)
                people.remove(found[1])
            elif found:
                _extend(found[0], a, i, b, j, score, peaks)
            else:
                parts = [-1] * K
                parts[a], parts[b] = i, j
                people.append(_Person(parts, score=gain, count=2, limbs=1))
    kept = [p for p in people if p.count >= min_parts and p.score / p.count >= min_score]
    keypoints = torch.zeros(len(kept), K, 3)
    scores = torch.zeros(len(kept))
    for n, person in enumerate(kept):
        for k, index in enumerate(person.parts):
            if index >= 0:
                keypoints[n, k] = peaks[k][index]
        present = keypoints[n, :, 2] > 0
        scores[n] = keypoints[n, present, 2].mean() * present.float().mean()
    return keypoints, scores


def _disjoint(p: _Person, q: _Person) -> bool:
    return all(x < 0 or y < 0 for x, y in zip(p.parts, q.parts, strict=True))


def _merge(p: _Person, q: _Person, score: float) -> None:
    p.parts = [x if x >= 0 else y for x, y in zip(p.parts, q.parts, strict=True)]
    p.score += q.score + score
    p.count += q.count
    p.limbs += q.limbs + 1


def _extend(
    p: _Person, a: int, i: int, b: int, j: int, score: float, peaks: Sequence[Tensor]
) -> None:
    """Add the limb's missing end to ``p`` (no-op when both ends are taken)."""
    if p.parts[a] == i and p.parts[b] < 0:
        p.parts[b] = j
        p.score += score + float(peaks[b][j, 2])
    elif p.parts[b] == j and p.parts[a] < 0:
        p.parts[a] = i
        p.score += score + float(peaks[a][i, 2])
    else:
        return
    p.count += 1
    p.limbs += 1


def decode_poses(
    heatmaps: Tensor,
    pafs: Tensor,
    skeleton: Sequence[tuple[int, int]],
    *,
    image_size: tuple[int, int],
    config: DecodeConfig | None = None,
) -> tuple[Tensor, Tensor]:
    """People in one image from a pose network's maps: ``keypoints (P, K, 3)``, ``scores (P,)``.

    The maps are resized to the input image (bicubic, as the paper does), then decoded with
    :func:`find_peaks`, :func:`score_limbs`, :func:`connect_limbs` and :func:`group_people`.

    Args:
        heatmaps: ``(K + 1, h, w)`` keypoint maps, background last.
        pafs: ``(2 L, h, w)`` limb fields.
        skeleton: ``(a, b)`` keypoint indices of the L limbs.
        image_size: ``(H, W)`` of the input image, whose pixels the keypoints are in.
        config: Thresholds (defaults: :class:`DecodeConfig`).
    """
    cfg = config or DecodeConfig()
    maps = torch.cat([heatmaps[:-1], pafs]).float()[None]  # (1, K + 2L, h, w)
    maps = F.interpolate(maps, size=image_size, mode="bicubic", align_corners=False)[0]
    K = heatmaps.shape[0] - 1
    peaks = find_peaks(maps[:K], threshold=cfg.peak_threshold, window=cfg.window)
    connections = []
    for limb, (a, b) in enumerate(skeleton):
        field_xy = maps[K + 2 * limb : K + 2 * limb + 2]  # (2, H, W)
        scores = score_limbs(
            field_xy,
            peaks[a],
            peaks[b],
            samples=cfg.samples,
            dot_threshold=cfg.dot_threshold,
            min_support=cfg.min_support,
        )
        connections.append(connect_limbs(scores))
    return group_people(
        peaks, connections, skeleton, min_parts=cfg.min_parts, min_score=cfg.min_score
    )


__all__ = [
    "COCO_KEYPOINTS",
    "COCO_SIGMAS",
    "COCO_SKELETON",
    "DecodeConfig",
    "connect_limbs",
    "decode_poses",
    "find_peaks",
    "group_people",
    "score_limbs",
]
