"""Scaling high-depth (16-bit, float) intensities to [0, 1] or to 8 bits, numpy only.

One home for the scaling that training (``torchdojo.data.segmentation``,
``torchdojo.data.transforms``) and inference (``torchdojo.export.dense``) must apply alike. A
segmentation model records which scaling it was trained with (``ModelSpec.preprocess
["intensity"]``, a key of :data:`SCALINGS`), and predict, export and serve apply that one.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

# Own 16-bit images: per image, these percentiles map to 0 and 1, then clip.
PERCENTILES = (1.0, 99.8)
# BBBC039: a fixed log scale, ln(100) -> 0 and ln(4095) -> 1 (its 12-bit range). Measured:
# per-image percentiles (1st/99.8th) stretch the noise of the one empty test image into
# "nuclei" and dim the nuclei of images with a few very bright ones (U-Net test Dice 0.85).
LOG_RANGE = (100.0, 4095.0)


def normalize_percentiles(
    raw: np.ndarray, low: float = PERCENTILES[0], high: float = PERCENTILES[1]
) -> np.ndarray:
    """Map the image's ``low``-th percentile to 0 and its ``high``-th to 1, clipped to [0, 1].

    Per image, so dim and bright fields of view look alike; used for users' 16-bit images
    (an empty field's noise gets stretched: BBBC039 uses :func:`log_scale` instead).
    """
    raw = raw.astype(np.float32)
    lo, hi = np.percentile(raw, [low, high])
    scaled = (raw - np.float32(lo)) / np.float32(max(float(hi - lo), 1e-6))
    return np.clip(scaled, 0.0, 1.0).astype(np.float32)


def log_scale(raw: np.ndarray, low: float = LOG_RANGE[0], high: float = LOG_RANGE[1]) -> np.ndarray:
    """Map intensities to [0, 1] on a fixed log scale: ``low`` -> 0, ``high`` -> 1, clipped.

    The same for every image, so an empty field stays dark and dim nuclei stay visible
    (fluorescence intensities span a factor of ~10 between background and nuclei).
    """
    clipped = np.clip(raw.astype(np.float32), low, high)
    return ((np.log(clipped) - np.log(low)) / (np.log(high) - np.log(low))).astype(np.float32)


# The scalings a model may name in ``ModelSpec.preprocess["intensity"]``.
SCALINGS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "percentiles": normalize_percentiles,
    "log": log_scale,
}


def scale_intensity(raw: np.ndarray, scaling: str = "percentiles") -> np.ndarray:
    """Scale a high-depth grayscale image to float32 [0, 1] by the named scaling.

    Raises:
        ValueError: ``scaling`` is not a key of :data:`SCALINGS`.
    """
    if scaling not in SCALINGS:
        raise ValueError(f"intensity scaling {scaling!r}: use one of {', '.join(SCALINGS)}")
    return SCALINGS[scaling](raw)


def to_uint8(pixels: np.ndarray, mode: str) -> np.ndarray:
    """High-depth pixels of a Pillow ``mode`` as 8 bits, scaled, never clipped to white.

    16-bit images (``I;16*`` modes, or any values above 255) are scaled by the full 16-bit
    range (or their maximum when larger); float images (``F``) in [0, 1] by 255; the rest are
    rounded as they are.
    """
    values = pixels.astype(np.float64)
    peak = float(values.max()) if values.size else 0.0
    if mode.startswith("I;16") or peak > 255:
        values = values / max(65535.0, peak) * 255.0
    elif mode == "F" and peak <= 1.0:
        values = values * 255.0
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)
