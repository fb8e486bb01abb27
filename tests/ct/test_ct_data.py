"""Lung-CT data: MetaImage and DICOM reading, mm <-> voxel, candidates, the chip cache."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("SimpleITK")
pytest.importorskip("pydicom")
pytest.importorskip("diskcache")

import SimpleITK as sitk  # noqa: E402

from torchdojo.data.ct import (  # noqa: E402
    ChipAugment,
    ChipCache,
    CtSeries,
    NoduleChips,
    RatioSampler,
    extract_chip,
    find_series,
    irc_to_xyz,
    is_luna_folder,
    load_dicom_series,
    load_series,
    nodule_mask,
    read_annotations,
    read_candidates,
    scan_luna_folder,
    split_series,
    write_synthetic_luna,
    xyz_to_irc,
)
from torchdojo.data.ct_synthetic import write_dicom_series  # noqa: E402
from torchdojo.data.errors import DataError  # noqa: E402

TINY = {"n_series": 3, "seed": 0, "shape": (16, 32, 32), "negatives_per_nodule": 20}


@pytest.fixture(scope="module")
def luna(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic_luna(tmp_path_factory.mktemp("luna") / "luna", **TINY)


def _rotation(degrees: float) -> np.ndarray:
    """A rotation about a tilted axis: no symmetry to hide a transposed inverse."""
    axis = np.array([1.0, 2.0, 3.0]) / np.sqrt(14.0)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    a = np.radians(degrees)
    return np.eye(3) + np.sin(a) * k + (1 - np.cos(a)) * (k @ k)


# ---------------------------------------------------------------- coordinates


def test_mm_voxel_round_trip_matches_simpleitk() -> None:
    direction = _rotation(37.0) @ np.diag([-1.0, 1.0, 1.0])  # rotated and mirrored
    origin, spacing = np.array([-120.5, 33.0, -301.25]), np.array([0.7, 0.8, 2.5])
    image = sitk.Image(5, 6, 7, sitk.sitkInt16)
    image.SetOrigin(origin.tolist())
    image.SetSpacing(spacing.tolist())
    image.SetDirection(direction.ravel().tolist())
    irc = np.array([[3.0, 2.5, 1.0], [0.0, 0.0, 0.0], [6.0, 5.0, 4.0]])
    xyz = irc_to_xyz(irc, origin, spacing, direction)
    for p_irc, p_xyz in zip(irc, xyz, strict=True):
        itk = image.TransformContinuousIndexToPhysicalPoint(p_irc[::-1].tolist())
        np.testing.assert_allclose(p_xyz, itk, atol=1e-9)
    np.testing.assert_allclose(xyz_to_irc(xyz, origin, spacing, direction), irc, atol=1e-9)
    np.testing.assert_array_equal(
        xyz_to_irc(xyz[0] + 0.1, origin, spacing, direction, rounded=True),
        np.rint(xyz_to_irc(xyz[0] + 0.1, origin, spacing, direction)).astype(np.int64),
    )


# ---------------------------------------------------------------- MetaImage


def _write_luna_style(folder: Path, array: np.ndarray, *, header_extra: str = "") -> Path:
    """A header laid out as LUNA16's own files are, with the .raw written by hand."""
    z, y, x = array.shape
    mhd = folder / "1.2.3.mhd"
    mhd.write_text(
        "ObjectType = Image\nNDims = 3\nBinaryData = True\nBinaryDataByteOrderMSB = False\n"
        "CompressedData = False\nTransformMatrix = 1 0 0 0 1 0 0 0 1\n"
        "Offset = -195 -195 -378\nCenterOfRotation = 0 0 0\nAnatomicalOrientation = RAI\n"
        f"ElementSpacing = 0.7 0.7 2.5\n{header_extra}DimSize = {x} {y} {z}\n"
        "ElementType = MET_SHORT\nElementDataFile = 1.2.3.raw\n"
    )
    (folder / "1.2.3.raw").write_bytes(array.astype("<i2").tobytes())
    return mhd


def test_reads_a_luna16_header_in_index_row_col_order(tmp_path: Path) -> None:
    array = np.arange(3 * 4 * 5, dtype=np.int16).reshape(3, 4, 5) - 1000  # (Z, Y, X)
    series = load_series(_write_luna_style(tmp_path, array))
    np.testing.assert_array_equal(series.hu, array.astype(np.float32))
    np.testing.assert_allclose(series.origin_xyz, [-195, -195, -378])
    np.testing.assert_allclose(series.spacing_xyz, [0.7, 0.7, 2.5])
    assert series.uid == "1.2.3" and series.hu.dtype == np.float32


def test_wrong_raw_size_names_the_file(tmp_path: Path) -> None:
    mhd = _write_luna_style(tmp_path, np.zeros((3, 4, 5), np.int16))
    (tmp_path / "1.2.3.raw").write_bytes(b"\0" * 100)
    with pytest.raises(DataError, match=r"1\.2\.3\.raw: holds 100 bytes but .* says 120"):
        load_series(mhd)


