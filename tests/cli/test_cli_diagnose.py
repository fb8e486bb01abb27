"""`torchdojo diagnose`: passes a good recipe setup, flags a bad one, explains unsupported ones,
and writes into the run tree, never into the current directory."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import torchdojo.services.tools as tools
from torchdojo.cli.app import _register_commands, app
from torchdojo.recipes import get_recipe

_register_commands()
runner = CliRunner()


def _only_folder(root: Path, recipe: str, tool: str) -> Path:
    (folder,) = (root / recipe).glob(f"{tool}-*")
    return folder


@pytest.mark.parametrize("recipe", ["digits-mlp", "fashion-mnist-cnn", "mnist-cnn"])
def test_diagnose_passes_classifier_recipes(recipe: str, tmp_path: Path) -> None:
    """Through the recipe contract: before, fashion-mnist-cnn needed a side table, and its
    label-smoothed loss could never "overfit" one batch."""
    result = runner.invoke(app, ["diagnose", recipe, "--smoke", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "no problems found" in result.output
    folder = _only_folder(tmp_path, recipe, "diagnose")
    assert (folder / "gradients.png").stat().st_size > 1000
    report = json.loads((folder / "diagnosis.json").read_text())
    assert report["healthy"] and report["loss_drop"] > 0.9 and report["recipe"] == recipe


def test_diagnose_flags_a_sigmoid_stack(tmp_path: Path) -> None:
    args = ["diagnose", "deep-mlp-init", "--smoke", "--out", str(tmp_path)]
    args += ["--set", "activation=sigmoid", "--set", "init=xavier", "--set", "depth=20"]
    result = runner.invoke(app, args)
    assert result.exit_code == 1, result.output
    assert "vanishing gradients" in result.output
    report = _only_folder(tmp_path, "deep-mlp-init", "diagnose") / "diagnosis.json"
    assert not json.loads(report.read_text())["healthy"]


def test_diagnose_writes_into_a_run_folder(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "config.yaml").write_text(
        "recipe: softmax-iris\nconfig: {epochs: 3, batch_size: 16, lr: 0.05, "
        "plot_features: [2, 3], seed: 0}\noptions: {data_dir: null}\n"
    )
    result = runner.invoke(app, ["diagnose", str(run_dir), "--required-drop", "0.5"])
    assert result.exit_code == 0, result.output
    assert json.loads((run_dir / "diagnose" / "diagnosis.json").read_text())["recipe"] == (
        "softmax-iris"
    )


def test_diagnose_says_which_recipes_it_does_not_apply_to(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    without_setup = dataclasses.replace(get_recipe("linear-regression"), setup=None)
    monkeypatch.setattr(tools, "get_recipe", lambda name: without_setup)
    result = runner.invoke(app, ["diagnose", "linear-regression", "--out", str(tmp_path)])
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert "diagnose does not apply to recipe 'linear-regression'" in text
    assert not list(tmp_path.iterdir()), "a refused diagnose left a folder behind"


def test_diagnose_of_a_missing_run_folder_is_one_line(tmp_path: Path) -> None:
    result = runner.invoke(app, ["diagnose", str(tmp_path / "missing")])
    assert result.exit_code == 2
    assert "does not exist" in result.output and "Traceback" not in result.output


def test_tools_step_at_the_schedules_peak_learning_rate() -> None:
    """A scheduler built in setup has moved the LRs to its start; the tools use the peak."""
    from torch import nn, optim

    from torchdojo.services.tools import peak_learning_rates

    model = nn.Linear(2, 2)
    adam = optim.Adam(model.parameters(), lr=0.01, betas=(0.7, 0.9))
    optim.lr_scheduler.OneCycleLR(adam, max_lr=0.01, total_steps=10)
    assert adam.param_groups[0]["lr"] < 0.001 and adam.param_groups[0]["betas"][0] == 0.95
    assert peak_learning_rates(adam) == 0.01
    assert adam.param_groups[0]["lr"] == 0.01 and adam.param_groups[0]["betas"] == (0.7, 0.9)
    groups = [{"params": [model.weight], "lr": 0.1}, {"params": [model.bias], "lr": 0.01}]
    sgd = optim.SGD(groups, lr=0.1)
    warmup = optim.lr_scheduler.LambdaLR(sgd, lambda step: step / 5)
    assert sgd.param_groups[0]["lr"] == 0.0
    assert peak_learning_rates(sgd, 1.0, scheduler=warmup) == 1.0
    assert [g["lr"] for g in sgd.param_groups] == pytest.approx([1.0, 0.1])
