"""Pose drawings: skeletons on images, per-keypoint PCK bars, heatmaps and part affinity fields.

Used by the ``pose-estimation`` recipe's report and lessons/21_pose.py; :func:`draw_poses`
is the one to reuse in ``predict`` (it returns an image array, no figure).
"""

from __future__ import annotations

import colorsys
from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure
from PIL import Image, ImageDraw
from torch import Tensor


def limb_colours(count: int) -> list[tuple[int, int, int]]:
    """``count`` evenly spaced hues (OpenPose's rainbow of limbs), as RGB 0-255."""
    colours = []
    for i in range(count):
        r, g, b = colorsys.hsv_to_rgb(i / max(count, 1), 0.9, 1.0)
        colours.append((round(r * 255), round(g * 255), round(b * 255)))
    return colours


def to_uint8_image(image: Tensor | np.ndarray) -> np.ndarray:
    """``(3, H, W)`` float in [0, 1] (tensor or array) or ``(H, W, 3)`` uint8 -> ``(H, W, 3)``
    uint8."""
    array = image.detach().cpu().numpy() if isinstance(image, Tensor) else np.asarray(image)
    if array.dtype == np.uint8:
        return array
    return (np.clip(array.transpose(1, 2, 0), 0, 1) * 255).round().astype(np.uint8)


def draw_poses(
    image: Tensor | np.ndarray,
    keypoints: Tensor | np.ndarray,
    skeleton: Sequence[tuple[int, int]],
    *,
    scale: int = 2,
    thickness: float = 1.5,
) -> np.ndarray:
    """Draw people's skeletons on ``image``: a coloured segment per limb, a dot per keypoint.

    Args:
        image: ``(3, H, W)`` float in [0, 1] or ``(H, W, 3)`` uint8.
        keypoints: ``(P, K, 3)`` x, y and v (ground truth) or score (predictions), in the
            image's pixels; keypoints whose third value is 0 are not drawn.
        skeleton: ``(a, b)`` keypoint indices of each limb.
        scale: The drawing is this many times larger than the image (thin lines stay visible).
        thickness: Limb width in image pixels.

    Returns:
        ``(H * scale, W * scale, 3)`` uint8.
    """
    base = Image.fromarray(to_uint8_image(image))
    canvas = base.resize((base.width * scale, base.height * scale), Image.Resampling.NEAREST)
    draw = ImageDraw.Draw(canvas)
    kps = np.asarray(keypoints.detach().cpu() if isinstance(keypoints, Tensor) else keypoints)
    colours = limb_colours(len(skeleton))
    width = max(1, round(thickness * scale))
    for person in kps.reshape(-1, kps.shape[-2], 3):  # (K, 3) each
        for (a, b), colour in zip(skeleton, colours, strict=True):
            if person[a, 2] > 0 and person[b, 2] > 0:
                ends = [tuple(float(v) * scale for v in person[k, :2]) for k in (a, b)]
                draw.line(ends, fill=colour, width=width)
        for x, y, v in person:
            if v > 0:
                r = width
                draw.ellipse(
                    [x * scale - r, y * scale - r, x * scale + r, y * scale + r],
                    fill=(255, 255, 255),
                    outline=(0, 0, 0),
                )
    return np.asarray(canvas)


def pose_comparison_figure(
    images: Sequence[Tensor | np.ndarray],
    predicted: Sequence[Tensor | np.ndarray],
    truth: Sequence[Tensor | np.ndarray],
    skeleton: Sequence[tuple[int, int]],
    *,
    titles: Sequence[str] | None = None,
) -> Figure:
    """Predicted skeletons beside the ground truth: one row per image (prediction | truth)."""
    n = len(images)
    fig = Figure(figsize=(5.0, 2.6 * n))  # a plain grid: constrained layout costs seconds here
    axes = fig.subplots(n, 2, squeeze=False, gridspec_kw={"wspace": 0.05, "hspace": 0.3})
    fig.subplots_adjust(left=0.02, right=0.98, top=1 - 0.35 / n, bottom=0.02)
    for i in range(n):
        for ax, people, label in (
            (axes[i, 0], predicted[i], "predicted"),
            (axes[i, 1], truth[i], "ground truth"),
        ):
            ax.imshow(draw_poses(images[i], people, skeleton))
            title = f"{label}: {len(people)} people"
            if titles is not None and label == "predicted":
                title = f"{title}\n{titles[i]}"
            ax.set_title(title, fontsize=8)
            ax.axis("off")
    return fig


