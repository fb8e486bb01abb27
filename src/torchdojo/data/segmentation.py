"""Semantic segmentation data: BBBC039 nuclei, users' image + mask folders, a synthetic twin.

Every sample follows the dense contract: ``(image float32 (C, H, W) in [0, 1], mask int64
(H, W))`` with one class index per pixel and :data:`IGNORE` (255) for pixels no loss or
metric reads. Recipes: ``nuclei-segmentation``, ``scene-segmentation``. Lesson:
lessons/20_segmentation.py.

BBBC039 (Caicedo et al. 2019, https://bbbc.broadinstitute.org/BBBC039; CC0) holds
fluorescence images of U2OS nuclei, 16-bit PNG (12 bits used) 520x696, and RGBA masks whose
R channel marks 0 background, 1 nucleus, 2 boundary, 3 "rare" (0.2 % of pixels: where two
boundaries meet). The boundary class is what makes touching nuclei separable: the nucleus
class alone merges them into one connected component.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset
from torchvision import tv_tensors
from torchvision.transforms import v2

from torchdojo.data.errors import DataError
from torchdojo.utils.intensity import log_scale, normalize_percentiles

IGNORE = 255  # mask value no loss or metric reads
NUCLEI_CLASSES = ["background", "nucleus", "boundary"]
# BBBC039's R channel -> our class: 3 ("rare", pixels where two nuclei's boundaries meet) is
# boundary, since it separates the nuclei exactly as the boundary does.
BBBC039_LUT = np.array([0, 1, 2, 2], dtype=np.int64)
# The split: sorted file names, shuffled with this seed, cut 70/10/20 into train/val/test.
SPLIT_SEED = 39
SPLIT_FRACTIONS = (0.7, 0.1, 0.2)
IMAGE_SUFFIXES = (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp")


@dataclass
class SegmentationData(Dataset[tuple[Tensor, Tensor]]):
    """Images and masks of one split, in memory: a map-style dataset of ``(image, mask)``.

    Args:
        images: One float32 ``(C, H, W)`` tensor in [0, 1] per image.
        masks: One int64 ``(H, W)`` tensor of class indices (255 = ignore) per image.
        names: The file stem of each image.
        classes: Class names, background first.
        source: One line saying where the data came from.
        reference: True for the data the recipes' floors were measured on.
    """

    images: list[Tensor]
    masks: list[Tensor]
    names: list[str]
    classes: list[str]
    source: str = ""
    reference: bool = True
    extra: dict[str, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor]:
        return self.images[i], self.masks[i]


# ------------------------------------------------------------------------------- BBBC039
def read_bbbc039_mask(path: Path) -> np.ndarray:
    """The class mask ``(H, W)`` int64 of a BBBC039 RGBA mask: R channel through the LUT."""
    mask = np.asarray(Image.open(path))
    red = mask[..., 0] if mask.ndim == 3 else mask
    if red.max() >= len(BBBC039_LUT):
        raise DataError(
            f"{path}: mask value {int(red.max())} is not a BBBC039 class (0-3); "
            "use the masks of the BBBC039 download"
        )
    return BBBC039_LUT[red]


def bbbc039_split(names: Sequence[str]) -> dict[str, list[str]]:
    """The fixed split: sorted names, shuffled with ``numpy.random.default_rng(39)``, the first
    70 % train, the next 10 % val, the last 20 % test (70/10/20 of the 100 images)."""
    ordered = sorted(names)
    perm = np.random.default_rng(SPLIT_SEED).permutation(len(ordered))
    n_train = round(SPLIT_FRACTIONS[0] * len(ordered))
    n_val = round(SPLIT_FRACTIONS[1] * len(ordered))
    picked = [ordered[i] for i in perm]
    return {
        "train": sorted(picked[:n_train]),
        "val": sorted(picked[n_train : n_train + n_val]),
        "test": sorted(picked[n_train + n_val :]),
    }


def load_bbbc039(data_dir: str | Path, split: str) -> SegmentationData:
    """BBBC039 images and 3-class masks of ``split`` (train, val, test) from
    ``data_dir/bbbc039/{images,masks}``.

    The split is fixed by file name (:func:`bbbc039_split`: sorted names, seed 39, 70/10/20).
    Images become float ``(1, H, W)`` in [0, 1] by :func:`log_scale` (ln 100 -> 0,
    ln 4095 -> 1, the same for every image); masks take the R channel: 0 background,
    1 nucleus, 2 boundary, and 3 (rare, where boundaries meet) as boundary.
    """
    root = Path(data_dir) / "bbbc039"
    images_dir, masks_dir = root / "images", root / "masks"
    if not images_dir.is_dir() or not masks_dir.is_dir():
        raise DataError(
            f"{root}: BBBC039 not found (need images/ and masks/ inside); download it from "
            "https://bbbc.broadinstitute.org/BBBC039 into that folder, or use dataset=nuclei-tiny"
        )
    if split not in {"train", "val", "test"}:
        raise ValueError(f"split={split!r}: use train, val or test")
    names = [p.stem for p in sorted(images_dir.glob("*.png"))]
    picked = bbbc039_split(names)[split]
    images, masks = [], []
    for name in picked:
        mask_path = masks_dir / f"{name}.png"
        if not mask_path.is_file():
            raise DataError(f"{mask_path}: missing; every image needs a mask of the same name")
        image = log_scale(np.asarray(Image.open(images_dir / f"{name}.png")))
        images.append(torch.from_numpy(image)[None])  # (1, H, W)
        masks.append(torch.from_numpy(read_bbbc039_mask(mask_path)))  # (H, W)
    return SegmentationData(
        images,
        masks,
        picked,
        list(NUCLEI_CLASSES),
        source=f"BBBC039 {split} ({len(picked)} images from {root})",
    )


# ----------------------------------------------------------------------- own mask folders
def load_mask_folder(
    images_dir: str | Path, masks_dir: str | Path, classes: Sequence[str] | None = None
) -> SegmentationData:
    """Users' image + mask pairs, paired by file stem.

    Masks are PNGs of class indices (mode L or P: a palette PNG's indices are the classes,
    as in Pascal VOC); 255 means ignore. Images are read as RGB, or as one channel when every
    image is grayscale. ``classes`` names the classes (background first); without it they are
    ``class0 .. classK`` up to the largest index found.

    Raises:
        DataError: For a missing pair, an image/mask size mismatch, or a mask value beyond
            ``classes``; the message names the file.
    """
    images_dir, masks_dir = Path(images_dir), Path(masks_dir)
    for folder in (images_dir, masks_dir):
        if not folder.is_dir():
            raise DataError(f"{folder}: no such folder; pass dataset=masks:<images>,<masks>")
    image_paths = {p.stem: p for p in sorted(images_dir.iterdir()) if _is_image(p)}
    mask_paths = {p.stem: p for p in sorted(masks_dir.iterdir()) if _is_image(p)}
    if not image_paths:
        raise DataError(f"{images_dir}: no images (.png, .jpg, .tif, ...) inside")
    for stem, path in image_paths.items():
        if stem not in mask_paths:
            raise DataError(
                f"{path}: no mask {stem}.png in {masks_dir}; add it or remove the image"
            )
    for stem, path in mask_paths.items():
        if stem not in image_paths:
            raise DataError(f"{path}: no image named {stem}.* in {images_dir}; add it or remove it")
    pil_images = {stem: Image.open(p) for stem, p in image_paths.items()}
    gray = all(im.mode in {"L", "I", "I;16", "F"} for im in pil_images.values())
    images, masks = [], []
    for stem, pil in pil_images.items():
        image = _to_float(pil, gray)  # (C, H, W)
        mask = _read_index_mask(mask_paths[stem])
        if mask.shape != image.shape[1:]:
            raise DataError(
                f"{mask_paths[stem]}: mask is {mask.shape[1]}x{mask.shape[0]} but its image is "
                f"{image.shape[2]}x{image.shape[1]}; masks must match their image's size"
            )
        images.append(image)
        masks.append(mask)
    names = _class_names(masks, classes, list(mask_paths.values()))
    return SegmentationData(
        images,
        masks,
        list(image_paths),
        names,
        source=f"mask folder {images_dir} + {masks_dir} ({len(images)} images)",
        reference=False,
    )


def _is_image(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES


def _to_float(pil: Image.Image, gray: bool) -> Tensor:
    if gray:
        raw = np.asarray(pil)
        if raw.ndim == 3:
            raw = raw[..., 0]
        if raw.dtype == np.uint8:
            image = raw.astype(np.float32) / 255.0
        else:  # 16-bit or float microscopy: stretch as BBBC039 does
            image = normalize_percentiles(raw)
        return torch.from_numpy(np.ascontiguousarray(image))[None]  # (1, H, W)
    rgb = np.asarray(pil.convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1)))  # (3, H, W)


def _read_index_mask(path: Path) -> Tensor:
    pil = Image.open(path)
    if pil.mode not in {"L", "P", "I", "I;16"}:
        raise DataError(
            f"{path}: mask mode {pil.mode} holds colours, not class indices; save it as an "
            "8-bit grayscale or palette PNG whose pixel values are the class numbers"
        )
    return torch.from_numpy(np.asarray(pil).astype(np.int64))


def _class_names(
    masks: list[Tensor], classes: Sequence[str] | None, paths: list[Path]
) -> list[str]:
    largest = [int(m[m != IGNORE].max()) if (m != IGNORE).any() else 0 for m in masks]
    if classes is None:
        return [f"class{i}" for i in range(max(max(largest), 1) + 1)]
    for value, path in zip(largest, paths, strict=True):
        if value >= len(classes):
            raise DataError(
                f"{path}: mask value {value} is beyond the {len(classes)} classes "
                f"({', '.join(classes)}); fix the mask or name more classes (255 = ignore)"
            )
    return list(classes)


# --------------------------------------------------------------------- synthetic nuclei
def synthetic_nuclei(n: int, size: int, seed: int) -> SegmentationData:
    """``n`` synthetic nuclei images ``(1, size, size)``: bright blurred ellipses on a dark,
    noisy field, some touching, with BBBC039-style 3-class masks (1-pixel boundary class
    between and around nuclei). Seeded: the same arguments give the same images."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    images, masks = [], []
    for _ in range(n):
        labels = np.zeros((size, size), np.int32)
        image = np.zeros((size, size), np.float32)
        for k in range(int(rng.integers(3, 7))):
            cy, cx = rng.uniform(8, size - 8, 2)
            ry, rx = rng.uniform(4, 9, 2)
            inside = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1
            labels[inside] = k + 1
            image[inside] = rng.uniform(0.5, 1.0)
        image = image + rng.normal(0.05, 0.04, image.shape).astype(np.float32)
        images.append(torch.from_numpy(np.clip(image, 0, 1))[None])
        masks.append(torch.from_numpy(instances_to_classes(labels)))
    return SegmentationData(
        images,
        masks,
        [f"synthetic{i}" for i in range(n)],
        list(NUCLEI_CLASSES),
        source=f"nuclei-tiny: {n} synthetic {size}x{size} images (seed {seed})",
        reference=False,
    )


