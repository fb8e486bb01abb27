"""Lung CT as tensors: LUNA16 series, millimetres <-> voxels, candidates and a chip cache.

LUNA16 (Setio et al., 2017, https://luna16.grand-challenge.org) ships each CT series as a
MetaImage pair, ``subsetN/<seriesuid>.mhd`` (a text header: size, spacing, origin, direction)
and ``<seriesuid>.raw`` (int16 Hounsfield units), with ``candidates.csv`` (551,065 candidate
points in patient millimetres, 1,351 of them nodules) and ``annotations.csv`` (1,186 nodules
with diameters). Seed 004 (Stevens, Antiga, Viehmann, ch10-12) reads them with SimpleITK,
converts between millimetres and (index, row, col) voxels, caches candidate chips with
diskcache and balances the classes; this module does the same on today's libraries, adds
DICOM series (pydicom, RescaleSlope/Intercept -> HU) and checks every file it opens.
:func:`write_synthetic_luna` writes a seeded twin of the data set in the same formats.

Taught in lessons/26_ct_volumes.py. Recipes: nodule_classifier, nodule_segmentation,
nodule_malignancy, lung_ct_end_to_end.
"""

from __future__ import annotations

import csv
import hashlib
import importlib
import logging
import math
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset, Sampler

from torchdojo.data.errors import DataError

log = logging.getLogger(__name__)

VOLUME_EXTRA = 'pip install "torchdojo[volume]"'
HU_AIR, HU_MAX = -1000.0, 1000.0  # the book's clip: air .. dense bone; metal/FOV padding cut
CHIP_SIZE_IRC = (32, 48, 48)  # (index, row, col) voxels, the book's candidate chip
ArrayLike = np.ndarray | Sequence[float] | Sequence[Sequence[float]]

# Bytes per element of the MetaImage types a CT series uses (MetaIO's metaTypes.h).
_MET_BYTES = {
    "MET_CHAR": 1,
    "MET_UCHAR": 1,
    "MET_SHORT": 2,
    "MET_USHORT": 2,
    "MET_INT": 4,
    "MET_UINT": 4,
    "MET_FLOAT": 4,
    "MET_DOUBLE": 8,
    "MET_LONG_LONG": 8,
    "MET_ULONG_LONG": 8,
}
_MHD_REQUIRED = ("DimSize", "ElementType", "ElementDataFile")


