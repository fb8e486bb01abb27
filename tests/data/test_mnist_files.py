"""MNIST-family data: real IDX files, the data root -> download -> embedded order, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from torchdojo.data import create_dataset
from torchdojo.data import mnist as mnist_module
from torchdojo.data.mnist import read_idx, resolve_idx_dataset, write_idx


def write_tiny_mnist(root: Path, name: str = "MNIST", n: int = 20) -> None:
    rng = np.random.default_rng(0)
    raw = root / name / "raw"
    for images, labels in mnist_module._FILES.values():
        write_idx(raw / f"{images}.gz", rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
        write_idx(raw / f"{labels}.gz", (np.arange(n) % 10).astype(np.uint8))


def test_idx_round_trip_and_truncation_error(tmp_path: Path) -> None:
    arr = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    path = write_idx(tmp_path / "a-idx3-ubyte.gz", arr)
    np.testing.assert_array_equal(read_idx(path), arr)
    plain = tmp_path / "b-idx3-ubyte"
    import gzip

    plain.write_bytes(gzip.decompress(path.read_bytes())[:-5])
    with pytest.raises(ValueError, match="truncated"):
        read_idx(plain)
    (tmp_path / "c").write_bytes(b"\x12\x34\x56\x78")
    with pytest.raises(ValueError, match="not an unsigned-byte IDX file"):
        read_idx(tmp_path / "c")


def test_data_root_files_are_used_first(tmp_path: Path) -> None:
    write_tiny_mnist(tmp_path)
    ds = create_dataset("mnist", "test", root=tmp_path)
    assert ds.x.shape == (20, 1, 28, 28) and ds.reference
    assert ds.source.startswith("real MNIST test from")


def test_offline_falls_back_to_embedded_mnist(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def offline(folder: Path, *, name: str = "MNIST") -> None:
        raise OSError("network unreachable")

    monkeypatch.setattr(mnist_module, "download_idx", offline)
    ds = resolve_idx_dataset("MNIST", "train", root=tmp_path)
    assert len(ds) == 4000 and not ds.reference and "embedded" in ds.source
    with pytest.raises(
        FileNotFoundError, match=r"Put the four FashionMNIST IDX files in .*FashionMNIST/raw"
    ):
        resolve_idx_dataset("FashionMNIST", "train", root=tmp_path)


def test_download_is_tried_when_files_are_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fake_download(folder: Path, *, name: str = "MNIST") -> None:
        write_tiny_mnist(folder, name)

    monkeypatch.setattr(mnist_module, "download_idx", fake_download)
    ds = resolve_idx_dataset("FashionMNIST", "train", root=tmp_path)
    assert len(ds) == 20 and ds.classes[0] == "T-shirt/top"


def test_real_mnist_when_present(real_data: Path) -> None:
    test = create_dataset("mnist", "test", root=real_data)
    assert test.x.shape == (10000, 1, 28, 28)
    assert test.y.bincount().tolist()[:3] == [980, 1135, 1032]  # the official test split
