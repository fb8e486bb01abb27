"""report.html is one self-contained, escaped page with a pass/fail metrics table."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch

from torchdojo.viz import plot_curves, write_report
from torchdojo.viz.report import _verdict

_ROWS: list[dict[str, Any]] = [
    {"split": "train", "epoch": 0, "step": s, "loss": 2.0 / s, "lr": 0.1, "samples_per_s": 900.0}
    for s in range(1, 40)
] + [{"split": "val", "epoch": 0, "step": 39, "loss": 0.1, "acc": 0.97}]

EXPECTED = {
    "val_acc": {"floor": 0.99, "data": "mnist", "measured_by": "torchdojo run mnist-cnn"},
    "val_mse": {"ceiling": 0.05, "data": "mnist", "measured_by": "torchdojo run mnist-cnn"},
}


def _write(tmp_path: Path, *, smoke: bool, metrics: dict[str, float]) -> str:
    images = plot_curves(_ROWS, tmp_path / "plots")
    config: dict[str, Any] = {
        "smoke": smoke,
        "lr": 0.1,
        "note": "<script>alert('x')</script>",
        "optimizer": {"name": "sgd", "momentum": 0.9},
    }
    env = {"versions": {"torch": "2.14.1"}, "git_sha": "abc123", "seed": 0, "threads": 1}
    path = write_report(
        tmp_path,
        title="mnist-cnn <b>",
        summary="val_acc 0.991 after 3 epochs & 41 s",
        config=config,
        metrics=metrics,
        expected=EXPECTED,
        images=[*images, tmp_path / "missing.png"],
        env=env,
    )
    assert path == tmp_path / "report.html"
    return path.read_text(encoding="utf-8")


def test_self_contained_and_escaped(tmp_path: Path) -> None:
    page = _write(tmp_path, smoke=False, metrics={"val_acc": 0.995, "val_mse": 0.01})
    sources = re.findall(r'\b(?:src|href)\s*=\s*"([^"]*)"', page)
    assert len(sources) == 3 and all(s.startswith("data:image/png;base64,") for s in sources)
    assert "http://" not in page and "https://" not in page
    assert "<script" not in page and "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    assert "mnist-cnn &lt;b&gt;" in page and "3 epochs &amp; 41 s" in page
    assert "optimizer.momentum" in page and "versions.torch" in page and "abc123" in page
    assert "missing.png" in page  # listed as not found, not fatal


def test_pass_and_fail_against_floors(tmp_path: Path) -> None:
    page = _write(tmp_path, smoke=False, metrics={"val_acc": 0.98, "val_mse": 0.01, "extra": 1.0})
    cells = re.findall(r'<td class="(pass|fail|na)">', page)
    assert cells == ["fail", "pass", "na"]  # acc below floor, mse under ceiling, no floor


def test_smoke_run_is_not_comparable(tmp_path: Path) -> None:
    page = _write(tmp_path, smoke=True, metrics={"val_acc": 0.2})
    assert "smoke run" in page
    assert re.findall(r'<td class="(pass|fail|na)">', page) == ["na", "na"]
    assert "not comparable" in page


def test_verdict_edge_cases() -> None:
    spec = {"floor": 0.5}
    assert _verdict(0.5, spec, smoke=False) == ("pass", "pass")
    assert _verdict(None, spec, smoke=False)[0] == "fail"
    assert _verdict(float("nan"), spec, smoke=False)[0] == "fail"


def test_wide_plots_take_a_full_row(tmp_path: Path) -> None:
    from torchdojo.viz import image_grid, save_figure

    wide = save_figure(image_grid(torch.rand(8, 3, 8, 8), ncols=8), tmp_path / "grid.png")
    path = write_report(
        tmp_path, title="t", summary="s", config={}, metrics={}, expected={}, images=[wide], env={}
    )
    assert '<figure class="wide"><img src="data:image/png;base64,' in path.read_text()
