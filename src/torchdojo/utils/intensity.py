"""Scaling high-depth (16-bit) microscopy intensities to [0, 1], numpy only.

One home for the scaling that training (``torchdojo.data.segmentation``) and inference
(``torchdojo.export.dense``) must apply alike.
"""

from __future__ import annotations

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
