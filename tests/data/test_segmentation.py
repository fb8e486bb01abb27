"""Segmentation data: BBBC039's split and decoding, users' mask folders, crops that keep the
mask on its pixels, and the synthetic nuclei."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from torchdojo.data.errors import DataError
from torchdojo.data.segmentation import (
    IGNORE,
    RandomCrops,
    SegmentationData,
    bbbc039_split,
    instances_to_classes,
    load_bbbc039,
    load_mask_folder,
    log_scale,
    normalize_percentiles,
    synthetic_nuclei,
)


def write_bbbc039(root: Path, n: int = 10, shape: tuple[int, int] = (20, 24)) -> None:
    """A fake BBBC039: 16-bit images, RGBA masks whose R channel holds 0-3."""
    rng = np.random.default_rng(0)
    (root / "bbbc039" / "images").mkdir(parents=True)
    (root / "bbbc039" / "masks").mkdir(parents=True)
    for i in range(n):
        image = rng.integers(100, 4000, shape).astype(np.uint16)
        Image.fromarray(image).save(root / "bbbc039" / "images" / f"img{i:02d}.png")
        rgba = np.zeros((*shape, 4), np.uint8)
        rgba[..., 0] = np.arange(shape[1]) % 4  # columns cycle 0, 1, 2, 3
        rgba[..., 3] = 255
        Image.fromarray(rgba, "RGBA").save(root / "bbbc039" / "masks" / f"img{i:02d}.png")


def test_bbbc039_split_is_fixed_disjoint_and_70_10_20() -> None:
    names = [f"name{i:03d}" for i in range(100)]
    split = bbbc039_split(names)
    assert [len(split[k]) for k in ("train", "val", "test")] == [70, 10, 20]
    assert set(split["train"]) | set(split["val"]) | set(split["test"]) == set(names)
    assert not set(split["train"]) & set(split["test"])
    assert bbbc039_split(list(reversed(names))) == split  # depends on the names, not their order
    assert split["test"] != sorted(names)[80:]  # shuffled, not the last 20 by name


def test_load_bbbc039_decodes_16_bit_images_and_maps_rare_to_boundary(tmp_path: Path) -> None:
    write_bbbc039(tmp_path)
    data = load_bbbc039(tmp_path, "test")
    assert len(data) == 2 and data.classes == ["background", "nucleus", "boundary"]
    image, mask = data[0]
    assert image.shape == (1, 20, 24) and image.dtype == torch.float32
    assert 0 < float(image.min()) and float(image.max()) < 1  # 100..4000 on the log scale
    assert mask.dtype == torch.int64
    assert mask[0, :4].tolist() == [0, 1, 2, 2]  # R = 3 ("rare") became boundary


def test_missing_bbbc039_names_the_folder(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="bbbc039"):
        load_bbbc039(tmp_path, "train")


def test_log_scale_is_fixed_and_keeps_an_empty_field_dark() -> None:
    assert log_scale(np.array([50, 100, 4095, 60000])) == pytest.approx([0, 0, 1, 1], abs=1e-6)
    ratio = log_scale(np.array([1000.0]))[0] - log_scale(np.array([100.0]))[0]
    assert ratio == pytest.approx(np.log(10) / np.log(40.95), rel=1e-5)  # x10 is a fixed step
    empty = np.random.default_rng(0).normal(160, 8, (20, 20))  # background noise only
    assert log_scale(empty).max() < 0.2 < normalize_percentiles(empty).max()


def test_percentile_normalization_is_per_image() -> None:
    dim = np.linspace(100, 200, 1000).reshape(20, 50)
    bright = dim * 10
    assert np.allclose(normalize_percentiles(dim), normalize_percentiles(bright), atol=1e-5)


def _write_pair(root: Path, stem: str, image_hw: tuple[int, int], mask: np.ndarray) -> None:
    (root / "images").mkdir(exist_ok=True)
    (root / "masks").mkdir(exist_ok=True)
    Image.fromarray(np.full((*image_hw, 3), 128, np.uint8)).save(root / "images" / f"{stem}.jpg")
    Image.fromarray(mask.astype(np.uint8), "L").save(root / "masks" / f"{stem}.png")


def test_mask_folder_pairs_by_stem_and_reads_palette_masks(tmp_path: Path) -> None:
    _write_pair(tmp_path, "a", (8, 10), np.full((8, 10), 2))
    palette = Image.fromarray(np.array([[0, 1], [IGNORE, 1]], np.uint8), "P")
    palette.putpalette([0, 0, 0, 255, 0, 0] + [9] * 762)
    (tmp_path / "images").joinpath("b.png").write_bytes(b"")
    Image.fromarray(np.zeros((2, 2, 3), np.uint8)).save(tmp_path / "images" / "b.png")
    palette.save(tmp_path / "masks" / "b.png")
    data = load_mask_folder(tmp_path / "images", tmp_path / "masks", classes=["bg", "x", "y"])
    assert data.names == ["a", "b"] and data.classes == ["bg", "x", "y"]
    assert data.images[0].shape == (3, 8, 10)
    assert data.masks[1].tolist() == [[0, 1], [IGNORE, 1]]  # palette indices, 255 kept
    assert load_mask_folder(tmp_path / "images", tmp_path / "masks").classes == [
        "class0",
        "class1",
        "class2",
    ]


@pytest.mark.parametrize(
    ("problem", "match"),
    [
        ("size", r"c\.png: mask is 5x4 but its image is 10x8"),
        ("pair", "no mask c.png"),
        ("value", r"c\.png: mask value 7 is beyond the 3 classes"),
    ],
)
def test_mask_folder_errors_name_the_file(tmp_path: Path, problem: str, match: str) -> None:
    _write_pair(tmp_path, "a", (8, 10), np.zeros((8, 10)))
    if problem == "size":
        _write_pair(tmp_path, "c", (8, 10), np.zeros((4, 5)))
    elif problem == "pair":
        _write_pair(tmp_path, "c", (8, 10), np.zeros((8, 10)))
        (tmp_path / "masks" / "c.png").unlink()
    else:
        _write_pair(tmp_path, "c", (8, 10), np.full((8, 10), 7))
    with pytest.raises(DataError, match=match):
        load_mask_folder(tmp_path / "images", tmp_path / "masks", classes=["a", "b", "c"])


def test_random_crops_keep_the_mask_on_its_pixels() -> None:
    mask = torch.arange(40 * 30).reshape(30, 40) % 3
    image = (mask.float() / 2)[None]  # the image encodes the mask: image * 2 == mask
    crops = RandomCrops(
        SegmentationData([image], [mask], ["x"], ["a", "b", "c"]), size=16, repeats=5
    )
    torch.manual_seed(0)
    seen = set()
    for i in range(len(crops)):
        crop_image, crop_mask = crops[i]
        assert crop_image.shape == (1, 16, 16) and crop_mask.shape == (16, 16)
        assert torch.equal((crop_image[0] * 2).long(), crop_mask)
        seen.add(tuple(crop_mask[0, :3].tolist()))
    assert len(seen) > 1  # crops differ


def test_crops_of_small_images_pad_the_mask_with_ignore() -> None:
    data = SegmentationData(
        [torch.ones(1, 6, 6)], [torch.ones(6, 6, dtype=torch.long)], ["s"], ["a", "b"]
    )
    image, mask = RandomCrops(data, size=10)[0]
    assert image.shape == (1, 10, 10) and (mask == IGNORE).sum() == 100 - 36


def test_instances_to_classes_marks_the_rim_and_the_contact() -> None:
    labels = np.zeros((6, 10), np.int32)
    labels[1:5, 1:5], labels[1:5, 5:9] = 1, 2  # two touching squares
    classes = instances_to_classes(labels)
    assert classes[2, 2] == 1 and classes[1, 1] == 2 and classes[0, 0] == 0
    assert classes[2, 4] == 2 and classes[2, 5] == 2  # both sides of the contact are boundary


def test_synthetic_nuclei_are_seeded() -> None:
    a, b = synthetic_nuclei(3, 32, seed=1), synthetic_nuclei(3, 32, seed=1)
    assert all(torch.equal(x, y) for x, y in zip(a.images, b.images, strict=True))
    assert not torch.equal(a.images[0], synthetic_nuclei(1, 32, seed=2).images[0])
    assert set(torch.cat([m.flatten() for m in a.masks]).tolist()) == {0, 1, 2}


def test_real_bbbc039_test_split(real_data: Path) -> None:
    data = load_bbbc039(real_data, "test")
    assert len(data) == 20 and data.images[0].shape == (1, 520, 696)
    assert set(data.masks[0].unique().tolist()) <= {0, 1, 2}
