"""`torchdojo lr-find` and `torchdojo show-batch` on the smoke data, through the recipe contract,
writing into the run tree only."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from torchdojo.cli.app import _register_commands, app

_register_commands()
runner = CliRunner()
RECIPES = ["digits-mlp", "fashion-mnist-cnn", "mnist-cnn"]


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


@pytest.mark.parametrize("recipe", RECIPES)
def test_lr_find_sweeps_the_recipes_own_optimizer(recipe: str, tmp_path: Path) -> None:
    """Before, fashion-mnist-cnn and digits-mlp answered "builds its model inside run()"."""
    args = ["lr-find", recipe, "--smoke", "--steps", "30", "--out", str(tmp_path)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "steepest descent at lr=" in result.output
    suggestion = float(result.output.split("lr=")[1].split()[0])
    assert 1e-6 <= suggestion <= 1.0
    (folder,) = (tmp_path / recipe).glob("lr-find-*")
    assert (folder / "lr_find.png").stat().st_size > 5_000
    sweep = json.loads((folder / "lr_find.json").read_text())
    assert sweep["recipe"] == recipe and len(sweep["lrs"]) == len(sweep["losses"]) >= 3


@pytest.mark.parametrize("recipe", RECIPES)
def test_show_batch_shows_the_recipes_training_images(recipe: str, tmp_path: Path) -> None:
    args = ["show-batch", recipe, "--smoke", "--count", "8", "--out", str(tmp_path)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    (folder,) = (tmp_path / recipe).glob("show-batch-*")
    assert (folder / "batch.png").stat().st_size > 2_000  # digits: 8x8 images, a small PNG


def test_tools_write_nothing_into_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before, lr-find and show-batch wrote lr_find_<recipe>.png and batch_<recipe>.png, and
    diagnose a diagnose/ folder, into the current directory."""
    cwd, out = tmp_path / "cwd", tmp_path / "runs"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    for args in (
        ["lr-find", "mnist-cnn", "--smoke", "--steps", "10"],
        ["show-batch", "mnist-cnn", "--smoke", "--count", "4"],
        ["diagnose", "mnist-cnn", "--smoke", "--steps", "5"],
    ):
        result = runner.invoke(app, [*args, "--out", str(out)])
        assert result.exit_code in (0, 1), result.output
    assert not list(cwd.iterdir()), f"the tools wrote into the cwd: {_files(cwd)}"
    tools = sorted(p.name.rsplit("-", 2)[0] for p in (out / "mnist-cnn").iterdir())
    assert tools == ["diagnose", "lr-find", "show-batch"]


def test_default_out_is_the_run_tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["show-batch", "mnist-cnn", "--smoke", "--count", "4"])
    assert result.exit_code == 0, result.output
    files = _files(tmp_path)
    assert len(files) == 1 and files[0].startswith("runs/mnist-cnn/show-batch-"), files


def test_tools_write_into_a_run_folder(cnn_run_dir: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["lr-find", str(cnn_run_dir), "--steps", "10"])
    assert result.exit_code == 0, result.output
    assert (cnn_run_dir / "lr-find" / "lr_find.png").is_file()
    result = runner.invoke(app, ["show-batch", str(cnn_run_dir), "--count", "4"])
    assert result.exit_code == 0, result.output
    assert (cnn_run_dir / "show-batch" / "batch.png").is_file()


def test_output_writes_only_the_plot(tmp_path: Path) -> None:
    out, png = tmp_path / "runs", tmp_path / "lr.png"
    args = ["lr-find", "mnist-cnn", "--smoke", "--steps", "10", "--out", str(out)]
    result = runner.invoke(app, [*args, "--output", str(png)])
    assert result.exit_code == 0, result.output
    assert png.stat().st_size > 5_000 and not out.exists()


@pytest.mark.parametrize("tool", ["lr-find", "show-batch", "diagnose"])
def test_a_typo_suggests_the_recipe(tool: str, tmp_path: Path) -> None:
    """Before, `lr-find mnist-cn` said the recipe "builds its model inside run()"."""
    result = runner.invoke(app, [tool, "mnist-cn", "--out", str(tmp_path)])
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert "unknown recipe 'mnist-cn'" in text and "Did you mean 'mnist-cnn'?" in text
    assert "Traceback" not in result.output and not list(tmp_path.iterdir())


def test_show_batch_with_cutmix_writes_a_grid(tmp_path: Path) -> None:
    out = tmp_path / "batch.png"
    args = ["show-batch", "mnist-cnn", "--smoke", "--count", "8", "--mix", "cutmix"]
    result = runner.invoke(app, [*args, "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert out.stat().st_size > 5_000


def test_show_batch_explains_non_image_recipes(tmp_path: Path) -> None:
    result = runner.invoke(app, ["show-batch", "mnist1d-cnn", "--smoke", "--out", str(tmp_path)])
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert "show-batch shows image batches" in text and "not images" in text
    assert not list(tmp_path.rglob("*")), "a refused show-batch left a folder behind"
