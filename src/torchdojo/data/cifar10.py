"""CIFAR-10: a JPEG tarball or the official binary batches, decoded once into a tensor cache.

Resolution order for ``cifar10`` in the data root: ``cifar10/cifar10-jpg.tar.gz``
(``[prefix/]train/<class>/*.jpg`` and ``test/<class>/*.jpg``, JPEG re-encoded, so accuracies land
near but not on published figures) -> the official *binary* batches ``cifar-10-batches-bin/``
(``root/`` or ``root/cifar10/``) -> a download of that binary archive when a network exists.
The official "python version" (``cifar-10-batches-py``, what ``torchvision.datasets.CIFAR10``
fetches) is a pickle written by the dataset authors; torchdojo never unpickles, so it reads the
byte-for-byte identical binary version instead (each record: 1 label byte + 3,072 pixel bytes).

The first load decodes everything into ``cache_dir("cifar10")`` as uint8 safetensors
((N, 3, 32, 32) images + int64 labels); later loads take well under a second.
``cifar10-tiny`` is a learnable synthetic twin with the same shapes for smoke tests.
"""

from __future__ import annotations

import hashlib
import io
import logging
import re
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

from torchdojo.data.arrays import ArrayDataset
from torchdojo.data.registry import register_dataset
from torchdojo.utils.io import atomic_write
from torchdojo.utils.paths import cache_dir, data_root

log = logging.getLogger(__name__)

CIFAR10_CLASSES = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
]
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)
JPG_TARBALL = "cifar10/cifar10-jpg.tar.gz"
BINARY_FOLDER = "cifar-10-batches-bin"
BINARY_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
BINARY_MD5 = "c32a1d4ab5d03f1284b67883e8d87530"
_BINARY_FILES = {
    "train": [f"data_batch_{i}.bin" for i in range(1, 6)],
    "test": ["test_batch.bin"],
}
_MEMBER = re.compile(r"(?:^|/)(train|test)/([^/]+)/[^/]+\.(?:jpe?g|png)$", re.IGNORECASE)
Splits = dict[str, tuple[torch.Tensor, torch.Tensor]]


# ------------------------------------------------------------------ the JPEG tarball
def _iter_tar_images(path: Path) -> Iterator[tuple[str, str, str, bytes]]:
    """``(split, class, member name, bytes)`` for every image member of the tarball."""
    with tarfile.open(path, "r:*") as tar:
        for member in tar:
            match = _MEMBER.search(member.name)
            if not member.isfile() or match is None:
                continue
            handle = tar.extractfile(member)
            if handle is not None:
                yield match.group(1).lower(), match.group(2), member.name, handle.read()


def _decode_rgb32(data: bytes, name: str) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        rgb = np.asarray(image.convert("RGB"))
    if rgb.shape != (32, 32, 3):
        raise ValueError(f"{name} is {rgb.shape[1]}x{rgb.shape[0]}, not a 32x32 CIFAR image")
    return rgb


def read_jpg_tarball(path: str | Path) -> Splits:
    """Decode a ``[prefix/]{train,test}/<class>/*.jpg`` tarball into ``{split: (x, y)}``.

    Images are ``(N, 3, 32, 32)`` uint8 sorted by (class, file name); labels follow
    :data:`CIFAR10_CLASSES`. Unknown class folders raise with the valid names.
    """
    path = Path(path)
    found: dict[str, list[tuple[int, str, np.ndarray]]] = {"train": [], "test": []}
    for split, cls, name, data in _iter_tar_images(path):
        if cls not in CIFAR10_CLASSES:
            raise ValueError(
                f"{path}: folder {cls!r} is not a CIFAR-10 class ({', '.join(CIFAR10_CLASSES)})"
            )
        found[split].append((CIFAR10_CLASSES.index(cls), name, _decode_rgb32(data, name)))
    splits: Splits = {}
    for split, items in found.items():
        if not items:
            raise FileNotFoundError(f"{path} holds no {split}/<class>/*.jpg images")
        items.sort(key=lambda item: (item[0], item[1]))
        x = torch.from_numpy(np.stack([item[2] for item in items])).permute(0, 3, 1, 2)
        y = torch.tensor([item[0] for item in items], dtype=torch.int64)
        splits[split] = (x.contiguous(), y)  # (N, 3, 32, 32) uint8, (N,)
    return splits


def write_jpg_tarball(path: str | Path, splits: Splits, *, prefix: str = "CIFAR-10-images") -> Path:
    """Write ``{split: (x, y)}`` as a JPEG tarball in the shared layout (tests use it)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        for split, (x, y) in splits.items():
            for i, (image, label) in enumerate(zip(x, y.tolist(), strict=True)):
                buffer = io.BytesIO()
                Image.fromarray(image.permute(1, 2, 0).numpy()).save(buffer, "JPEG", quality=95)
                info = tarfile.TarInfo(f"{prefix}/{split}/{CIFAR10_CLASSES[label]}/{i:04d}.jpg")
                info.size = buffer.tell()
                buffer.seek(0)
                tar.addfile(info, buffer)
    return path


# --------------------------------------------------------- the official binary batches
def read_binary_batches(folder: str | Path, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Read the official binary version: records of 1 label byte + 3,072 CHW pixel bytes."""
    folder = Path(folder)
    records = []
    for name in _BINARY_FILES[split]:
        raw = np.fromfile(folder / name, dtype=np.uint8)
        if raw.size % 3073:
            raise ValueError(f"{folder / name} is truncated ({raw.size} bytes, not k x 3073)")
        records.append(raw.reshape(-1, 3073))
    table = np.concatenate(records)
    x = torch.from_numpy(table[:, 1:].reshape(-1, 3, 32, 32).copy())  # (N, 3, 32, 32) uint8
    return x, torch.from_numpy(table[:, 0].astype(np.int64))


