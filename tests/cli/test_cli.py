"""The CLI: list, run, show, resume, and one clear line (no traceback) for bad input."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from torchdojo.cli.app import _register_commands, app

_register_commands()
runner = CliRunner()


def test_list_shows_every_recipe_with_a_description() -> None:
    result = runner.invoke(app, ["list"])
    assert result.exit_code == 0
    assert "mnist-cnn" in result.stdout and "linear-regression" in result.stdout
    assert "99 %" in result.stdout


def test_bad_arguments_give_one_line_and_non_zero_exit(tmp_path: Path) -> None:
    cases = {
        ("run", "mnist-cnm"): "unknown recipe 'mnist-cnm'. Did you mean 'mnist-cnn'?",
        ("run", "mnist-cnn", "--set", "lr=fast"): "lr='fast' is not a number",
        ("run", "mnist-cnn", "--set", "colour=red"): "unknown config key 'colour'",
        ("run", "mnist-cnn", "--precision", "8"): "--precision '8': use 32, bf16 or 16",
        ("show", str(tmp_path)): "has no summary.json",
        ("resume", str(tmp_path)): "has no config.yaml",
    }
    for args, message in cases.items():
        result = runner.invoke(
            app, [*args, "--out", str(tmp_path)] if args[0] == "run" else list(args)
        )
        assert result.exit_code == 2, (args, result.output)
        assert message in " ".join(result.output.split()), (args, result.output)
        assert "Traceback" not in result.output


def test_run_smoke_writes_a_complete_run_folder_and_show_reads_it(cnn_run_dir: Path) -> None:
    run_dir = cnn_run_dir
    for name in (
        "config.yaml",
        "env.json",
        "metrics.jsonl",
        "summary.json",
        "report.html",
        "model.json",
        "model.safetensors",
        "plots/loss.png",
        "plots/confusion_matrix.png",
    ):
        assert (run_dir / name).is_file(), name
    assert list((run_dir / "tensorboard").iterdir()), "no TensorBoard event file"
    assert list((run_dir / "checkpoints").glob("step-*.safetensors"))
    env = json.loads((run_dir / "env.json").read_text())
    assert {"torch", "git_sha", "seed", "num_threads", "device"} <= env.keys()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["checks"]["test_acc"].startswith("n/a") and summary["smoke"] is True
    assert summary["status"] == "finished"
    shown = runner.invoke(app, ["show", str(run_dir)])
    assert shown.exit_code == 0 and "test_acc" in shown.stdout and "smoke run" in shown.stdout
    html = (run_dir / "report.html").read_text()
    assert "data:image/png;base64" in html and "mnist-cnn" in html