def instances_to_classes(labels: np.ndarray) -> np.ndarray:
    """Instance labels ``(H, W)`` (0 background) -> 3-class mask: each object's outermost
    pixels (a 4-neighbour differs) become boundary (2), the rest nucleus (1)."""
    padded = np.pad(labels, 1, mode="edge")
    centre = padded[1:-1, 1:-1]
    edge = np.zeros(labels.shape, bool)
    for dy, dx in ((0, 1), (2, 1), (1, 0), (1, 2)):
        edge |= padded[dy : dy + labels.shape[0], dx : dx + labels.shape[1]] != centre
    out = np.where(labels > 0, 1, 0).astype(np.int64)
    out[(labels > 0) & edge] = 2
    return out


# ------------------------------------------------------------------------ training crops
class RandomCrops(Dataset[tuple[Tensor, Tensor]]):
    """Random ``size`` x ``size`` crops with flips and 90-degree turns, ``repeats`` per image
    per epoch (torchvision transforms v2: the mask follows the pixels as a ``tv_tensors.Mask``).

    Randomness comes from torch's global generator, which the trainer seeds: the same seed
    gives the same crops. Images smaller than ``size`` are padded (mask with 255 = ignore).
    """

    def __init__(self, data: SegmentationData, *, size: int, repeats: int = 1) -> None:
        self.data, self.size, self.repeats = data, size, repeats
        self.transform = v2.Compose(
            [
                v2.RandomCrop(
                    size, pad_if_needed=True, fill={tv_tensors.Mask: IGNORE, "others": 0}
                ),
                v2.RandomHorizontalFlip(),
                v2.RandomVerticalFlip(),
            ]
        )

    def __len__(self) -> int:
        return len(self.data) * self.repeats

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor]:
        image, mask = self.data[i % len(self.data)]
        image_t, mask_t = self.transform(tv_tensors.Image(image), tv_tensors.Mask(mask))
        turns = int(torch.randint(4, ()))  # rot90: the fourth symmetry flips miss
        image_t = torch.rot90(image_t.as_subclass(Tensor), turns, (1, 2))
        mask_t = torch.rot90(mask_t.as_subclass(Tensor), turns, (0, 1))
        return image_t.contiguous(), mask_t.contiguous()


def pad_to_multiple(image: Tensor, multiple: int) -> tuple[Tensor, tuple[int, int]]:
    """Zero-pad ``(..., H, W)`` on the bottom/right to multiples of ``multiple``; returns the
    padded tensor and the original ``(H, W)``."""
    h, w = image.shape[-2:]
    ph, pw = math.ceil(h / multiple) * multiple - h, math.ceil(w / multiple) * multiple - w
    return torch.nn.functional.pad(image, (0, pw, 0, ph)), (h, w)


__all__ = [
    "IGNORE",
    "NUCLEI_CLASSES",
    "RandomCrops",
    "SegmentationData",
    "bbbc039_split",
    "instances_to_classes",
    "load_bbbc039",
    "load_mask_folder",
    "log_scale",
    "normalize_percentiles",
    "pad_to_multiple",
    "read_bbbc039_mask",
    "synthetic_nuclei",
]