def require_volume(module: str) -> Any:
    """Import ``module`` (SimpleITK, pydicom, diskcache) or raise the error naming the extra."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise DataError(f"CT volumes need {module}: {VOLUME_EXTRA}") from None


# ---------------------------------------------------------------- millimetres <-> voxels


def irc_to_xyz(
    irc: ArrayLike, origin_xyz: ArrayLike, spacing_xyz: ArrayLike, direction: ArrayLike
) -> np.ndarray:
    """Patient millimetres (x, y, z) of voxel coordinates (index, row, col) = (z, y, x).

    ``xyz = origin + direction @ (cri * spacing)``, with ``cri`` the voxel coordinates
    reversed to (col, row, index) order: SimpleITK's ``TransformContinuousIndexToPhysicalPoint``.
    Works on one point, shape (3,), or many, shape (N, 3); fractional indices are fine.
    """
    cri = np.asarray(irc, dtype=np.float64)[..., ::-1]  # (..., 3) col, row, index
    d = np.asarray(direction, dtype=np.float64).reshape(3, 3)
    spacing = np.asarray(spacing_xyz, dtype=np.float64)
    return (cri * spacing) @ d.T + np.asarray(origin_xyz, dtype=np.float64)  # (..., 3)


def xyz_to_irc(
    xyz: ArrayLike,
    origin_xyz: ArrayLike,
    spacing_xyz: ArrayLike,
    direction: ArrayLike,
    *,
    rounded: bool = False,
) -> np.ndarray:
    """Voxel coordinates (index, row, col) of patient millimetres (x, y, z): the inverse.

    ``cri = direction^-1 @ (xyz - origin) / spacing``. The book's ``xyz2irc`` multiplies by the
    inverse from the wrong side, which only agrees for symmetric direction matrices; this
    solves the system, so rotated series convert correctly too.

    Args:
        xyz: One point, shape (3,), or many, shape (N, 3).
        origin_xyz: The series' origin, millimetres.
        spacing_xyz: Voxel size along x, y, z, millimetres.
        direction: The 3x3 direction matrix (columns: the x, y, z index axes in patient space).
        rounded: Round to the nearest voxel and return int64 (the book's ``IrcTuple``).
    """
    d = np.asarray(direction, dtype=np.float64).reshape(3, 3)
    offset = np.asarray(xyz, dtype=np.float64) - np.asarray(origin_xyz, dtype=np.float64)
    cri = offset @ np.linalg.inv(d).T / np.asarray(spacing_xyz, dtype=np.float64)  # (..., 3)
    irc = cri[..., ::-1]
    return np.rint(irc).astype(np.int64) if rounded else np.ascontiguousarray(irc)


# ---------------------------------------------------------------- one series


@dataclass(frozen=True, eq=False)
class CtSeries:
    """One CT series in Hounsfield units with its geometry.

    Attributes:
        hu: Voxels, shape (Z, Y, X) = (index, row, col), float32 HU, not clipped.
        origin_xyz: Patient position of voxel (0, 0, 0), millimetres.
        spacing_xyz: Voxel size along x, y, z, millimetres.
        direction: 3x3 direction matrix; column k is index axis k (x, y, z) in patient space.
        uid: The series instance UID (LUNA16 names files after it).
        path: The file or folder it was read from; None for one built in memory.
    """

    hu: np.ndarray
    origin_xyz: np.ndarray
    spacing_xyz: np.ndarray
    direction: np.ndarray
    uid: str
    path: Path | None = None

    @property
    def shape(self) -> tuple[int, int, int]:
        """Voxels along (index, row, col)."""
        z, y, x = self.hu.shape
        return z, y, x

    def xyz_to_irc(self, xyz: ArrayLike, *, rounded: bool = False) -> np.ndarray:
        """:func:`xyz_to_irc` with this series' geometry."""
        return xyz_to_irc(xyz, self.origin_xyz, self.spacing_xyz, self.direction, rounded=rounded)

    def irc_to_xyz(self, irc: ArrayLike) -> np.ndarray:
        """:func:`irc_to_xyz` with this series' geometry."""
        return irc_to_xyz(irc, self.origin_xyz, self.spacing_xyz, self.direction)


def read_mhd_header(path: str | Path) -> dict[str, str]:
    """The ``key = value`` lines of a MetaImage header, checked for the keys a reader needs.

    Raises:
        DataError: The file is missing or not text, a required key (DimSize, ElementType,
            ElementDataFile) is absent, or the data file has the wrong size for the header.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file; point data= at the LUNA16 folder (subset*/...)")
    header = _parse_header(path)
    missing = [k for k in _MHD_REQUIRED if k not in header]
    if missing:
        raise DataError(
            f"{path}: MetaImage header lacks {', '.join(missing)}; re-download or re-export it"
        )
    _check_raw_size(path, header)
    return header


def _parse_header(path: Path) -> dict[str, str]:
    header: dict[str, str] = {}
    try:
        with path.open("rb") as f:
            for raw_line in f:
                line = raw_line.decode("ascii").strip()
                key, sep, value = line.partition("=")
                if not sep:
                    continue
                header[key.strip()] = value.strip()
                if key.strip() == "ElementDataFile":  # LOCAL data may follow: stop reading
                    break
    except UnicodeDecodeError:
        raise DataError(
            f"{path}: not a MetaImage text header; pass the .mhd, not the .raw"
        ) from None
    return header


def _check_raw_size(path: Path, header: dict[str, str]) -> None:
    """Compare the data file's size with DimSize x ElementType for a plain uncompressed .raw."""
    data_file = header["ElementDataFile"]
    compressed = header.get("CompressedData", "False").lower() == "true"
    kind = header["ElementType"]
    if compressed or data_file.upper() == "LOCAL" or " " in data_file or kind not in _MET_BYTES:
        return  # inline, compressed, listed or patterned data: SimpleITK checks it
    if "HeaderSize" in header and header["HeaderSize"] != "0":
        return
    raw = path.parent / data_file
    if not raw.is_file():
        raise DataError(f"{path}: its data file {raw.name} is missing; copy it next to the .mhd")
    try:
        dims = [int(v) for v in header["DimSize"].split()]
        channels = int(header.get("ElementNumberOfChannels", "1"))
    except ValueError:
        raise DataError(f"{path}: DimSize {header['DimSize']!r} is not integers") from None
    expected = math.prod(dims) * channels * _MET_BYTES[kind]
    actual = raw.stat().st_size
    if actual != expected:
        raise DataError(
            f"{raw}: holds {actual} bytes but {path.name} says {expected} "
            f"(DimSize {header['DimSize']}, {kind}); the download is truncated or mismatched: "
            "fetch it again"
        )


def load_series(path: str | Path) -> CtSeries:
    """Read one CT series: a MetaImage ``.mhd``/``.mha`` (SimpleITK) or a DICOM file/folder.

    Args:
        path: ``<seriesuid>.mhd`` (LUNA16), a ``.mha``, a ``.dcm`` file or a folder of DICOM
            slices (passed on to :func:`load_dicom_series`).

    Raises:
        DataError: The header lacks a key, the ``.raw`` has the wrong size, or the file cannot
            be decoded; the message names the file.
    """
    path = Path(path)
    if path.is_dir() or path.suffix.lower() in {".dcm", ".dicom", ""}:
        return load_dicom_series(path)
    sitk = require_volume("SimpleITK")
    if path.suffix.lower() == ".mhd":
        read_mhd_header(path)
    elif not path.is_file():
        raise DataError(f"{path}: no such file; point data= at the LUNA16 folder (subset*/...)")
    try:
        image = sitk.ReadImage(str(path))
    except RuntimeError as e:
        reason = str(e).strip().splitlines()[-1] if str(e).strip() else "unreadable"
        raise DataError(f"{path}: SimpleITK cannot read it ({reason}); re-download it") from None
    if image.GetDimension() != 3:
        raise DataError(f"{path}: a {image.GetDimension()}-D image; a CT series is 3-D")
    hu = sitk.GetArrayFromImage(image).astype(np.float32)  # (Z, Y, X)
    return CtSeries(
        hu=hu,
        origin_xyz=np.array(image.GetOrigin(), dtype=np.float64),
        spacing_xyz=np.array(image.GetSpacing(), dtype=np.float64),
        direction=np.array(image.GetDirection(), dtype=np.float64).reshape(3, 3),
        uid=path.stem,
        path=path,
    )


# ---------------------------------------------------------------- DICOM


def load_dicom_series(path: str | Path, *, series_uid: str | None = None) -> CtSeries:
    """Read a DICOM CT series (a folder of slices, or one file) into Hounsfield units.

    Slices are sorted along the slice normal (ImageOrientationPatient x), positioned by
    ImagePositionPatient, and rescaled with each slice's RescaleSlope and RescaleIntercept.

    Args:
        path: A folder of slices or a single ``.dcm`` file.
        series_uid: Which series to read when the folder holds several.

    Raises:
        DataError: A file is not readable DICOM, holds no pixels, or the folder mixes series.
    """
    pydicom = require_volume("pydicom")
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file or folder")
    files = sorted(p for p in path.iterdir() if p.is_file()) if path.is_dir() else [path]
    slices = [_read_dicom(pydicom, f) for f in files if f.name.upper() != "DICOMDIR"]
    if not slices:
        raise DataError(f"{path}: holds no DICOM files")
    slices = _one_series(path, slices, series_uid)
    row_cos, col_cos = _orientation(slices[0])
    normal = np.cross(row_cos, col_cos)
    positions = [_position(ds) for ds in slices]
    order = np.argsort([float(p @ normal) for p in positions], kind="stable")
    slices = [slices[i] for i in order]
    along = np.array([float(positions[i] @ normal) for i in order])
    hu = np.stack([_slice_hu(ds) for ds in slices])  # (Z, Y, X)
    dy, dx = (float(v) for v in slices[0].get("PixelSpacing", [1.0, 1.0]))
    return CtSeries(
        hu=hu,
        origin_xyz=positions[order[0]],
        spacing_xyz=np.array([dx, dy, _slice_gap(path, slices[0], along)]),
        direction=np.stack([row_cos, col_cos, normal], axis=1),
        uid=str(slices[0].get("SeriesInstanceUID", path.stem)),
        path=path,
    )


def _read_dicom(pydicom: Any, file: Path) -> Any:
    try:
        ds = pydicom.dcmread(file)
    except Exception as e:  # pydicom raises InvalidDicomError, EOFError, ValueError, ...
        raise DataError(
            f"{file}: not readable DICOM ({type(e).__name__}); remove it from the series folder"
        ) from None
    if "PixelData" not in ds:
        raise DataError(f"{file}: a DICOM file without pixels; remove it from the series folder")
    return ds


def _one_series(path: Path, slices: list[Any], series_uid: str | None) -> list[Any]:
    uids = sorted({str(ds.get("SeriesInstanceUID", "")) for ds in slices})
    if series_uid is not None:
        chosen = [ds for ds in slices if str(ds.get("SeriesInstanceUID", "")) == series_uid]
        if not chosen:
            raise DataError(f"{path}: no slice of series {series_uid}; it holds {', '.join(uids)}")
        return chosen
    if len(uids) > 1:
        raise DataError(f"{path}: mixes {len(uids)} series ({', '.join(uids)}); pass series_uid")
    return slices


def _orientation(ds: Any) -> tuple[np.ndarray, np.ndarray]:
    iop = [float(v) for v in ds.get("ImageOrientationPatient", [1, 0, 0, 0, 1, 0])]
    return np.array(iop[:3]), np.array(iop[3:])


def _position(ds: Any) -> np.ndarray:
    return np.array([float(v) for v in ds.get("ImagePositionPatient", [0, 0, 0])])


def _slice_hu(ds: Any) -> np.ndarray:
    try:
        pixels = ds.pixel_array.astype(np.float32)  # (Y, X)
    except Exception as e:  # compressed syntaxes without a decoder, truncated pixel data
        raise DataError(
            f"{ds.filename}: its pixels cannot be decoded ({type(e).__name__}: {e}); "
            "decompress it (e.g. gdcmconv --raw) or install a pydicom pixel handler"
        ) from None
    if pixels.ndim != 2:
        raise DataError(f"{ds.filename}: pixel array of shape {pixels.shape}; expected one slice")
    slope = float(ds.get("RescaleSlope", 1.0))
    intercept = float(ds.get("RescaleIntercept", 0.0))
    return pixels * slope + intercept


def _slice_gap(path: Path, first: Any, along: np.ndarray) -> float:
    if len(along) < 2:
        return float(first.get("SpacingBetweenSlices", first.get("SliceThickness", 1.0)))
    gaps = np.diff(along)
    if np.any(gaps < 1e-4):
        raise DataError(f"{path}: two slices share a position; the folder holds duplicates")
    if np.ptp(gaps) > 0.01 * float(np.median(gaps)) + 1e-3:
        log.warning("%s: uneven slice gaps %.3f..%.3f mm", path, gaps.min(), gaps.max())
    return float(np.median(gaps))


# ---------------------------------------------------------------- candidates and annotations


@dataclass(frozen=True)
class Annotation:
    """One annotated nodule (``annotations.csv``), optionally with its malignancy."""

    series_uid: str
    center_xyz: tuple[float, float, float]
    diameter_mm: float
    malignant: bool | None = None


@dataclass(frozen=True)
class Candidate:
    """One candidate point (``candidates.csv``) with what the annotations say about it.

    Attributes:
        series_uid: The series it lies in.
        center_xyz: Patient millimetres.
        is_nodule: ``class`` = 1 in ``candidates.csv``.
        diameter_mm: Of the annotation it matches, else 0.0 (the book's rule).
        malignant: From the matched annotation's malignancy; None where unknown.
    """

    series_uid: str
    center_xyz: tuple[float, float, float]
    is_nodule: bool
    diameter_mm: float
    malignant: bool | None = None


def find_series(root: str | Path) -> dict[str, Path]:
    """Every ``<seriesuid>.mhd`` under ``root`` (LUNA16's ``subset0`` .. ``subset9``)."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: no such folder; point data= at the LUNA16 download")
    return {p.stem: p for p in sorted(root.rglob("*.mhd"))}


def _find_csv(root: Path, names: Sequence[str]) -> Path | None:
    for folder in (root, root / "CSVFILES"):
        for name in names:
            if (folder / name).is_file():
                return folder / name
    return None


def _read_rows(path: Path, columns: Sequence[str]) -> Iterator[tuple[int, dict[str, str]]]:
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in columns if c not in (reader.fieldnames or [])]
        if missing:
            raise DataError(f"{path}: lacks the column(s) {', '.join(missing)}; is it LUNA16's?")
        yield from enumerate(reader, start=2)


def _floats(path: Path, line: int, row: dict[str, str], keys: Sequence[str]) -> list[float]:
    try:
        return [float(row[k]) for k in keys]
    except (TypeError, ValueError):
        raise DataError(f"{path}:{line}: {', '.join(keys)} must be numbers; fix that row") from None


def read_annotations(root: str | Path) -> list[Annotation]:
    """The nodules of ``annotations.csv``, with malignancy where ``malignancy.csv`` (this
    package's synthetic set) or the book's ``annotations_with_malignancy.csv`` has it."""
    root = Path(root)
    path = _find_csv(root, ["annotations_with_malignancy.csv", "annotations.csv"])
    if path is None:
        raise DataError(
            f"{root}: no annotations.csv; use the LUNA16 folder or write_synthetic_luna"
        )
    xyz = ("coordX", "coordY", "coordZ")
    out = []
    for line, row in _read_rows(path, ["seriesuid", *xyz, "diameter_mm"]):
        x, y, z, d = _floats(path, line, row, [*xyz, "diameter_mm"])
        mal = row.get("mal_bool")
        malignant = None if mal in (None, "") else mal.strip().lower() in {"true", "1"}
        out.append(Annotation(row["seriesuid"], (x, y, z), d, malignant))
    mal_path = _find_csv(root, ["malignancy.csv"])
    return _merge_malignancy(out, mal_path) if mal_path is not None else out


def _merge_malignancy(annotations: list[Annotation], path: Path) -> list[Annotation]:
    """Give each annotation the malignancy of the ``malignancy.csv`` row within d/4 of it."""
    xyz = ("coordX", "coordY", "coordZ")
    rows: dict[str, list[tuple[list[float], bool]]] = {}
    for line, row in _read_rows(path, ["seriesuid", *xyz, "malignant"]):
        center = _floats(path, line, row, xyz)
        rows.setdefault(row["seriesuid"], []).append((center, row["malignant"].strip() == "1"))
    merged = []
    for a in annotations:
        found = [
            m for c, m in rows.get(a.series_uid, []) if _within(c, a.center_xyz, a.diameter_mm)
        ]
        malignant = found[0] if found else a.malignant
        merged.append(Annotation(a.series_uid, a.center_xyz, a.diameter_mm, malignant))
    return merged


def _within(a: Sequence[float], b: Sequence[float], diameter_mm: float) -> bool:
    """The book's match: every axis within a quarter of the diameter (a radius/2 box)."""
    return all(abs(float(p) - float(q)) <= diameter_mm / 4 for p, q in zip(a, b, strict=True))


def read_candidates(root: str | Path, *, on_disk_only: bool = True) -> list[Candidate]:
    """Every candidate of ``candidates.csv`` with the diameter and malignancy of its annotation.

    A candidate takes the diameter of the annotation of its series within a quarter diameter
    on every axis (seed 004 ch10's ``getCandidateInfoList``). Sorted as the book sorts them:
    nodules first, largest first, then by series and position.

    Args:
        root: The LUNA16 folder (CSV files at the top or in ``CSVFILES/``).
        on_disk_only: Keep only candidates whose series ``.mhd`` is under ``root`` (a partial
            download of a few subsets works).
    """
    root = Path(root)
    path = _find_csv(root, ["candidates.csv", "candidates_V2.csv"])
    if path is None:
        raise DataError(f"{root}: no candidates.csv; use the LUNA16 folder or write_synthetic_luna")
    on_disk = set(find_series(root)) if on_disk_only else None
    by_series: dict[str, list[Annotation]] = {}
    for a in read_annotations(root):
        by_series.setdefault(a.series_uid, []).append(a)
    xyz = ("coordX", "coordY", "coordZ")
    out = []
    for line, row in _read_rows(path, ["seriesuid", *xyz, "class"]):
        uid = row["seriesuid"]
        if on_disk is not None and uid not in on_disk:
            continue
        x, y, z = _floats(path, line, row, xyz)
        match = next(
            (a for a in by_series.get(uid, []) if _within((x, y, z), a.center_xyz, a.diameter_mm)),
            None,
        )
        is_nodule = row["class"].strip() == "1"
        diameter = match.diameter_mm if match else 0.0
        malignant = match.malignant if (match and is_nodule) else None
        out.append(Candidate(uid, (x, y, z), is_nodule, diameter, malignant))
    out.sort(key=lambda c: (not c.is_nodule, -c.diameter_mm, c.series_uid, c.center_xyz))
    return out


def split_series(
    uids: Sequence[str], *, val_fraction: float = 0.25, seed: int = 0
) -> tuple[list[str], list[str]]:
    """Hold out whole series (never candidates of one scan on both sides), seeded."""
    unique = sorted(set(uids))
    order = torch.randperm(len(unique), generator=torch.Generator().manual_seed(seed)).tolist()
    n_val = max(1, round(val_fraction * len(unique))) if len(unique) > 1 else 0
    val = sorted(unique[i] for i in order[:n_val])
    return [u for u in unique if u not in set(val)], val


def is_luna_folder(path: str | Path) -> bool:
    """True for a LUNA16-style folder: ``candidates.csv`` at the top (or in ``CSVFILES/``)."""
    path = Path(path)
    return path.is_dir() and _find_csv(path, ["candidates.csv", "candidates_V2.csv"]) is not None


def scan_luna_folder(root: str | Path) -> dict[str, Any]:
    """The data doctor for a LUNA16-style folder: counts and one line per problem.

    Every ``.mhd`` header is checked (required keys, ``.raw`` size) without decoding voxels;
    the CSV files are parsed; candidates whose series is absent are counted (normal for a
    download of a few subsets, so not a problem).
    """
    root = Path(root)
    series = find_series(root)
    problems = []
    for path in series.values():
        try:
            read_mhd_header(path)
        except DataError as err:
            problems.append(str(err))
    try:
        candidates = read_candidates(root, on_disk_only=False)
        annotations = read_annotations(root)
    except DataError as err:
        return {"series": len(series), "problems": [*problems, str(err)]}
    nodules = sum(c.is_nodule for c in candidates)
    absent = sum(c.series_uid not in series for c in candidates)
    unmatched = sum(c.is_nodule and c.diameter_mm == 0 for c in candidates)
    return {
        "series": len(series),
        "candidates": len(candidates),
        "nodules": nodules,
        "candidates_per_nodule": round(len(candidates) / nodules, 1) if nodules else None,
        "annotations": len(annotations),
        "with_malignancy": sum(a.malignant is not None for a in annotations),
        "candidates_without_series": absent,
        "nodules_without_annotation": unmatched,
        "problems": problems,
    }


# ---------------------------------------------------------------- chips and their cache


def clip_hu(hu: np.ndarray, low: float = HU_AIR, high: float = HU_MAX) -> np.ndarray:
    """Clip Hounsfield units to ``[low, high]`` (the book's -1000..1000), as float32."""
    return np.clip(hu, low, high).astype(np.float32, copy=False)


def extract_chip(
    series: CtSeries, center_xyz: ArrayLike, size_irc: Sequence[int] = CHIP_SIZE_IRC
) -> np.ndarray:
    """The (D, H, W) HU block centred on ``center_xyz``, padded with air outside the scan.

    The book shifts a chip that crosses the border back inside, moving the candidate
    off-centre; padding keeps every candidate in the middle voxel.
    """
    center = series.xyz_to_irc(center_xyz, rounded=True)
    out = np.full(tuple(size_irc), HU_AIR, dtype=np.float32)
    src, dst = [], []
    for c, n, dim in zip(center.tolist(), size_irc, series.shape, strict=True):
        start = c - n // 2
        lo, hi = max(start, 0), min(start + n, dim)
        if hi <= lo:
            return out
        src.append(slice(lo, hi))
        dst.append(slice(lo - start, hi - start))
    out[tuple(dst)] = series.hu[tuple(src)]
    return out


def _stamp(path: Path) -> str:
    """Size and mtime of a series' files: a changed file gives a new cache key."""
    files = [path]
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file())
    elif path.suffix.lower() == ".mhd":
        data = _parse_header(path).get("ElementDataFile", "")
        if data and (path.parent / data).is_file():
            files.append(path.parent / data)
    parts = [f"{f.name}:{f.stat().st_size}:{f.stat().st_mtime_ns}" for f in files]
    return hashlib.sha1("|".join(parts).encode()).hexdigest()[:16]


class ChipCache:
    """Candidate chips cached on disk (diskcache, as seed 004 ch10 does), keyed by the source.

    The key holds the series file's resolved path, its size and modification time (and those
    of its ``.raw``), the centre voxel and the chip size, so editing or replacing a volume
    invalidates its chips. Chips are stored as int16 HU clipped to -1000..1000 (raw bytes, no
    pickle). Loaded series stay in a small in-memory LRU so a cold pass over the candidates of
    one scan reads it once.

    Args:
        cache_dir: Folder of the cache (created).
        keep_series: How many decoded series to keep in memory.
        size_limit: diskcache's size limit in bytes.
    """

    def __init__(
        self, cache_dir: str | Path, *, keep_series: int = 2, size_limit: int = 2**34
    ) -> None:
        diskcache = require_volume("diskcache")
        self.cache_dir = Path(cache_dir)
        self.cache = diskcache.Cache(str(self.cache_dir), size_limit=size_limit)
        self.keep_series = keep_series
        self._series: OrderedDict[str, CtSeries] = OrderedDict()
        self.hits = self.misses = 0

    def series(self, path: str | Path) -> CtSeries:
        """The decoded series at ``path``, from the in-memory LRU when it is there."""
        key = str(Path(path).resolve())
        if key in self._series:
            self._series.move_to_end(key)
            return self._series[key]
        loaded = load_series(path)
        self._series[key] = loaded
        while len(self._series) > self.keep_series:
            self._series.popitem(last=False)
        return loaded

    def get(
        self,
        series: CtSeries | str | Path,
        center_xyz: ArrayLike,
        size_irc: Sequence[int] = CHIP_SIZE_IRC,
    ) -> np.ndarray:
        """The clipped (D, H, W) float32 HU chip around ``center_xyz``.

        Args:
            series: A loaded series, or the path of one (read only on a cache miss).
            center_xyz: The candidate, patient millimetres.
            size_irc: Chip size in voxels (index, row, col).
        """
        size = tuple(int(s) for s in size_irc)
        key = _chip_key(self._source_key(series), center_xyz, size)
        blob = self.cache.get(key)
        if blob is not None:
            self.hits += 1
            return np.frombuffer(blob, dtype=np.int16).reshape(size).astype(np.float32)
        self.misses += 1
        loaded = series if isinstance(series, CtSeries) else self.series(series)
        return self._store(key, loaded, center_xyz, size)

    def _store(
        self, key: str, series: CtSeries, center_xyz: ArrayLike, size: tuple[int, ...]
    ) -> np.ndarray:
        chip = np.rint(clip_hu(extract_chip(series, center_xyz, size))).astype(np.int16)
        self.cache.set(key, chip.tobytes())
        return chip.astype(np.float32)

    def warm(
        self,
        candidates: Sequence[Candidate],
        series_paths: Mapping[str, str | Path],
        size_irc: Sequence[int] = CHIP_SIZE_IRC,
    ) -> int:
        """Cache the chip of every candidate, decoding each series once (the book's prepcache).

        Returns:
            How many chips were missing and are now cached.
        """
        size = tuple(int(s) for s in size_irc)
        by_series: dict[str, list[Candidate]] = {}
        for c in candidates:
            by_series.setdefault(c.series_uid, []).append(c)
        filled = 0
        for uid in sorted(by_series):
            source = self._source_key(series_paths[uid])
            keys = {_chip_key(source, c.center_xyz, size): c for c in by_series[uid]}
            missing = [k for k in keys if k not in self.cache]
            if missing:
                series = load_series(series_paths[uid])
                for key in missing:
                    self._store(key, series, keys[key].center_xyz, size)
                filled += len(missing)
        return filled

    def _source_key(self, series: CtSeries | str | Path) -> str:
        if isinstance(series, CtSeries):
            if series.path is not None:
                return f"{series.path.resolve()}|{_stamp(series.path)}"
            digest = hashlib.sha1(np.ascontiguousarray(series.hu).tobytes()).hexdigest()[:16]
            return f"mem:{series.uid}|{digest}"
        path = Path(series)
        if not path.exists():
            raise DataError(f"{path}: no such series file; was the data folder moved?")
        return f"{path.resolve()}|{_stamp(path)}"

    def close(self) -> None:
        """Close the diskcache handle."""
        self.cache.close()


def _chip_key(source: str, center_xyz: ArrayLike, size: tuple[int, ...]) -> str:
    centre = ",".join(f"{v:.3f}" for v in np.asarray(center_xyz, dtype=np.float64).ravel())
    return f"{source}|{centre}|{size}"


# ---------------------------------------------------------------- the dataset


@dataclass(frozen=True)
class ChipAugment:
    """3-D augmentation of a chip (seed 004 ch12's ``getCtAugmentedCandidate``).

    One affine warp (flips, offset, scale, rotation about the slice axis) then Gaussian noise.

    Args:
        flip: Mirror each axis with probability 1/2.
        offset: Largest shift, as a fraction of the chip's half-width per axis.
        scale: Largest relative zoom per axis.
        rotate: Rotate by a random angle in the row/col plane (slices are anisotropic).
        noise_hu: Standard deviation of added noise, in HU.
    """

    flip: bool = True
    offset: float = 0.1
    scale: float = 0.2
    rotate: bool = True
    noise_hu: float = 25.0

    def __call__(self, chip: Tensor) -> Tensor:
        """Warp a (C, D, H, W) chip; randomness from torch's global generator (seeded)."""
        theta = torch.eye(4)
        for i in range(3):  # affine_grid axes: 0 = col (x), 1 = row (y), 2 = index (z)
            if self.flip and torch.rand(()) > 0.5:
                theta[i, i] *= -1
            theta[i, 3] = self.offset * (torch.rand(()) * 2 - 1)
            theta[i, i] *= 1.0 + self.scale * (torch.rand(()) * 2 - 1)
        if self.rotate:
            angle = float(torch.rand(())) * 2 * math.pi
            c, s = math.cos(angle), math.sin(angle)
            rotation = torch.tensor([[c, -s, 0, 0], [s, c, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1.0]])
            theta = theta @ rotation
        batch = chip.unsqueeze(0)  # (1, C, D, H, W)
        grid = F.affine_grid(theta[:3].unsqueeze(0), list(batch.shape), align_corners=False)
        out = F.grid_sample(batch, grid, padding_mode="border", align_corners=False)[0]
        if self.noise_hu > 0:
            out = out + torch.randn(out.shape) * (self.noise_hu / HU_MAX)
        return out


class NoduleChips(Dataset[tuple[Tensor, Tensor]]):
    """Candidates as ``(chip, label)``: chip (1, D, H, W) float32 = clipped HU / 1000.

    Args:
        candidates: From :func:`read_candidates` (filter them first: one split, or nodules
            only for malignancy).
        series_paths: Series UID -> file (:func:`find_series`).
        cache: The chip cache.
        size_irc: Chip size in voxels (index, row, col).
        augment: Applied to every chip (training only), e.g. ``ChipAugment()``.
        label: ``"nodule"`` (``is_nodule``) or ``"malignant"`` (unknown counts as 0).
        warm: Fill the cache now, one series at a time (:meth:`ChipCache.warm`); without it
            a shuffled first epoch may decode a series for every chip.
    """

    def __init__(
        self,
        candidates: Sequence[Candidate],
        *,
        series_paths: Mapping[str, Path],
        cache: ChipCache,
        size_irc: Sequence[int] = CHIP_SIZE_IRC,
        augment: ChipAugment | None = None,
        label: Literal["nodule", "malignant"] = "nodule",
        warm: bool = True,
    ) -> None:
        missing = sorted({c.series_uid for c in candidates} - set(series_paths))
        if missing:
            raise DataError(f"series {missing[0]} (and {len(missing) - 1} more) has no .mhd file")
        self.candidates = list(candidates)
        self.series_paths, self.cache = dict(series_paths), cache
        self.size_irc, self.augment, self.label = tuple(size_irc), augment, label
        if warm:
            cache.warm(self.candidates, self.series_paths, self.size_irc)

    def __len__(self) -> int:
        return len(self.candidates)

    @property
    def labels(self) -> list[int]:
        """The 0/1 label of every candidate, in order (for samplers and metrics)."""
        if self.label == "malignant":
            return [int(bool(c.malignant)) for c in self.candidates]
        return [int(c.is_nodule) for c in self.candidates]

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor]:
        c = self.candidates[i]
        hu = self.cache.get(self.series_paths[c.series_uid], c.center_xyz, self.size_irc)
        chip = torch.from_numpy(hu / HU_MAX).float().unsqueeze(0)  # (1, D, H, W)
        if self.augment is not None:
            chip = self.augment(chip)
        flag = c.malignant if self.label == "malignant" else c.is_nodule
        return chip, torch.tensor(int(bool(flag)))


