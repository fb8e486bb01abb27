"""The data doctor: one pass over an image folder that lists every problem with its path.

It finds class counts and imbalance per split, image size statistics, exact duplicates (and
duplicates shared by two splits: leakage), unreadable, truncated and zero-byte files, files
that are not images, unusual modes (CMYK, 16-bit, palette, alpha, grayscale) and EXIF-rotated
photos. ``torchdojo doctor PATH`` prints it; ``ImageFolderData`` skips what it flags.
"""

from __future__ import annotations

import hashlib
import io
import logging
import statistics
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from torchdojo.data.image_folder import BadFile, FolderLayout, describe_error, discover_folder

logger = logging.getLogger(__name__)

EXIF_ORIENTATION = 0x0112  # 1 = upright; 2-8 = mirrored and/or rotated
_ROTATED_ORIENTATIONS = frozenset({5, 6, 7, 8})  # width and height swap when shown


@dataclass(frozen=True)
class Problem:
    """One row of the doctor's table."""

    kind: str  # unreadable | not-image | stray | leak | duplicate | odd-mode | exif-rotated
    path: str
    detail: str


@dataclass(frozen=True)
class _FileInfo:
    path: Path
    split: str
    label: int
    digest: str | None = None
    error: str | None = None
    mode: str | None = None
    size: tuple[int, int] | None = None  # (W, H) as displayed, EXIF rotation applied
    orientation: int = 1


