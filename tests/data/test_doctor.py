"""The data doctor finds every planted problem, with its path."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from torchdojo.data.doctor import DoctorReport, scan_folder

if TYPE_CHECKING:  # conftest is pytest's to import; the name is only for readers
    from conftest import TortureFolder


@pytest.fixture(scope="module")
def report(torture_folder: TortureFolder) -> DoctorReport:
    return scan_folder(torture_folder.root)


def test_unreadable_files_are_listed_with_reasons(
    report: DoctorReport, torture_folder: TortureFolder
) -> None:
    reasons = {bad.path: bad.reason for bad in report.unreadable}
    expected = torture_folder.expected
    assert set(reasons) == expected["zero_byte"] | expected["truncated"] | expected["disguised"]
    assert reasons["train/cats/zero.jpg"] == "zero-byte file"
    assert reasons["train/cats/truncated.jpg"].startswith("truncated")
    assert reasons["train/dogs/fake.png"].startswith("not an image")


def test_non_image_and_stray_files(report: DoctorReport, torture_folder: TortureFolder) -> None:
    assert set(report.non_image) == torture_folder.expected["non_image"]
    assert set(report.stray) == torture_folder.expected["stray"]


def test_odd_modes(report: DoctorReport, torture_folder: TortureFolder) -> None:
    for mode in ("CMYK", "I;16", "P", "RGBA", "L"):
        assert set(report.odd_modes[mode]) == torture_folder.expected[mode], mode
    assert "RGB" not in report.odd_modes
    assert report.modes["RGB"] == report.num_readable - sum(map(len, report.odd_modes.values()))


def test_exif_rotation_found_and_applied_to_sizes(
    report: DoctorReport, torture_folder: TortureFolder
) -> None:
    assert set(report.exif_rotated) == torture_folder.expected["rotated"]
    # stored 60x20, shown 20x60: only the rotated file can make these extremes
    assert report.size_stats["width"] == {"min": 20.0, "median": 48.0, "max": 48.0}
    assert report.size_stats["height"]["max"] == 60.0


def test_duplicates_and_leakage(report: DoctorReport, torture_folder: TortureFolder) -> None:
    groups = {frozenset(group) for group in report.duplicates}
    assert groups == {
        frozenset(torture_folder.expected["duplicate"]),
        frozenset(torture_folder.expected["leak"]),
    }
    assert [set(group) for group in report.leaks] == [torture_folder.expected["leak"]]


def test_class_counts_and_imbalance(report: DoctorReport) -> None:
    assert report.has_splits
    assert report.classes == ["birds", "cats", "dogs"]
    # readable only: cats lose zero.jpg and truncated.jpg, dogs lose fake.png
    assert report.class_counts["train"] == {"birds": 5, "cats": 7, "dogs": 7}
    assert report.class_counts["val"] == {"birds": 2, "cats": 2, "dogs": 2}
    assert report.imbalance["train"] == pytest.approx(7 / 5)
    assert report.imbalance["val"] == 1.0
    assert report.missing_classes == {"train": [], "val": []}
    assert report.num_files == 28
    assert report.num_readable == 25


def test_bad_fraction_threshold(torture_folder: TortureFolder, report: DoctorReport) -> None:
    assert report.bad_fraction == pytest.approx(3 / 28)
    assert report.too_many_bad
    assert not scan_folder(torture_folder.root, max_bad_fraction=0.2).too_many_bad


def test_problems_table_and_json(report: DoctorReport, torture_folder: TortureFolder) -> None:
    kinds: dict[str, set[str]] = {}
    for row in report.problems:
        kinds.setdefault(row.kind, set()).add(row.path)
    assert kinds["leak"] == torture_folder.expected["leak"]
    assert kinds["duplicate"] == torture_folder.expected["duplicate"]
    assert kinds["exif-rotated"] == torture_folder.expected["rotated"]
    assert len(kinds["unreadable"]) == 3
    assert report.problems[0].kind == "unreadable"
    data = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert data["too_many_bad"] is True
    assert data["unreadable"][0].keys() == {"path", "reason"}


def test_flat_folder_and_empty_class(flat_folder: Path, tmp_path: Path) -> None:
    report = scan_folder(flat_folder)
    assert not report.has_splits
    assert report.class_counts == {"all": {"a": 10, "b": 20, "c": 30}}
    assert report.imbalance["all"] == 3.0
    assert report.problems == []
    (tmp_path / "x").mkdir()
    (tmp_path / "empty").mkdir()
    (tmp_path / "x" / "one.txt").write_text("no image")
    lonely = scan_folder(tmp_path)
    assert lonely.imbalance["all"] is None
    assert lonely.missing_classes["all"] == ["empty", "x"]


def test_missing_folder_raises(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="does not exist"):
        scan_folder(tmp_path / "nope")
    with pytest.raises(ValueError, match="no class subfolders"):
        scan_folder(tmp_path)


def test_hymenoptera(hymenoptera: Path) -> None:
    report = scan_folder(hymenoptera)
    # the shared copy holds 243 train images (the tutorial's 245 less two), 153 val
    assert report.class_counts == {
        "train": {"ants": 122, "bees": 121},
        "val": {"ants": 70, "bees": 83},
    }
    assert report.num_files == report.num_readable == 396
    assert report.problems == []
