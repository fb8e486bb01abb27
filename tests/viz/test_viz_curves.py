"""plot_curves writes real PNGs from metrics.jsonl rows and skips what is absent."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image

from torchdojo.viz import plot_curves

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
Records = Callable[..., list[dict[str, Any]]]


def _check_png(path: Path) -> None:
    assert path.read_bytes()[:8] == PNG_MAGIC
    assert 5_000 < path.stat().st_size < 500_000
    with Image.open(path) as image:
        width, height = image.size
    assert 300 <= width <= 2000 and 200 <= height <= 2000


def test_writes_loss_metrics_and_lr(tmp_path: Path, metrics_records: Records) -> None:
    paths = plot_curves(metrics_records(), tmp_path / "plots")
    assert [p.name for p in paths] == ["loss.png", "acc.png", "r2.png", "lr.png"]
    for path in paths:
        assert path.parent == tmp_path / "plots"
        _check_png(path)
    assert not list((tmp_path / "plots").glob(".*.tmp")), "atomic write left a temp file"


def test_single_val_point_and_no_train_rows(tmp_path: Path) -> None:
    rows = [{"split": "val", "epoch": 0, "step": 4, "loss": 0.7, "mse": 0.2}]
    paths = plot_curves(rows, tmp_path)
    assert [p.name for p in paths] == ["loss.png", "mse.png"]  # no lr rows -> no lr.png
    for path in paths:
        _check_png(path)


def test_skips_everything_absent_and_tolerates_nan(
    tmp_path: Path, metrics_records: Records
) -> None:
    assert plot_curves([], tmp_path) == []
    rows = metrics_records(epochs=1)
    rows[0]["loss"] = float("nan")
    paths = plot_curves(rows, tmp_path)
    assert (tmp_path / "loss.png").is_file() and len(paths) == 4