class RatioSampler(Sampler[int]):
    """The book's balancing: one positive, then ``ratio`` negatives, over and over.

    Positives and negatives are each shuffled per epoch and cycled, so a rare class repeats.
    Epoch ``e``'s order depends only on ``(seed, e)``; ``set_epoch``/``set_start`` make it
    resumable mid-epoch as the engine's samplers are.

    Args:
        labels: 0/1 label of every sample.
        ratio: Negatives per positive (1 = half and half; 0 disables balancing: plain shuffle).
        num_samples: Samples per epoch (default: the data set's length).
        seed: Seeds each epoch's order.
    """

    def __init__(
        self,
        labels: Sequence[int],
        *,
        ratio: int = 1,
        num_samples: int | None = None,
        seed: int = 0,
    ) -> None:
        flags = torch.as_tensor(list(labels)) > 0
        self.pos, self.neg = flags.nonzero().flatten(), (~flags).nonzero().flatten()
        if ratio > 0 and (len(self.pos) == 0 or len(self.neg) == 0):
            raise DataError("balancing needs both classes; this split holds only one")
        self.ratio, self.seed = ratio, seed
        self.num_samples = num_samples or len(flags)
        self.epoch = self.start = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def set_start(self, sample_index: int) -> None:
        self.start = sample_index

    def order(self) -> list[int]:
        """This epoch's sample indices."""
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        if self.ratio <= 0:
            n = len(self.pos) + len(self.neg)
            draws = torch.cat(
                [torch.randperm(n, generator=generator)] * (self.num_samples // n + 1)
            )
            return draws[: self.num_samples].tolist()
        pos = self.pos[torch.randperm(len(self.pos), generator=generator)]
        neg = self.neg[torch.randperm(len(self.neg), generator=generator)]
        i = torch.arange(self.num_samples)
        block, slot = i // (self.ratio + 1), i % (self.ratio + 1)
        neg_index = block * self.ratio + slot - 1
        out = torch.where(slot == 0, pos[block % len(pos)], neg[neg_index.clamp(min=0) % len(neg)])
        return out.tolist()

    def __iter__(self) -> Iterator[int]:
        start, self.start = self.start, 0
        return iter(self.order()[start:])

    def __len__(self) -> int:
        return self.num_samples


# ---------------------------------------------------------------- nodule masks (ch13)


def nodule_mask(
    series: CtSeries, annotations: Sequence[Annotation | Candidate], *, threshold_hu: float = -700.0
) -> np.ndarray:
    """Boolean (Z, Y, X) nodule mask built from centres, as seed 004 ch13 builds it.

    From each nodule's centre voxel a box grows along each axis while the voxels on both sides
    stay above ``threshold_hu``; the mask is the box's voxels above the threshold. Candidates
    that are not nodules are skipped.
    """
    hu = series.hu
    mask = np.zeros(hu.shape, dtype=bool)
    for a in annotations:
        if isinstance(a, Candidate) and not a.is_nodule:
            continue
        if a.series_uid != series.uid:
            continue
        center = series.xyz_to_irc(a.center_xyz, rounded=True)
        if np.any(center < 0) or np.any(center >= np.array(hu.shape)):
            continue
        radius = [_grow(hu, center, axis, threshold_hu) for axis in range(3)]
        box = tuple(
            slice(max(c - r, 0), c + r + 1) for c, r in zip(center.tolist(), radius, strict=True)
        )
        mask[box] |= hu[box] > threshold_hu
    return mask


def _grow(hu: np.ndarray, center: np.ndarray, axis: int, threshold: float) -> int:
    radius = 2
    idx = center.copy()
    try:
        while True:
            lo, hi = idx.copy(), idx.copy()
            lo[axis] -= radius
            hi[axis] += radius
            if lo[axis] < 0 or hu[tuple(hi)] <= threshold or hu[tuple(lo)] <= threshold:
                break
            radius += 1
    except IndexError:
        radius -= 1
    return max(radius, 1)


def write_synthetic_luna(
    root: str | Path,
    *,
    n_series: int = 8,
    seed: int = 0,
    shape: tuple[int, int, int] = (48, 96, 96),
    negatives_per_nodule: int = 100,
) -> Path:
    """Write a seeded LUNA16 twin under ``root``: see :mod:`torchdojo.data.ct_synthetic`."""
    from torchdojo.data.ct_synthetic import write_synthetic_luna as write

    return write(
        root,
        n_series=n_series,
        seed=seed,
        shape=shape,
        negatives_per_nodule=negatives_per_nodule,
    )
