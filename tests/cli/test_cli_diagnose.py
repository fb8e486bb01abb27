"""`torchdojo diagnose`: passes a good recipe setup, flags a bad one, explains unsupported ones."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from torchdojo.cli.app import _register_commands, app

_register_commands()
runner = CliRunner()


def test_diagnose_passes_digits_mlp(tmp_path: Path) -> None:
    result = runner.invoke(app, ["diagnose", "digits-mlp", "--smoke", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "no problems found" in result.output
    assert (tmp_path / "gradients.png").stat().st_size > 1000
    report = json.loads((tmp_path / "diagnosis.json").read_text())
    assert report["healthy"] and report["loss_drop"] > 0.9


def test_diagnose_flags_a_sigmoid_stack(tmp_path: Path) -> None:
    args = ["diagnose", "deep-mlp-init", "--smoke", "--out", str(tmp_path)]
    args += ["--set", "activation=sigmoid", "--set", "init=xavier", "--set", "depth=20"]
    result = runner.invoke(app, args)
    assert result.exit_code == 1, result.output
    assert "vanishing gradients" in result.output
    assert not json.loads((tmp_path / "diagnosis.json").read_text())["healthy"]


def test_diagnose_reads_a_run_folder(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "config.yaml").write_text(
        "recipe: softmax-iris\nconfig: {epochs: 3, batch_size: 16, lr: 0.05, "
        "plot_features: [2, 3], seed: 0}\noptions: {data_dir: null}\n"
    )
    out = tmp_path / "out"
    result = runner.invoke(app, ["diagnose", str(run_dir), "--out", str(out),
                                 "--required-drop", "0.5"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads((out / "diagnosis.json").read_text())["recipe"] == "softmax-iris"


def test_diagnose_unsupported_recipe_says_which_are(tmp_path: Path) -> None:
    result = runner.invoke(app, ["diagnose", "linear-regression", "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "supported:" in result.output and "mnist-cnn" in result.output