def pck_figure(
    names: Sequence[str],
    values: Sequence[float],
    *,
    alpha: float = 0.2,
    overall: float | None = None,
) -> Figure:
    """Per-keypoint PCK as horizontal bars, with the overall value as a line."""
    fig = Figure(figsize=(6, 0.3 * len(names) + 1.2), layout="constrained")
    ax = fig.subplots()
    y = np.arange(len(names))
    ax.barh(y, values, color="tab:blue")
    ax.set_yticks(y, labels=list(names), fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel(f"PCK@{alpha:g} (fraction of keypoints within {alpha:g} x box size)")
    if overall is not None:
        ax.axvline(overall, color="tab:red", linestyle="--", label=f"all keypoints: {overall:.3f}")
        ax.legend(loc="lower left", fontsize=8)
    for yi, v in zip(y, values, strict=True):
        ax.text(min(v, 0.9) + 0.01, float(yi), f"{v:.2f}", va="center", fontsize=7)
    return fig


def maps_figure(
    image: Tensor | np.ndarray,
    heatmaps: Tensor | np.ndarray,
    pafs: Tensor | np.ndarray,
    skeleton: Sequence[tuple[int, int]],
    names: Sequence[str],
    *,
    limbs: Sequence[int] = (),
) -> Figure:
    """One image, the maximum of its keypoint heatmaps, and its PAFs (magnitude of all limbs,
    plus arrows of ``limbs``) as a network or a target gives them.

    Args:
        image: ``(3, H, W)`` float in [0, 1] or ``(H, W, 3)`` uint8.
        heatmaps: ``(K + 1, h, w)``, background last.
        pafs: ``(2 L, h, w)``.
        skeleton: ``(a, b)`` keypoint indices of the L limbs.
        names: Keypoint names (for the arrow panels' titles).
        limbs: Limbs whose field is drawn as arrows (default: the first two).
    """
    heat = np.asarray(heatmaps.detach().cpu() if isinstance(heatmaps, Tensor) else heatmaps)
    fields = np.asarray(pafs.detach().cpu() if isinstance(pafs, Tensor) else pafs)
    chosen = list(limbs) or [0, 1]
    fig = Figure(figsize=(3.0 * (3 + len(chosen)), 3.2))
    axes = fig.subplots(1, 3 + len(chosen), gridspec_kw={"wspace": 0.05})
    fig.subplots_adjust(left=0.01, right=0.99, top=0.88, bottom=0.02)
    picture = to_uint8_image(image)
    extent = (0, picture.shape[1], picture.shape[0], 0)
    axes[0].imshow(picture)
    axes[0].set_title("image", fontsize=9)
    axes[1].imshow(picture)
    axes[1].imshow(heat[:-1].max(0), cmap="magma", alpha=0.7, extent=extent, vmin=0, vmax=1)
    axes[1].set_title("keypoint heatmaps (max)", fontsize=9)
    magnitude = np.sqrt(fields[0::2] ** 2 + fields[1::2] ** 2).max(0)
    axes[2].imshow(picture)
    axes[2].imshow(magnitude, cmap="viridis", alpha=0.7, extent=extent, vmin=0, vmax=1)
    axes[2].set_title("PAF magnitude (max over limbs)", fontsize=9)
    h, w = heat.shape[-2:]
    stride = picture.shape[0] / h
    ys, xs = (np.mgrid[0:h, 0:w] + 0.5) * stride
    for ax, limb in zip(axes[3:], chosen, strict=True):
        u, v = fields[2 * limb], fields[2 * limb + 1]
        keep = np.hypot(u, v) > 0.2
        ax.imshow(picture, alpha=0.6)
        ax.quiver(xs[keep], ys[keep], u[keep], -v[keep], color="red", scale=20, width=0.006)
        a, b = skeleton[limb]
        ax.set_title(f"PAF {names[a]} -> {names[b]}", fontsize=8)
    for ax in axes:
        ax.axis("off")
    return fig


__all__ = [
    "draw_poses",
    "limb_colours",
    "maps_figure",
    "pck_figure",
    "pose_comparison_figure",
    "to_uint8_image",
]
