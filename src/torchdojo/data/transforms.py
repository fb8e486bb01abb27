"""Image loading and ImageNet-style transforms (torchvision transforms v2).

``load_image_rgb`` is the one way the library turns a file into pixels: any Pillow mode
(CMYK, 16-bit, palette, alpha, grayscale) becomes 8-bit RGB, upright per its EXIF tag.
The train/eval pipelines follow torchvision's classification reference presets.
Taught in lessons on transfer learning; used by ``ImageFolderData`` and the image recipes.
``CropFlip`` augments whole uint8 batches in torch, for in-memory sets (fashion-mnist-cnn).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps
from torch import Tensor
from torchvision.transforms import v2

from torchdojo.data.arrays import Normalize
from torchdojo.utils.intensity import to_uint8

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)

Augment = Literal["none", "trivial", "randaugment"]
AUGMENTS: tuple[str, ...] = ("none", "trivial", "randaugment")

_HIGH_DEPTH_MODES = frozenset({"I", "F", "I;16", "I;16B", "I;16L", "I;16N"})
_ALPHA_MODES = frozenset({"RGBA", "LA", "PA", "RGBa", "La"})


def load_image_rgb(path: str | Path) -> Image.Image:
    """Open an image file as an upright 8-bit RGB image.

    EXIF orientation is applied, 16-bit and float images are scaled down to 8 bits
    (not clipped), transparency is composited onto white, palette and CMYK become RGB.

    Args:
        path: Image file.

    Returns:
        A fully loaded RGB image, detached from the file.

    Raises:
        OSError: The file is missing, not an image, or truncated (Pillow's errors).
    """
    with Image.open(path) as img:
        img.load()  # decode now: truncation raises here, not later in a worker
        upright = ImageOps.exif_transpose(img)
    return to_rgb(upright)


def to_rgb(img: Image.Image) -> Image.Image:
    """Convert an image of any Pillow mode to 8-bit RGB."""
    if img.mode == "RGB":
        return img
    if img.mode in _HIGH_DEPTH_MODES:
        return _high_depth_to_rgb(img)
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")  # Pillow warns when a transparent palette goes straight to RGB
    if img.mode in _ALPHA_MODES:
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


def _high_depth_to_rgb(img: Image.Image) -> Image.Image:
    # Pillow's convert("RGB") clips 16-bit values at 255, turning most pixels white.
    gray = to_uint8(np.asarray(img), img.mode)
    return Image.fromarray(gray, mode="L").convert("RGB")


def train_transforms(
    *,
    image_size: int = 224,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
    augment: Augment = "none",
    random_erasing: float = 0.0,
    hflip: float = 0.5,
    min_scale: float = 0.08,
) -> v2.Compose:
    """Training pipeline: random resized crop, flip, optional policy, normalize, erase.

    Args:
        image_size: Side of the square output crop.
        mean: Per-channel mean for normalization (ImageNet's by default).
        std: Per-channel standard deviation for normalization.
        augment: ``"trivial"`` (TrivialAugmentWide), ``"randaugment"`` or ``"none"``.
        random_erasing: Probability of RandomErasing on the normalized tensor.
        hflip: Probability of a horizontal flip.
        min_scale: Smallest area fraction RandomResizedCrop may keep.

    Returns:
        A transform from a PIL image to a float tensor of shape (3, image_size, image_size).
    """
    if augment not in AUGMENTS:
        raise ValueError(f"unknown augment {augment!r}; choose one of {', '.join(AUGMENTS)}")
    steps: list[v2.Transform] = [
        v2.RandomResizedCrop(image_size, scale=(min_scale, 1.0), antialias=True),
    ]
    if hflip > 0:
        steps.append(v2.RandomHorizontalFlip(p=hflip))
    if augment == "trivial":
        steps.append(v2.TrivialAugmentWide())
    elif augment == "randaugment":
        steps.append(v2.RandAugment())
    steps += _to_normalized_tensor(mean, std)
    if random_erasing > 0:
        steps.append(v2.RandomErasing(p=random_erasing))
    return v2.Compose(steps)


def eval_transforms(
    *,
    image_size: int = 224,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
    crop_fraction: float = 0.875,
) -> v2.Compose:
    """Evaluation pipeline: resize the short side, center crop, normalize.

    Args:
        image_size: Side of the square output crop.
        mean: Per-channel mean for normalization.
        std: Per-channel standard deviation for normalization.
        crop_fraction: ``image_size / resize_size``; 0.875 gives the classic 256 -> 224.

    Returns:
        A transform from a PIL image to a float tensor of shape (3, image_size, image_size).
    """
    if not 0 < crop_fraction <= 1:
        raise ValueError(f"crop_fraction={crop_fraction} must be in (0, 1], e.g. 0.875")
    resize_size = round(image_size / crop_fraction)
    steps: list[v2.Transform] = [
        v2.Resize(resize_size, antialias=True),
        v2.CenterCrop(image_size),
        *_to_normalized_tensor(mean, std),
    ]
    return v2.Compose(steps)


def _to_normalized_tensor(mean: Sequence[float], std: Sequence[float]) -> list[v2.Transform]:
    return [
        v2.ToImage(),
        v2.ToDtype(torch.float32, scale=True),
        v2.Normalize(mean=list(mean), std=list(std)),
    ]


class CropFlip:
    """Augment a uint8 image batch in torch, then normalize: a random shift of up to ``pad``
    pixels (zero padding, one offset per image) and a random horizontal flip.

    Args:
        mean: Per-channel mean for normalization.
        std: Per-channel standard deviation for normalization.
        pad: Largest shift in pixels (0: no shift).
        flip: Flip half of the images left-right.
    """

    def __init__(self, mean: Sequence[float], std: Sequence[float], *, pad: int, flip: bool):
        self.normalize, self.pad, self.flip = Normalize(tuple(mean), tuple(std)), pad, flip

    def __call__(self, x: Tensor) -> Tensor:
        B, _, H, W = x.shape
        if self.flip:
            flipped = torch.rand(B, device=x.device) < 0.5
            x = torch.where(flipped.view(B, 1, 1, 1), x.flip(3), x)
        if self.pad:
            p = self.pad
            padded = F.pad(x, (p, p, p, p))  # (B, C, H + 2p, W + 2p)
            dy, dx = torch.randint(0, 2 * p + 1, (2, B, 1), device=x.device)
            rows = dy + torch.arange(H, device=x.device)  # (B, H)
            cols = dx + torch.arange(W, device=x.device)  # (B, W)
            batch = torch.arange(B, device=x.device).view(B, 1, 1)
            x = padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]]  # (B,H,W,C)
            x = x.permute(0, 3, 1, 2)  # (B, C, H, W)
        return self.normalize(x)