@dataclass
class DoctorReport:
    """What :func:`scan_folder` found. Paths are relative to ``root``, POSIX style.

    Attributes:
        root: The folder scanned.
        has_splits: Whether it holds ``train``/``val``/``test`` subfolders.
        classes: Class names.
        class_counts: Split -> class -> number of readable images.
        imbalance: Split -> largest over smallest class count (None when a class is empty).
        missing_classes: Split -> classes with no readable image in that split.
        num_files: Files with an image extension.
        num_readable: Of those, the ones that decode completely.
        size_stats: ``{"width"|"height": {"min", "median", "max"}}`` over readable images.
        modes: Pillow mode -> number of images.
        odd_modes: Mode -> paths, for every mode but RGB.
        exif_rotated: Images whose EXIF orientation is not 1 (upright).
        duplicates: Groups of files with identical bytes (leaks included).
        leaks: Duplicate groups spanning two or more splits.
        unreadable: Zero-byte, truncated, corrupt or disguised files, with the reason.
        non_image: Files in class folders without an image extension.
        stray: Files outside any class folder.
        max_bad_fraction: Tolerated share of unreadable files.
        seconds: Time the scan took.
    """

    root: str
    has_splits: bool
    classes: list[str]
    class_counts: dict[str, dict[str, int]]
    imbalance: dict[str, float | None]
    missing_classes: dict[str, list[str]]
    num_files: int
    num_readable: int
    size_stats: dict[str, dict[str, float]]
    modes: dict[str, int]
    odd_modes: dict[str, list[str]] = field(default_factory=dict)
    exif_rotated: list[str] = field(default_factory=list)
    duplicates: list[list[str]] = field(default_factory=list)
    leaks: list[list[str]] = field(default_factory=list)
    unreadable: list[BadFile] = field(default_factory=list)
    non_image: list[str] = field(default_factory=list)
    stray: list[str] = field(default_factory=list)
    max_bad_fraction: float = 0.05
    seconds: float = 0.0

    @property
    def bad_fraction(self) -> float:
        """Share of image files that cannot be read."""
        return len(self.unreadable) / max(self.num_files, 1)

    @property
    def too_many_bad(self) -> bool:
        """True when training on this folder would stop (``bad_fraction > max_bad_fraction``)."""
        return self.bad_fraction > self.max_bad_fraction

    @property
    def problems(self) -> list[Problem]:
        """Every finding as (kind, path, detail), most serious first."""
        rows = [Problem("unreadable", bad.path, bad.reason) for bad in self.unreadable]
        rows += [Problem("not-image", p, "not an image extension") for p in self.non_image]
        rows += [Problem("stray", p, "outside any class folder") for p in self.stray]
        for group in self.duplicates:
            kind = "leak" if group in self.leaks else "duplicate"
            rows += [Problem(kind, p, f"same bytes as {_others(group, p)}") for p in group]
        for mode, paths in sorted(self.odd_modes.items()):
            rows += [Problem("odd-mode", p, f"mode {mode}, converted to RGB") for p in paths]
        rows += [Problem("exif-rotated", p, "EXIF orientation applied") for p in self.exif_rotated]
        return rows

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict of every field, plus ``bad_fraction`` and ``too_many_bad``."""
        data = asdict(self)
        data["bad_fraction"] = self.bad_fraction
        data["too_many_bad"] = self.too_many_bad
        return data


def _others(group: list[str], path: str) -> str:
    return ", ".join(p for p in group if p != path)


def scan_folder(
    path: str | Path, *, max_bad_fraction: float = 0.05, num_threads: int = 2
) -> DoctorReport:
    """Check every file of an image folder (full decode) and report what is wrong.

    Args:
        path: ``root/<class>/*`` or ``root/<split>/<class>/*``.
        max_bad_fraction: Share of unreadable files above which ``too_many_bad`` is set.
        num_threads: Decoding threads (Pillow releases the GIL while decoding).

    Raises:
        ValueError: The folder is missing or has no class subfolders.
    """
    start = time.perf_counter()
    layout = discover_folder(path)
    jobs = [(f, split, label) for split, samples in layout.splits.items() for f, label in samples]
    with ThreadPoolExecutor(max_workers=max(num_threads, 1)) as pool:
        infos = list(pool.map(lambda job: _inspect(*job), jobs))
    report = _build_report(layout, infos, max_bad_fraction)
    report.seconds = time.perf_counter() - start
    logger.info("scanned %d files in %s in %.2f s", len(infos), layout.root, report.seconds)
    return report


def _inspect(path: Path, split: str, label: int) -> _FileInfo:
    """Hash and fully decode one file; never raises."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        return _FileInfo(path, split, label, error=describe_error(exc))
    if not data:
        return _FileInfo(path, split, label, error="zero-byte file")
    digest = hashlib.blake2b(data, digest_size=16).hexdigest()
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.verify()  # structure and checksums (PNG CRCs); cheap for JPEG
        with Image.open(io.BytesIO(data)) as img:
            orientation = int(img.getexif().get(EXIF_ORIENTATION, 1) or 1)
            img.load()  # a full decode is what catches a truncated JPEG body
            mode, (width, height) = img.mode, img.size
    except Exception as exc:  # Pillow plugins raise many types (OSError, SyntaxError, ...)
        return _FileInfo(path, split, label, digest=digest, error=describe_error(exc))
    if orientation in _ROTATED_ORIENTATIONS:
        width, height = height, width
    return _FileInfo(path, split, label, digest, None, mode, (width, height), orientation)


def _build_report(
    layout: FolderLayout, infos: list[_FileInfo], max_bad_fraction: float
) -> DoctorReport:
    def rel(p: Path) -> str:
        return p.relative_to(layout.root).as_posix()

    good = [info for info in infos if info.error is None]
    counts, imbalance, missing = _class_stats(layout, good)
    odd_modes: dict[str, list[str]] = defaultdict(list)
    for info in good:
        if info.mode != "RGB":
            odd_modes[str(info.mode)].append(rel(info.path))
    duplicates, leaks = _duplicates(infos, rel)
    return DoctorReport(
        root=str(layout.root),
        has_splits=layout.has_splits,
        classes=list(layout.classes),
        class_counts=counts,
        imbalance=imbalance,
        missing_classes=missing,
        num_files=len(infos),
        num_readable=len(good),
        size_stats=_size_stats([info.size for info in good if info.size]),
        modes=dict(sorted(_count(str(info.mode) for info in good).items())),
        odd_modes=dict(sorted(odd_modes.items())),
        exif_rotated=[rel(info.path) for info in good if info.orientation != 1],
        duplicates=duplicates,
        leaks=leaks,
        unreadable=[BadFile(rel(i.path), i.error) for i in infos if i.error is not None],
        non_image=[rel(p) for p in layout.other_files],
        stray=[rel(p) for p in layout.stray_files],
        max_bad_fraction=max_bad_fraction,
    )


def _count(items: Iterable[str]) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for item in items:
        counts[item] += 1
    return counts


def _class_stats(
    layout: FolderLayout, good: list[_FileInfo]
) -> tuple[dict[str, dict[str, int]], dict[str, float | None], dict[str, list[str]]]:
    counts: dict[str, dict[str, int]] = {}
    imbalance: dict[str, float | None] = {}
    missing: dict[str, list[str]] = {}
    for split in layout.splits:
        per_class = dict.fromkeys(layout.classes, 0)
        for info in good:
            if info.split == split:
                per_class[layout.classes[info.label]] += 1
        counts[split] = per_class
        missing[split] = [name for name, n in per_class.items() if n == 0]
        smallest, largest = min(per_class.values()), max(per_class.values())
        imbalance[split] = largest / smallest if smallest > 0 else None
    return counts, imbalance, missing


def _duplicates(
    infos: list[_FileInfo], rel: Callable[[Path], str]
) -> tuple[list[list[str]], list[list[str]]]:
    by_digest: dict[str, list[_FileInfo]] = defaultdict(list)
    for info in infos:
        if info.digest is not None:
            by_digest[info.digest].append(info)
    groups = [group for group in by_digest.values() if len(group) > 1]
    duplicates = sorted(sorted(rel(info.path) for info in group) for group in groups)
    leaks = sorted(
        sorted(rel(info.path) for info in group)
        for group in groups
        if len({info.split for info in group}) > 1
    )
    return duplicates, leaks


def _size_stats(sizes: list[tuple[int, int]]) -> dict[str, dict[str, float]]:
    if not sizes:
        return {}
    stats: dict[str, dict[str, float]] = {}
    for axis, values in (("width", [w for w, _ in sizes]), ("height", [h for _, h in sizes])):
        stats[axis] = {
            "min": float(min(values)),
            "median": float(statistics.median(values)),
            "max": float(max(values)),
        }
    return stats
