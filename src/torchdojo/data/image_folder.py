"""Image folders: class discovery, a stratified split, a Dataset that survives bad files.

A folder is either ``root/<class>/*.jpg`` or ``root/<split>/<class>/*.jpg`` with splits named
``train``, ``val`` (or ``valid``/``validation``) and ``test``. Files are checked up front with a
cheap header read; a file that still fails at load time is recorded and replaced by another
sample, so an epoch never stops on one broken JPEG. ``torchdojo doctor PATH`` (``scan_folder``)
is the thorough check. ``write_shapes_folder`` makes a tiny two-class folder for offline smoke
runs. Used by the transfer-learning recipes.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw, UnidentifiedImageError
from torch.utils.data import Dataset, WeightedRandomSampler

from torchdojo.data.transforms import Augment, eval_transforms, load_image_rgb, train_transforms
from torchdojo.utils import atomic_write_json

logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS: tuple[str, ...] = (
    ".jpg",
    ".jpeg",
    ".png",
    ".bmp",
    ".gif",
    ".ppm",
    ".pgm",
    ".tif",
    ".tiff",
    ".webp",
)
SPLIT_ALIASES: dict[str, str] = {
    "train": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "test": "test",
}

DEFAULT_IMAGE_FOLDER = "hymenoptera_data"  # under the data root, when image-folder gets no data=

Sample = tuple[Path, int]  # (file, class index)
Transform = Callable[[Image.Image], Any]


@dataclass(frozen=True)
class BadFile:
    """A file that could not be used, and why."""

    path: str
    reason: str


@dataclass(frozen=True)
class FolderLayout:
    """What ``discover_folder`` found: classes, samples per split, and the files it ignored.

    Attributes:
        root: The folder.
        classes: Sorted class names; a class index is its position here.
        splits: Split name (``train``/``val``/``test``, or ``all`` without splits) -> samples.
        split_dirs: Split name -> the folder it was read from.
        other_files: Files in class folders whose extension is not an image extension.
        stray_files: Files outside any class folder.
    """

    root: Path
    classes: tuple[str, ...]
    splits: dict[str, list[Sample]]
    split_dirs: dict[str, Path] = field(default_factory=dict)
    other_files: list[Path] = field(default_factory=list)
    stray_files: list[Path] = field(default_factory=list)

    @property
    def has_splits(self) -> bool:
        """True when the folder holds ``train``/``val``/``test`` subfolders."""
        return "all" not in self.splits


def image_folder_path(data: str, root: Path) -> Path:
    """The folder an image-folder run reads: ``data``, or :data:`DEFAULT_IMAGE_FOLDER` under
    the data ``root``."""
    return Path(data).expanduser() if data else root / DEFAULT_IMAGE_FOLDER


def is_image_file(path: Path) -> bool:
    """True for a file whose extension is an image extension (the content is not checked)."""
    return path.suffix.lower() in IMAGE_EXTENSIONS


def _subdirs(folder: Path) -> list[Path]:
    # Hidden folders (.ipynb_checkpoints, .git) are never classes.
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file())


def discover_folder(root: str | Path) -> FolderLayout:
    """Find the splits, classes and image files of an image folder.

    Args:
        root: ``root/<class>/*`` or ``root/<split>/<class>/*``.

    Raises:
        ValueError: The folder is missing or holds no class subfolders.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise ValueError(f"image folder {root} does not exist or is not a folder")
    top = _subdirs(root)
    split_dirs = {SPLIT_ALIASES[d.name.lower()]: d for d in top if d.name.lower() in SPLIT_ALIASES}
    if not split_dirs:
        split_dirs = {"all": root}
    stray = _files(root)  # files beside the class (or split) folders have no label
    class_dirs = {name: _subdirs(folder) for name, folder in split_dirs.items()}
    classes = tuple(sorted({d.name for dirs in class_dirs.values() for d in dirs}))
    if not classes:
        raise ValueError(
            f"no class subfolders in {root}; expected {root}/<class>/<image> "
            f"or {root}/train/<class>/<image>"
        )
    index = {name: i for i, name in enumerate(classes)}
    splits: dict[str, list[Sample]] = {}
    other: list[Path] = []
    for split, folder in split_dirs.items():
        if split != "all":
            stray += _files(folder)
        splits[split] = []
        for class_dir in class_dirs[split]:
            files = _files(class_dir)
            splits[split] += [(f, index[class_dir.name]) for f in files if is_image_file(f)]
            other += [f for f in files if not is_image_file(f)]
    return FolderLayout(root, classes, splits, split_dirs, other, stray)


def check_image_header(path: Path) -> str | None:
    """Cheap check: the file is non-empty and Pillow recognises its header.

    Returns:
        None when the header is fine, else the reason (truncated bodies pass this check).
    """
    try:
        with Image.open(path) as img:
            _ = img.size
    except Exception as exc:  # Pillow plugins raise many types (OSError, SyntaxError, ...)
        return describe_error(exc, path)  # names an empty file "zero-byte file"
    return None


def describe_error(exc: BaseException, path: Path | None = None) -> str:
    """A short, stable reason for a Pillow failure: ``zero-byte file`` (when ``path`` is given
    and empty), ``not an image``, ``truncated``, ``missing`` or ``corrupt``."""
    message = str(exc) or type(exc).__name__
    if path is not None and path.is_file() and path.stat().st_size == 0:
        return "zero-byte file"
    if isinstance(exc, UnidentifiedImageError):
        return f"not an image: {message}"
    if "truncated" in message.lower():
        return f"truncated: {message}"
    if isinstance(exc, FileNotFoundError):
        return f"missing: {message}"
    return f"corrupt: {message}"


def bad_fraction_error(
    folder: Path, num_bad: int, num_total: int, max_bad_fraction: float
) -> ValueError:
    """The error raised when too many files of ``folder`` are unreadable, with the fix."""
    fraction = num_bad / max(num_total, 1)
    return ValueError(
        f"{num_bad} of {num_total} image files ({fraction:.1%}) in {folder} are unreadable, "
        f"above max_bad_fraction={max_bad_fraction}; run `torchdojo doctor {folder}` to list "
        "them, then repair or delete them (or raise max_bad_fraction)"
    )


def make_split(
    files: Sequence[str | Path],
    labels: Sequence[int],
    *,
    val_fraction: float = 0.2,
    seed: int = 0,
) -> tuple[list[int], list[int]]:
    """A stratified, seeded train/val split.

    Each class keeps ``round(n * val_fraction)`` of its files for validation (at least one
    when it has two or more). The result depends only on the (file, label) pairs and the
    seed, not on their order.

    Args:
        files: File paths, used to order samples before shuffling.
        labels: Class index of each file.
        val_fraction: Share of each class that goes to validation.
        seed: Seed of the shuffle.

    Returns:
        Sorted train indices and sorted val indices into ``files``.
    """
    if len(files) != len(labels):
        raise ValueError(f"{len(files)} files but {len(labels)} labels; pass one label per file")
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction={val_fraction} must be in (0, 1), e.g. 0.2")
    rng = np.random.default_rng(seed)
    train: list[int] = []
    val: list[int] = []
    for label in sorted(set(labels)):
        members = sorted(
            (i for i, y in enumerate(labels) if y == label), key=lambda i: str(files[i])
        )
        order = rng.permutation(len(members))
        num_val = round(len(members) * val_fraction)
        num_val = min(max(num_val, 1), len(members) - 1) if len(members) > 1 else 0
        val += [members[j] for j in order[:num_val]]
        train += [members[j] for j in order[num_val:]]
    return sorted(train), sorted(val)


class ImageFolderDataset(Dataset[tuple[Any, int]]):
    """Images from a list of (file, class index) samples that never stops on a bad file.

    Files failing the header check are dropped at construction; a file that fails later
    (truncated body, file removed) is recorded in ``bad_files`` and replaced by the next good
    sample. With ``DataLoader(num_workers>0)`` each worker records into its own copy.

    Args:
        samples: (file, class index) pairs.
        classes: Class names, indexed by label.
        transform: Applied to the RGB PIL image; None returns the image itself.
        check_files: Run the cheap header check up front.
    """

    def __init__(
        self,
        samples: Sequence[Sample],
        *,
        classes: Sequence[str],
        transform: Transform | None = None,
        check_files: bool = True,
    ) -> None:
        self.classes = list(classes)
        self.transform = transform
        self.bad_files: list[BadFile] = []
        self.num_files = len(samples)
        self.samples: list[Sample] = []
        for path, label in samples:
            reason = check_image_header(path) if check_files else None
            if reason is None:
                self.samples.append((path, label))
            else:
                self.bad_files.append(BadFile(str(path), reason))
        self._failed: set[int] = set()

    @property
    def labels(self) -> list[int]:
        """Class index of every kept sample."""
        return [label for _, label in self.samples]

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        for offset in range(len(self.samples)):
            i = (index + offset) % len(self.samples)
            if i in self._failed:
                continue
            path, label = self.samples[i]
            try:
                image = load_image_rgb(path)
            except Exception as exc:  # any decode failure: record it, serve another sample
                self._failed.add(i)
                self.bad_files.append(BadFile(str(path), describe_error(exc, Path(path))))
                logger.warning("skipping unreadable image %s: %s", path, exc)
                continue
            return (self.transform(image) if self.transform else image), label
        raise RuntimeError(f"every one of the {len(self.samples)} images failed to load")


@dataclass
class ImageFolderData:
    """Train/val(/test) datasets of one image folder; build with :meth:`from_folder`.

    Attributes:
        root: The folder.
        classes: Class names, indexed by label.
        train: Training dataset (train transforms).
        val: Validation dataset: the folder's own ``val`` split, else a stratified split.
        test: The ``test`` split when the folder has one.
    """

    root: Path
    classes: list[str]
    train: ImageFolderDataset
    val: ImageFolderDataset
    test: ImageFolderDataset | None = None

    @classmethod
    def from_folder(
        cls,
        root: str | Path,
        *,
        image_size: int = 224,
        val_fraction: float = 0.2,
        seed: int = 0,
        augment: Augment = "trivial",
        random_erasing: float = 0.0,
        max_bad_fraction: float | None = 0.05,
        check_files: bool = True,
        train_transform: Transform | None = None,
        eval_transform: Transform | None = None,
    ) -> ImageFolderData:
        """Discover, split and check an image folder.

        Args:
            root: ``root/<class>/*`` or ``root/<split>/<class>/*``.
            image_size: Output side for the default transforms.
            val_fraction: Validation share when the folder has no ``val`` split.
            seed: Seed of that split.
            augment: Policy of the default train transform (see ``train_transforms``).
            random_erasing: RandomErasing probability of the default train transform.
            max_bad_fraction: Largest tolerated share of unreadable image files; None: no
                check here (call :meth:`check_bad_fraction` yourself).
            check_files: Header-check every file up front.
            train_transform: Replaces the default train transform.
            eval_transform: Replaces the default eval transform (val and test).

        Raises:
            ValueError: No classes, no images, or more bad files than ``max_bad_fraction``.
        """
        layout = discover_folder(root)
        train_tf = train_transform or train_transforms(
            image_size=image_size, augment=augment, random_erasing=random_erasing
        )
        eval_tf = eval_transform or eval_transforms(image_size=image_size)
        train_samples, val_samples = _train_val_samples(layout, val_fraction, seed)

        def build(samples: list[Sample], transform: Transform) -> ImageFolderDataset:
            return ImageFolderDataset(
                samples, classes=layout.classes, transform=transform, check_files=check_files
            )

        test = layout.splits.get("test")
        data = cls(
            root=layout.root,
            classes=list(layout.classes),
            train=build(train_samples, train_tf),
            val=build(val_samples, eval_tf),
            test=build(test, eval_tf) if test else None,
        )
        if max_bad_fraction is not None:
            data.check_bad_fraction(max_bad_fraction)
        return data

    @property
    def datasets(self) -> dict[str, ImageFolderDataset]:
        """The non-empty splits by name."""
        found = {"train": self.train, "val": self.val, "test": self.test}
        return {name: ds for name, ds in found.items() if ds is not None}

    @property
    def bad_files(self) -> list[BadFile]:
        """Every file skipped so far, at the header check or at load time."""
        return [bad for ds in self.datasets.values() for bad in ds.bad_files]

    def check_bad_fraction(self, max_bad_fraction: float) -> None:
        """Raise a ValueError naming the folder, the count and the fix when too many are bad."""
        num_total = sum(ds.num_files for ds in self.datasets.values())
        if num_total == 0:
            raise ValueError(f"no image files ({', '.join(IMAGE_EXTENSIONS)}) in {self.root}")
        num_bad = len({bad.path for bad in self.bad_files})
        if num_bad / num_total > max_bad_fraction:
            raise bad_fraction_error(self.root, num_bad, num_total, max_bad_fraction)
        if num_bad:
            logger.warning("skipping %d of %d image files in %s", num_bad, num_total, self.root)

    def write_bad_files(self, path: str | Path) -> Path:
        """Write the skipped files as JSON (``[{"path": ..., "reason": ...}]``), atomically."""
        return write_bad_files(path, self.bad_files)


def _train_val_samples(
    layout: FolderLayout, val_fraction: float, seed: int
) -> tuple[list[Sample], list[Sample]]:
    if "val" in layout.splits:
        return layout.splits.get("train", []), layout.splits["val"]
    pool = layout.splits.get("train") or layout.splits.get("all", [])
    files = [path for path, _ in pool]
    labels = [label for _, label in pool]
    train_idx, val_idx = make_split(files, labels, val_fraction=val_fraction, seed=seed)
    return [pool[i] for i in train_idx], [pool[i] for i in val_idx]


def write_bad_files(path: str | Path, bad_files: Sequence[BadFile]) -> Path:
    """Write ``bad_files`` as a JSON list of ``{"path", "reason"}`` records, atomically."""
    unique = {(bad.path, bad.reason): bad for bad in bad_files}
    return atomic_write_json(path, [asdict(bad) for bad in unique.values()])


def read_bad_files(path: str | Path) -> list[BadFile]:
    """Read what :func:`write_bad_files` wrote."""
    return [BadFile(**record) for record in json.loads(Path(path).read_text(encoding="utf-8"))]


def class_weights(labels: Sequence[int], *, num_classes: int | None = None) -> torch.Tensor:
    """Balanced class weights ``n / (num_classes * count_c)`` for ``CrossEntropyLoss(weight=)``.

    A class with no samples gets weight 0.

    Args:
        labels: Class index of every training sample.
        num_classes: Number of classes; defaults to ``max(labels) + 1``.
    """
    if not labels:
        raise ValueError("class_weights needs at least one label")
    num_classes = num_classes or max(labels) + 1
    counts = torch.bincount(torch.as_tensor(list(labels)), minlength=num_classes).double()
    weights = len(labels) / (num_classes * counts)
    return torch.where(counts > 0, weights, torch.zeros_like(weights)).float()


def weighted_sampler(
    labels: Sequence[int], *, seed: int = 0, num_samples: int | None = None
) -> WeightedRandomSampler:
    """A sampler that draws every class equally often (with replacement), seeded.

    Args:
        labels: Class index of every training sample.
        seed: Seed of the sampler's own generator.
        num_samples: Draws per epoch; defaults to ``len(labels)``.
    """
    counts = Counter(labels)
    per_sample = [1.0 / counts[label] for label in labels]
    generator = torch.Generator().manual_seed(seed)
    return WeightedRandomSampler(
        per_sample, num_samples or len(labels), replacement=True, generator=generator
    )


def write_shapes_folder(root: Path, *, per_class: int = 12, size: int = 64, seed: int = 0) -> Path:
    """A tiny two-class image folder (red circles, blue squares on noise) for offline smoke runs.

    Args:
        root: Gets ``circles/*.png`` and ``squares/*.png``.
        per_class: Images per class.
        size: Side of each image in pixels.
        seed: Seeds the noise, the sizes and the positions.
    """
    rng = np.random.default_rng(seed)
    for name, color in (("circles", (220, 40, 40)), ("squares", (40, 60, 220))):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            noise = rng.integers(0, 60, (size, size, 3), dtype=np.uint8)
            img = Image.fromarray(noise + 150, "RGB")
            r = int(rng.integers(size // 6, size // 3))
            cx, cy = (int(v) for v in rng.integers(r, size - r, 2))
            box = (cx - r, cy - r, cx + r, cy + r)
            draw = ImageDraw.Draw(img)
            (draw.ellipse if name == "circles" else draw.rectangle)(box, fill=color)
            img.save(root / name / f"{name}_{i:02d}.png")
    return root
