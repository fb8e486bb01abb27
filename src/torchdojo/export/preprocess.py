"""Image preprocessing for exported models with numpy and Pillow only (no torch).

It matches torchvision's evaluation transform ``Resize(resize_size) -> CenterCrop(H, W) ->
ToTensor() -> Normalize(mean, std)`` up to resampling differences, so a server can prepare
inputs without importing torch.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, UnidentifiedImageError

from torchdojo.export.card import ModelCard

# Refuse images whose header claims more pixels than this before decoding them (a
# decompression bomb of a few KiB can otherwise ask for gigabytes).
MAX_IMAGE_PIXELS = 40_000_000


def decode_image(data: bytes, *, max_pixels: int = MAX_IMAGE_PIXELS) -> Image.Image:
    """Decode encoded image bytes (PNG, JPEG, ...) into a fully loaded Pillow image.

    Args:
        data: The encoded file.
        max_pixels: Largest width x height accepted.

    Raises:
        ValueError: The bytes are not a readable image, or it is too large.
    """
    try:
        image = Image.open(io.BytesIO(data))
        width, height = image.size
        if width * height > max_pixels:
            raise ValueError(
                f"image is {width}x{height} pixels, more than the {max_pixels} accepted; "
                "resize it before uploading"
            )
        image.load()
    except (UnidentifiedImageError, OSError, SyntaxError, Image.DecompressionBombError) as error:
        raise ValueError(f"could not decode the upload as an image ({error})") from error
    return image


def preprocess_image(image: Image.Image, card: ModelCard) -> np.ndarray:
    """Resize the short side, center-crop, scale to [0, 1] and normalize one image.

    Args:
        image: A Pillow image in any mode; it is converted to RGB or L to match the card.
        card: The model card giving input size, resize size, mean and std.

    Returns:
        A float32 array of shape ``(C, H, W)``.
    """
    channels, height, width = card.input_size
    image = image.convert("L" if channels == 1 else "RGB")
    image = _resize_short_side(image, card.resize_size)
    image = _center_crop(image, height=height, width=width)
    x = np.asarray(image, dtype=np.float32) / 255.0  # (H, W) or (H, W, C)
    if x.ndim == 2:  # grayscale has no channel axis
        x = x[:, :, None]  # (H, W, 1)
    x = x.transpose(2, 0, 1)  # (C, H, W)
    mean = np.asarray(card.mean, dtype=np.float32)[:, None, None]
    std = np.asarray(card.std, dtype=np.float32)[:, None, None]
    return np.ascontiguousarray((x - mean) / std, dtype=np.float32)


def _resize_short_side(image: Image.Image, size: int) -> Image.Image:
    width, height = image.size
    long_side = int(size * max(width, height) / min(width, height))  # truncates, as torchvision
    new_size = (size, long_side) if width <= height else (long_side, size)
    return image.resize(new_size, Image.Resampling.BILINEAR)


def _center_crop(image: Image.Image, *, height: int, width: int) -> Image.Image:
    img_width, img_height = image.size
    if img_width < width or img_height < height:  # pad like torchvision's CenterCrop
        padded = Image.new(image.mode, (max(width, img_width), max(height, img_height)))
        padded.paste(image, ((padded.width - img_width) // 2, (padded.height - img_height) // 2))
        image, img_width, img_height = padded, padded.width, padded.height
    left = round((img_width - width) / 2)
    top = round((img_height - height) / 2)
    return image.crop((left, top, left + width, top + height))
