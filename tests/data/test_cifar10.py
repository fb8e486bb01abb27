"""CIFAR-10: the JPEG tarball and the official binary batches, written here, load back right."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import torch

from torchdojo.data import cifar10, create_dataset


def _images(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Smooth (JPEG-friendly) random images and labels covering every class."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.randint(0, 256, (n, 3, 4, 4), generator=g).float()
    x = torch.nn.functional.interpolate(coarse, size=32, mode="bilinear", align_corners=False)
    y = torch.arange(n) % 10
    return x.round().clamp(0, 255).to(torch.uint8), y


@pytest.fixture
def tarball_root(tmp_path: Path) -> tuple[Path, dict[str, tuple[torch.Tensor, torch.Tensor]]]:
    splits = {"train": _images(30, 0), "test": _images(20, 1)}
    cifar10.write_jpg_tarball(tmp_path / cifar10.JPG_TARBALL, splits)
    return tmp_path, splits


def test_jpg_tarball_loads_in_the_shared_layout(tarball_root: tuple[Path, dict]) -> None:
    root, splits = tarball_root
    for split, (x, y) in splits.items():
        data = create_dataset("cifar10", split, root=root, download=False)
        assert data.x.shape == (len(x), 3, 32, 32) and data.x.dtype == torch.uint8
        assert data.classes == cifar10.CIFAR10_CLASSES
        assert "JPEG re-encoded" in data.source
        order = torch.argsort(y, stable=True)  # the loader sorts by class, then file name
        assert torch.equal(data.y, y[order])
        error = (data.x.float() - x[order].float()).abs().mean()
        assert error < 4, f"decoded pixels differ from the written ones by {error:.1f} on average"


def test_second_load_reads_the_cache_not_the_tarball(
    tarball_root: tuple[Path, dict], monkeypatch: pytest.MonkeyPatch
) -> None:
    root, _ = tarball_root
    first = create_dataset("cifar10", "train", root=root, download=False)

    def no_decode(path: object) -> None:
        raise AssertionError("the tarball was decoded again")

    monkeypatch.setattr(cifar10, "read_jpg_tarball", no_decode)
    started = time.perf_counter()
    again = create_dataset("cifar10", "train", root=root, download=False)
    assert time.perf_counter() - started < 1.0
    assert torch.equal(first.x, again.x) and torch.equal(first.y, again.y)


def test_binary_batches_are_read_byte_exact(tmp_path: Path) -> None:
    folder = tmp_path / "cifar10" / cifar10.BINARY_FOLDER
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    written = {}
    for name in [*cifar10._BINARY_FILES["train"], *cifar10._BINARY_FILES["test"]]:
        records = rng.integers(0, 256, (4, 3073), dtype=np.uint8)
        records[:, 0] %= 10
        records.tofile(folder / name)
        written[name] = records
    data = create_dataset("cifar10", "test", root=tmp_path, download=False)
    expected = written["test_batch.bin"]
    assert torch.equal(data.x, torch.from_numpy(expected[:, 1:].reshape(-1, 3, 32, 32)))
    assert data.y.tolist() == expected[:, 0].tolist()
    train = create_dataset("cifar10", "train", root=tmp_path, download=False)
    assert len(train) == 20 and "official binary" in train.source


def test_truncated_binary_batch_is_named(tmp_path: Path) -> None:
    folder = tmp_path / cifar10.BINARY_FOLDER
    folder.mkdir()
    for name in [*cifar10._BINARY_FILES["train"], *cifar10._BINARY_FILES["test"]]:
        np.zeros(3073 * 2 - 5, dtype=np.uint8).tofile(folder / name)
    with pytest.raises(ValueError, match="truncated"):
        create_dataset("cifar10", "test", root=tmp_path, download=False)


def test_offline_without_data_names_the_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def offline(root: Path) -> Path:
        raise OSError("no network")

    monkeypatch.setattr(cifar10, "download_binary", offline)
    with pytest.raises(FileNotFoundError) as err:
        create_dataset("cifar10", "train", root=tmp_path)
    message = str(err.value)
    assert str(tmp_path / "cifar10") in message and "download failed" in message


def test_unknown_class_folder_lists_the_classes(tmp_path: Path) -> None:
    x, y = _images(2, 0)
    path = tmp_path / "bad.tar.gz"
    cifar10.write_jpg_tarball(path, {"train": (x, y)})
    renamed = tmp_path / "renamed.tar.gz"
    import tarfile

    with tarfile.open(path) as src, tarfile.open(renamed, "w:gz") as dst:
        for member in src:
            data = src.extractfile(member)
            member.name = member.name.replace("airplane", "zeppelin")
            dst.addfile(member, data)
    with pytest.raises(ValueError, match="zeppelin.*airplane"):
        cifar10.read_jpg_tarball(renamed)


def test_tiny_twin_has_cifar_shapes_and_separable_classes() -> None:
    train = create_dataset("cifar10-tiny", "train")
    test = create_dataset("cifar10-tiny", "test")
    assert train.x.shape == (512, 3, 32, 32) and len(test) == 128
    assert set(train.y.tolist()) == set(range(10))
    # nearest class mean on the mirrored test images already beats chance by far
    means = torch.stack([train.x[train.y == c].float().mean(0) for c in range(10)])
    flipped = test.x.flip(3).float()
    preds = torch.cdist(flipped.flatten(1), means.flatten(1)).argmin(1)
    assert (preds == test.y).float().mean() > 0.9


@pytest.mark.slow
def test_real_cifar10_counts(real_data: Path) -> None:
    if not (real_data / cifar10.JPG_TARBALL).is_file():
        pytest.skip(f"{real_data / cifar10.JPG_TARBALL} absent")
    test = create_dataset("cifar10", "test", root=real_data, download=False)
    train = create_dataset("cifar10", "train", root=real_data, download=False)
    assert len(train) == 50_000 and len(test) == 10_000
    assert torch.bincount(test.y).tolist() == [1000] * 10