def find_binary_folder(root: Path) -> Path | None:
    """``cifar-10-batches-bin`` in ``root`` or ``root/cifar10``, if complete."""
    for folder in (root / BINARY_FOLDER, root / "cifar10" / BINARY_FOLDER):
        names = [*_BINARY_FILES["train"], *_BINARY_FILES["test"]]
        if all((folder / name).is_file() for name in names):
            return folder
    return None


def download_binary(root: Path) -> Path:
    """Fetch and unpack the official binary archive into ``root/cifar10`` (needs a network)."""
    from torchvision.datasets.utils import download_and_extract_archive

    target = root / "cifar10"
    download_and_extract_archive(BINARY_URL, str(target), md5=BINARY_MD5)
    return target / BINARY_FOLDER


# ------------------------------------------------------------------------------ cache
def _cache_file(source: Path) -> Path:
    stat = source.stat()
    key = hashlib.sha1(f"{source.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode())
    return cache_dir("cifar10") / f"cifar10-{key.hexdigest()[:12]}.safetensors"


def cached_splits(source: Path, decode: Callable[[], Splits]) -> Splits:
    """``decode()`` once per source file version; afterwards read the safetensors cache."""
    cache = _cache_file(source)
    if cache.is_file():
        tensors = load_file(str(cache))
        return {s: (tensors[f"{s}_x"], tensors[f"{s}_y"]) for s in ("train", "test")}
    log.info("decoding %s into %s (once)", source, cache)
    splits = decode()
    flat = {
        f"{s}_{k}": t.contiguous() for s, (x, y) in splits.items() for k, t in (("x", x), ("y", y))
    }
    atomic_write(cache, lambda tmp: save_file(flat, str(tmp)))
    return splits


# ------------------------------------------------------------------------ resolution
def load_cifar10(
    split: str, *, root: str | Path | None = None, download: bool = True
) -> ArrayDataset:
    """CIFAR-10 ``split`` from the data root (JPEG tarball, else binary batches, else download)."""
    folder = data_root(root)
    tarball = folder / JPG_TARBALL
    if tarball.is_file():
        x, y = cached_splits(tarball, lambda: read_jpg_tarball(tarball))[split]
        return _dataset(x, y, f"CIFAR-10 {split} from {tarball} (JPEG re-encoded)")
    binary = find_binary_folder(folder)
    reason = f"neither {tarball} nor {folder / BINARY_FOLDER} exists"
    if binary is None and download:
        try:
            binary = download_binary(folder)
        except Exception as err:  # noqa: BLE001 - any network failure means "offline"
            reason += f"; download failed ({type(err).__name__}: {str(err)[:120]})"
    if binary is None:
        raise FileNotFoundError(
            f"CIFAR-10 not found: {reason}. Put cifar10-jpg.tar.gz in {folder / 'cifar10'} "
            f"or unpack {BINARY_URL} into {folder / 'cifar10'} "
            "(or point --data-dir / TORCHDOJO_DATA at a folder that has them)."
        )
    marker = binary / _BINARY_FILES["test"][0]
    splits = cached_splits(
        marker, lambda: {s: read_binary_batches(binary, s) for s in ("train", "test")}
    )
    return _dataset(*splits[split], f"CIFAR-10 {split} from {binary} (official binary)")


def _dataset(x: torch.Tensor, y: torch.Tensor, source: str) -> ArrayDataset:
    return ArrayDataset(x, y, list(CIFAR10_CLASSES), source, CIFAR10_MEAN, CIFAR10_STD)


def synthetic_cifar(split: str, *, n: int = 512, seed: int = 0) -> ArrayDataset:
    """A learnable twin with CIFAR-10's shapes: each class is a tint plus a horizontal bar.

    The bar's row (5 places, 6 px apart) and length (long or short, centred) encode the class,
    so the labels survive mirror flips and 2 px translations; a small CNN learns it in an epoch.
    """
    g = torch.Generator().manual_seed(seed + (0 if split == "train" else 1))
    y = torch.randint(0, 10, (n,), generator=g)
    x = torch.randint(0, 90, (n, 3, 32, 32), generator=g, dtype=torch.uint8)
    for i, label in enumerate(y.tolist()):
        x[i, label % 3] += 60  # a tint per class
        row = 3 + 6 * (label // 2)
        left, right = (4, 28) if label % 2 == 0 else (12, 20)
        x[i, :, row : row + 3, left:right] = 230  # (3, 3, length) bar
    return _dataset(x, y, f"synthetic CIFAR-10 twin ({n} {split} images)")


@register_dataset("cifar10")
def _cifar10(split: str, *, root: str | Path | None = None, download: bool = True) -> ArrayDataset:
    return load_cifar10(split, root=root, download=download)


@register_dataset("cifar10-tiny")
def _cifar10_tiny(split: str, *, root: str | Path | None = None, n: int = 512) -> ArrayDataset:
    return synthetic_cifar(split, n=n if split == "train" else n // 4)
