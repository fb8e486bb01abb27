"""`torchdojo sample RUN_DIR`: seeded image grids from GAN and diffusion bundles; a classifier's
run is refused in one line."""

from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image
from typer.testing import CliRunner

from torchdojo.cli.app import _register_commands, app
from torchdojo.models import ModelSpec, create_model, save_bundle


def bundle(folder: Path, name: str, kwargs: dict[str, object], task: str = "generation") -> Path:
    torch.manual_seed(0)
    model = create_model(name, **kwargs)
    return save_bundle(folder, model, ModelSpec(name, kwargs, [1, 28, 28], task=task))


def sample(*args: str) -> tuple[int, str]:
    _register_commands()
    result = CliRunner().invoke(app, ["sample", *args])
    return result.exit_code, result.output


def test_gan_grid_is_seeded(tmp_path: Path) -> None:
    run = bundle(tmp_path / "gan", "dcgan-28", {"z_dim": 8, "width": 8})
    code, output = sample(str(run), "--n", "6", "--out", str(tmp_path / "a.png"), "--seed", "1")
    assert code == 0, output
    assert "6 samples (1x28x28) of dcgan-28, seed 1" in output
    with Image.open(tmp_path / "a.png") as grid:
        assert grid.size == (3 * 28 + 4 * 2, 2 * 28 + 3 * 2)  # 3 columns, 2 rows, 2 px gaps
    sample(str(run), "--n", "6", "--out", str(tmp_path / "b.png"), "--seed", "1")
    sample(str(run), "--n", "6", "--out", str(tmp_path / "c.png"), "--seed", "2")
    a, b, c = ((tmp_path / f"{k}.png").read_bytes() for k in "abc")
    assert a == b and a != c


def test_diffusion_grid_uses_the_sampler_steps(tmp_path: Path) -> None:
    run = bundle(tmp_path / "ddpm", "ddpm-unet-28", {"width": 8, "steps": 20})
    code, output = sample(str(run), "--n", "2", "--steps", "2", "--ncols", "2")
    assert code == 0, output
    with Image.open(run / "samples.png") as grid:
        assert grid.size == (2 * 28 + 3 * 2, 28 + 2 * 2)
    code, output = sample(str(run), "--n", "1", "--steps", "50")
    assert code == 2 and "steps=50" in output


def test_a_classifier_run_or_a_bad_argument_is_refused_in_one_line(tmp_path: Path) -> None:
    run = bundle(tmp_path / "cnn", "mnist-cnn", {"width": 8}, task="classification")
    code, output = sample(str(run))
    assert code == 2
    assert "not a generator" in output and "torchdojo predict" in output
    assert "Traceback" not in output
    for args in ([str(tmp_path / "missing")], [str(run), "--n", "0"]):
        code, output = sample(*args)
        assert code == 2 and len(output.strip().splitlines()) == 1, output