def test_header_missing_a_key_names_file_and_key(tmp_path: Path) -> None:
    mhd = _write_luna_style(tmp_path, np.zeros((3, 4, 5), np.int16))
    mhd.write_text(mhd.read_text().replace("DimSize = 5 4 3\n", ""))
    with pytest.raises(DataError, match=r"1\.2\.3\.mhd: MetaImage header lacks DimSize"):
        load_series(mhd)


# ---------------------------------------------------------------- DICOM


def test_dicom_ct_small_in_hounsfield_units() -> None:
    from pydicom import dcmread
    from pydicom.data import get_testdata_file

    path = get_testdata_file("CT_small.dcm")
    assert path is not None
    series = load_dicom_series(path)
    ds = dcmread(path)
    expected = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    np.testing.assert_array_equal(series.hu[0], expected)
    itk = sitk.ReadImage(path)
    np.testing.assert_array_equal(series.hu, sitk.GetArrayFromImage(itk))
    np.testing.assert_allclose(series.origin_xyz, itk.GetOrigin(), atol=1e-5)
    np.testing.assert_allclose(series.spacing_xyz[:2], itk.GetSpacing()[:2], atol=1e-6)
    assert series.hu.min() < -800  # air outside the body: the intercept was applied


def test_dicom_series_written_shuffled_reads_back_sorted(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    hu = rng.integers(-1000, 1500, (4, 6, 5)).astype(np.float32)
    truth = CtSeries(
        hu, np.array([-10.0, 20.0, -30.0]), np.array([0.7, 0.8, 2.5]), _rotation(30), "9.9"
    )
    write_dicom_series(tmp_path, truth, slope=1.0, intercept=-1024.0)
    series = load_dicom_series(tmp_path)
    np.testing.assert_array_equal(series.hu, hu)
    np.testing.assert_allclose(series.origin_xyz, truth.origin_xyz, atol=1e-5)
    np.testing.assert_allclose(series.spacing_xyz, truth.spacing_xyz, atol=1e-5)
    np.testing.assert_allclose(series.direction, truth.direction, atol=1e-5)
    assert load_series(tmp_path).hu.shape == (4, 6, 5)  # load_series passes folders on


def test_unreadable_dicom_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "broken.dcm"
    bad.write_bytes(b"not a dicom file at all" * 10)
    with pytest.raises(DataError, match=r"broken\.dcm: not readable DICOM"):
        load_dicom_series(bad)


# ---------------------------------------------------------------- the synthetic set


def test_synthetic_set_in_luna16_format(luna: Path) -> None:
    series = find_series(luna)
    assert len(series) == TINY["n_series"]
    assert all(
        p.parent.name == "subset0" and p.with_suffix(".raw").is_file() for p in series.values()
    )
    header = (next(iter(series.values()))).read_text()
    assert "ElementType = MET_SHORT" in header and "ElementDataFile" in header
    directions = [load_series(p).direction for p in series.values()]
    assert any(not np.allclose(d, np.eye(3)) for d in directions)
    candidates = read_candidates(luna)
    nodules = [c for c in candidates if c.is_nodule]
    assert nodules and len(candidates) >= 10 * len(nodules)  # LUNA16-like imbalance
    assert all(c.diameter_mm >= 3 and c.malignant is not None for c in nodules)
    assert all(c.malignant is None for c in candidates if not c.is_nodule)
    assert len(read_annotations(luna)) <= len(nodules)


def test_nodules_are_where_the_csv_says_through_flipped_axes(luna: Path) -> None:
    paths = find_series(luna)
    for a in read_annotations(luna):
        series = load_series(paths[a.series_uid])
        i, r, c = series.xyz_to_irc(a.center_xyz, rounded=True)
        centre = series.hu[i, r - 1 : r + 2, c - 1 : c + 2].mean()
        assert centre > -780, (a, centre, series.direction)  # lungs are ~-850; nodules denser
        mask = nodule_mask(series, [a])
        assert mask[i, r, c] and mask.sum() >= 3


def test_same_seed_same_bytes(luna: Path, tmp_path: Path) -> None:
    again = write_synthetic_luna(tmp_path / "again", **TINY)
    for name in ("candidates.csv", "annotations.csv", "malignancy.csv"):
        assert (again / name).read_bytes() == (luna / name).read_bytes()
    for uid, path in find_series(luna).items():
        assert (again / "subset0" / f"{uid}.raw").read_bytes() == path.with_suffix(
            ".raw"
        ).read_bytes()


# ---------------------------------------------------------------- candidates CSV


def test_candidates_take_the_diameter_of_the_annotation_within_a_quarter(tmp_path: Path) -> None:
    (tmp_path / "annotations.csv").write_text(
        "seriesuid,coordX,coordY,coordZ,diameter_mm\ns1,0,0,0,8\n"
    )
    (tmp_path / "candidates.csv").write_text(
        "seriesuid,coordX,coordY,coordZ,class\ns1,1.9,-1.9,0,1\ns1,2.1,0,0,0\ns2,0,0,0,0\n"
    )
    near, far, other = read_candidates(tmp_path, on_disk_only=False)
    assert (near.is_nodule, near.diameter_mm) == (True, 8.0)
    assert far.diameter_mm == 0.0 and other.diameter_mm == 0.0
    assert read_candidates(tmp_path) == []  # no .mhd on disk: nothing kept
    (tmp_path / "candidates.csv").write_text("seriesuid,coordX,coordY,coordZ,class\ns1,a,0,0,1\n")
    with pytest.raises(DataError, match=r"candidates\.csv:2: .*must be numbers"):
        read_candidates(tmp_path, on_disk_only=False)
    (tmp_path / "candidates.csv").write_text("seriesuid,x,y,z,class\n")
    with pytest.raises(DataError, match="lacks the column"):
        read_candidates(tmp_path, on_disk_only=False)


def test_split_holds_out_whole_series() -> None:
    train, val = split_series(["a", "b", "c", "d", "a"], val_fraction=0.25, seed=3)
    assert (
        len(val) == 1 and not set(train) & set(val) and sorted(train + val) == ["a", "b", "c", "d"]
    )
    assert split_series(["a", "b", "c", "d"], seed=3) == (train, val)


# ---------------------------------------------------------------- chips, cache, dataset


def test_chip_cache_hits_and_invalidates_when_the_file_changes(luna: Path, tmp_path: Path) -> None:
    uid, path = next(iter(find_series(luna).items()))
    copy = tmp_path / "copy"
    shutil.copytree(path.parent, copy)
    mhd = copy / path.name
    series = load_series(mhd)
    center = series.irc_to_xyz([8, 16, 16])
    cache = ChipCache(tmp_path / "cache")
    chip = cache.get(mhd, center, (8, 12, 12))
    expected = np.clip(extract_chip(series, center, (8, 12, 12)), -1000, 1000)
    np.testing.assert_array_equal(chip, np.rint(expected))
    np.testing.assert_array_equal(cache.get(mhd, center, (8, 12, 12)), chip)
    assert (cache.hits, cache.misses) == (1, 1)
    raw = mhd.with_suffix(".raw")
    raw.write_bytes(np.full(series.hu.size, 500, "<i2").tobytes())
    stat = raw.stat()
    os.utime(raw, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    cache._series.clear()
    assert np.all(cache.get(mhd, center, (8, 12, 12)) == 500) and cache.misses == 2
    edge = cache.get(series, series.irc_to_xyz([0, 0, 0]), (4, 4, 4))
    assert np.all(edge[:2] == -1000) and np.all(edge[:, :2] == -1000)  # air outside the scan
    cache.close()


def test_nodule_chips_balanced_and_augmented(luna: Path, tmp_path: Path) -> None:
    candidates = read_candidates(luna)
    cache = ChipCache(tmp_path)
    data = NoduleChips(
        candidates, series_paths=find_series(luna), cache=cache, size_irc=(8, 16, 16)
    )
    assert cache.warm(candidates, find_series(luna), (8, 16, 16)) == 0  # warmed on creation
    x, y = data[0]
    assert x.shape == (1, 8, 16, 16) and x.dtype == torch.float32 and y.item() == 1
    assert (cache.hits, cache.misses) == (1, 0)
    assert -1.0 <= x.min() and x.max() <= 1.0
    sampler = RatioSampler(data.labels, ratio=1, num_samples=40, seed=0)
    order = list(sampler)
    assert sum(data.labels[i] for i in order) == 20  # one positive, one negative, ...
    sampler.set_epoch(1)
    assert list(sampler) != order
    sampler.set_epoch(0)
    sampler.set_start(10)
    assert list(sampler) == order[10:]
    augment = ChipAugment()
    torch.manual_seed(0)
    a = augment(x)
    torch.manual_seed(0)
    assert torch.equal(augment(x), a) and a.shape == x.shape and not torch.equal(a, x)


def test_doctor_counts_a_luna_folder_and_names_a_truncated_raw(
    luna: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import typer

    from torchdojo.cli.ct_doctor import ct_doctor

    copy = tmp_path / "luna"
    shutil.copytree(luna, copy)
    assert is_luna_folder(copy) and not is_luna_folder(copy / "subset0")
    ct_doctor(copy, tmp_path / "report.json")
    nodules = sum(c.is_nodule for c in read_candidates(luna))
    out = capsys.readouterr().out
    assert f"nodules: {nodules}" in out and "no problems found" in out
    raw = next((copy / "subset0").glob("*.raw"))
    raw.write_bytes(raw.read_bytes()[:-10])
    report = scan_luna_folder(copy)
    assert len(report["problems"]) == 1 and raw.name in report["problems"][0]
    with pytest.raises(typer.Exit):
        ct_doctor(copy, None)
