"""`torchdojo lr-find` and `torchdojo show-batch` on the smoke data."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

import torchdojo.cli.cmd_techniques  # noqa: F401  (registers lr-find, show-batch)
from torchdojo.cli.app import app

runner = CliRunner()


def test_lr_find_writes_a_plot_and_suggests_an_lr(tmp_path: Path) -> None:
    out = tmp_path / "lr.png"
    result = runner.invoke(
        app, ["lr-find", "mnist-cnn", "--smoke", "--steps", "30", "--output", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "steepest descent at lr=" in result.output
    suggestion = float(result.output.split("lr=")[1].split()[0])
    assert 1e-6 <= suggestion <= 1.0
    assert out.stat().st_size > 5_000


def test_lr_find_refuses_recipes_it_cannot_build() -> None:
    result = runner.invoke(app, ["lr-find", "linear-regression", "--smoke"])
    assert result.exit_code == 2
    assert "lr-find knows how to build" in result.output


def test_show_batch_with_cutmix_writes_a_grid(tmp_path: Path) -> None:
    out = tmp_path / "batch.png"
    result = runner.invoke(
        app,
        [
            "show-batch",
            "mnist-cnn",
            "--smoke",
            "--count",
            "8",
            "--mix",
            "cutmix",
            "--output",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert out.stat().st_size > 5_000


def test_show_batch_explains_non_image_recipes() -> None:
    result = runner.invoke(app, ["show-batch", "mnist1d-cnn", "--smoke"])
    assert result.exit_code == 2
    assert "not images" in result.output
