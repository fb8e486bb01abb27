"""Image folders: loading any mode, skipping bad files, the split, class balance, transforms."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from torchdojo.data.image_folder import (
    ImageFolderData,
    ImageFolderDataset,
    class_weights,
    discover_folder,
    make_split,
    read_bad_files,
    weighted_sampler,
)
from torchdojo.data.transforms import eval_transforms, load_image_rgb, train_transforms

if TYPE_CHECKING:  # conftest is pytest's to import; the name is only for readers
    from conftest import TortureFolder

SMALL = {"image_size": 32, "augment": "none"}


def test_load_image_rgb_converts_every_mode(torture_folder: TortureFolder) -> None:
    root = torture_folder.root
    for name in ("cmyk.jpg", "rotated.jpg", "good_0.jpg"):
        assert load_image_rgb(root / "train/cats" / name).mode == "RGB"
    assert load_image_rgb(root / "train/cats/rotated.jpg").size == (20, 60)  # EXIF applied
    deep = np.asarray(load_image_rgb(root / "train/dogs/deep16.png"))
    assert deep.shape == (32, 48, 3)
    assert np.all(np.abs(deep.astype(int) - 128) <= 1)  # 32768/65535 scaled, not clipped to 255
    clear = np.asarray(load_image_rgb(root / "train/dogs/rgba.png"))
    assert np.all(clear == 255)  # transparent pixels land on white
    assert load_image_rgb(root / "train/dogs/palette.png").mode == "RGB"
    assert load_image_rgb(root / "train/birds/gray.jpg").mode == "RGB"
    with pytest.raises(OSError, match="truncated"):
        load_image_rgb(root / "train/cats/truncated.jpg")


def test_dataset_never_raises_and_records_bad_files(
    torture_folder: TortureFolder, tmp_path: Path
) -> None:
    data = ImageFolderData.from_folder(torture_folder.root, max_bad_fraction=0.5, **SMALL)
    assert data.classes == ["birds", "cats", "dogs"]
    header_bad = {Path(bad.path).name for bad in data.bad_files}
    assert header_bad == {"zero.jpg", "fake.png"}  # the truncated body passes the header check
    assert len(data.train) == 22 - 2 and len(data.val) == 6
    for dataset in (data.train, data.val):
        for i in range(len(dataset)):
            x, y = dataset[i]
            assert x.shape == (3, 32, 32) and x.dtype == torch.float32
            assert torch.isfinite(x).all() and 0 <= y < 3
    reasons = {Path(bad.path).name: bad.reason for bad in data.bad_files}
    assert reasons.keys() == {"zero.jpg", "fake.png", "truncated.jpg"}
    assert reasons["truncated.jpg"].startswith("truncated")
    written = read_bad_files(data.write_bad_files(tmp_path / "run" / "bad_files.json"))
    assert {Path(bad.path).name for bad in written} == set(reasons)


def test_load_failures_are_replaced_not_raised(torture_folder: TortureFolder) -> None:
    layout = discover_folder(torture_folder.root)
    dataset = ImageFolderDataset(
        layout.splits["train"],
        classes=layout.classes,
        transform=eval_transforms(image_size=16),
        check_files=False,
    )
    assert len(dataset) == 22
    batches = list(DataLoader(dataset, batch_size=5, num_workers=0))
    assert sum(len(y) for _, y in batches) == 22  # every index served, bad ones by a substitute
    assert all(x.shape[1:] == (3, 16, 16) for x, _ in batches)
    failed = sorted(Path(bad.path).name for bad in dataset.bad_files)
    assert failed == ["fake.png", "truncated.jpg", "zero.jpg"]
    path, label = dataset.samples[0]
    dataset.samples[0] = (path.with_name("vanished.jpg"), label)
    _, y = dataset[0]
    assert y == dataset.samples[1][1]  # served the next sample
    assert dataset.bad_files[-1].reason.startswith("missing")


def test_too_many_bad_files_raise_with_the_fix(torture_folder: TortureFolder) -> None:
    with pytest.raises(ValueError) as info:
        ImageFolderData.from_folder(torture_folder.root, max_bad_fraction=0.05, **SMALL)
    message = str(info.value)
    assert str(torture_folder.root) in message
    assert "2 of 28" in message
    assert f"torchdojo doctor {torture_folder.root}" in message


def test_make_split_is_stratified_and_reproducible() -> None:
    labels = [0] * 10 + [1] * 20 + [2] * 30
    files = [f"img_{i:03d}.jpg" for i in range(len(labels))]
    train, val = make_split(files, labels, val_fraction=0.2, seed=7)
    assert sorted(train + val) == list(range(60)) and not set(train) & set(val)
    assert Counter(labels[i] for i in val) == {0: 2, 1: 4, 2: 6}
    assert make_split(files, labels, val_fraction=0.2, seed=7) == (train, val)
    assert make_split(files, labels, val_fraction=0.2, seed=8)[1] != val
    order = list(range(60))
    random.Random(0).shuffle(order)
    _, val_shuffled = make_split(
        [files[i] for i in order], [labels[i] for i in order], val_fraction=0.2, seed=7
    )
    assert sorted(files[order[i]] for i in val_shuffled) == [files[i] for i in val]
    _, tiny_val = make_split(["a", "b", "c"], [0, 0, 1], val_fraction=0.1, seed=0)
    assert len(tiny_val) == 1  # a two-file class still gives one to val; a singleton none
    with pytest.raises(ValueError, match="val_fraction"):
        make_split(files, labels, val_fraction=1.0, seed=0)


def test_flat_folder_gets_a_stratified_split(flat_folder: Path) -> None:
    data = ImageFolderData.from_folder(flat_folder, val_fraction=0.3, seed=1, **SMALL)
    assert data.classes == ["a", "b", "c"]
    assert Counter(data.val.labels) == {0: 3, 1: 6, 2: 9}
    assert Counter(data.train.labels) == {0: 7, 1: 14, 2: 21}
    again = ImageFolderData.from_folder(flat_folder, val_fraction=0.3, seed=1, **SMALL)
    assert again.val.samples == data.val.samples
    assert data.test is None and data.bad_files == []


def test_class_weights_and_sampler() -> None:
    labels = [0] * 10 + [1] * 90
    weights = class_weights(labels)
    assert torch.allclose(weights, torch.tensor([100 / 20, 100 / 180]))
    assert class_weights([0, 2, 2], num_classes=3)[1] == 0
    sampler = weighted_sampler(labels, seed=3, num_samples=4000)
    drawn = list(sampler)
    assert drawn == list(weighted_sampler(labels, seed=3, num_samples=4000))
    share = sum(labels[i] == 0 for i in drawn) / len(drawn)
    assert 0.45 < share < 0.55


def test_transforms_shapes_and_options(torture_folder: TortureFolder) -> None:
    image = load_image_rgb(torture_folder.root / "train/cats/good_0.jpg")
    for augment in ("none", "trivial", "randaugment"):
        train = train_transforms(image_size=24, augment=augment, random_erasing=1.0)  # type: ignore[arg-type]
        assert train(image).shape == (3, 24, 24)
    evaluate = eval_transforms(image_size=24, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    x = evaluate(image)
    assert x.shape == (3, 24, 24) and torch.equal(x, evaluate(image))
    assert -1.0 <= x.min() and x.max() <= 1.0  # (v - 0.5) / 0.5 for v in [0, 1]
    with pytest.raises(ValueError, match="trivial"):
        train_transforms(augment="autoaugment")  # type: ignore[arg-type]


def test_hymenoptera(hymenoptera: Path) -> None:
    data = ImageFolderData.from_folder(hymenoptera, image_size=64, max_bad_fraction=0.0)
    assert data.classes == ["ants", "bees"]
    assert (len(data.train), len(data.val)) == (243, 153)
    assert Counter(data.val.labels) == {0: 70, 1: 83}
    x, y = data.train[0]
    assert x.shape == (3, 64, 64) and y == 0
    assert data.bad_files == []
