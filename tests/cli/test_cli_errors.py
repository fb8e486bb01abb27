"""The CLI's one error boundary: a bad value is one line, exit 2, and no run folder; an
unexpected error is one line naming its traceback file; unfinished runs are refused."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

import torchdojo.recipes as recipes_pkg
from torchdojo import __version__
from torchdojo.cli.app import _register_commands, app
from torchdojo.runs.runner import mark_failed

_register_commands()
runner = CliRunner()
CUDA = torch.cuda.is_available()

BAD_RUNS = {
    "epochs 0": ["--epochs", "0"],
    "threads 0": ["--threads", "0"],
    "batch_size 0": ["--set", "batch_size=0"],
    "negative lr": ["--set", "lr=-1"],
    "one beta": ["--set", "betas=0.9"],
    "missing data dir": ["--data-dir", "no/such/dir"],
    "no cuda": pytest.param(
        ["--device", "cuda"], marks=pytest.mark.skipif(CUDA, reason="CUDA is there")
    ),
    "fp16 on cpu": pytest.param(
        ["--precision", "16"], marks=pytest.mark.skipif(CUDA, reason="fp16 runs on CUDA")
    ),
    "unknown device": ["--device", "bogus"],
}


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


@pytest.mark.parametrize("option", BAD_RUNS.values(), ids=BAD_RUNS.keys())
def test_a_bad_run_value_is_one_line_and_leaves_no_run_folder(
    option: list[str], tmp_path: Path
) -> None:
    """Before, --epochs 0, --threads 0, batch_size=0, lr=-1 and betas=0.9 crashed with a
    traceback after the run folder was made; --device cuda and --precision 16 (CPU) printed
    a well-worded error under a traceback."""
    out = tmp_path / "runs"
    args = ["run", "mnist-cnn", "--smoke", "--no-progress", "--out", str(out), *option]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = _lines(result.output)
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    key = option[1].split("=")[0] if option[0] == "--set" else option[0]
    assert key in lines[0], lines[0]
    assert not out.exists() or not list(out.rglob("*")), "a refused run left a folder behind"


def test_doctor_on_a_folder_without_class_subfolders(tmp_path: Path) -> None:
    (tmp_path / "loose.png").write_bytes(b"not read")
    result = runner.invoke(app, ["doctor", str(tmp_path)])
    assert result.exit_code == 2, result.output
    assert _lines(result.output) == [
        f"error: no class subfolders in {tmp_path}; expected {tmp_path}/<class>/<image> or "
        f"{tmp_path}/train/<class>/<image>"
    ]


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"torchdojo {__version__}"


def test_resume_of_a_missing_folder_says_it_does_not_exist(tmp_path: Path) -> None:
    result = runner.invoke(app, ["resume", str(tmp_path / "does-not-exist")])
    assert result.exit_code == 2
    assert "does not exist" in result.output and len(_lines(result.output)) == 1


def test_list_recipe_shows_its_set_keys_and_run_help_says_where() -> None:
    result = runner.invoke(app, ["list", "mnist-cnn"])
    assert result.exit_code == 0, result.output
    assert "batch_size" in result.output and "int >= 1" in result.output
    assert "torchdojo list RECIPE" in " ".join(runner.invoke(app, ["run", "--help"]).output.split())


@pytest.fixture
def crashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every recipe's run raises ZeroDivisionError (a bug) once its run folder exists."""
    real = recipes_pkg.get_recipe

    def crash(cfg: object, ctx: object) -> dict[str, float]:
        raise ZeroDivisionError("division by zero")

    def with_crash(name: str):  # type: ignore[no-untyped-def]
        return dataclasses.replace(real(name), run=crash)

    monkeypatch.setattr(recipes_pkg, "get_recipe", with_crash)


def test_an_unexpected_error_is_one_line_naming_its_traceback(
    tmp_path: Path, crashing: None
) -> None:
    out = tmp_path / "runs"
    result = runner.invoke(app, ["run", "mnist-cnn", "--smoke", "--out", str(out)])
    assert result.exit_code == 1, result.output
    (run_dir,) = (out / "mnist-cnn").iterdir()
    (line,) = _lines(result.output)[-1:]
    assert "unexpected ZeroDivisionError: division by zero" in line
    assert str(run_dir / "traceback.txt") in line and "--debug" in line
    assert "Traceback" not in result.output
    assert "ZeroDivisionError" in (run_dir / "traceback.txt").read_text()
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "failed"
    shown = runner.invoke(app, ["show", str(run_dir)])
    text = " ".join(shown.output.split())
    assert shown.exit_code == 0 and "status: failed" in text
    assert "no checkpoint to resume from" in text and "torchdojo resume" not in text
    resumed = runner.invoke(app, ["resume", str(run_dir)])
    assert resumed.exit_code == 2 and "has no checkpoint to resume from" in resumed.output


def test_debug_prints_the_traceback(tmp_path: Path, crashing: None) -> None:
    args = ["--debug", "run", "mnist-cnn", "--smoke", "--out", str(tmp_path)]
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    assert "Traceback (most recent call last)" in result.output


def test_an_unexpected_error_without_a_run_folder_goes_to_a_temp_file(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(name: str) -> str:
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(recipes_pkg, "describe", broken)
    result = runner.invoke(app, ["list"])
    assert result.exit_code == 1
    line = " ".join(result.output.split())
    path = Path(line.split("full traceback in ")[1].split(";")[0])
    try:
        assert "ZeroDivisionError" in path.read_text()
    finally:
        path.unlink()


def test_predict_export_and_serve_refuse_a_failed_run(cnn_run_dir: Path, tmp_path: Path) -> None:
    """Before, predict on a crashed run's folder answered confidently with untrained weights."""
    image = tmp_path / "digit.png"
    Image.new("L", (28, 28), 0).save(image)
    assert runner.invoke(app, ["export", str(cnn_run_dir)]).exit_code == 0
    mark_failed(cnn_run_dir, "mnist-cnn", ValueError("loss exploded"))
    for args in (
        ["predict", str(cnn_run_dir), str(image)],
        ["export", str(cnn_run_dir)],
        ["serve", str(cnn_run_dir / "export")],
    ):
        result = runner.invoke(app, args)
        assert result.exit_code == 2, (args, result.output)
        (line,) = _lines(result.output)
        text = " ".join(result.output.split())
        assert f"with {cnn_run_dir}: it is a failed run (ValueError: loss exploded)" in text
        assert f"resume it with `torchdojo resume {cnn_run_dir}`" in text  # it has checkpoints
    shown = " ".join(runner.invoke(app, ["show", str(cnn_run_dir)]).output.split())
    assert "status: failed" in shown and f"torchdojo resume {cnn_run_dir}" in shown


def test_a_run_without_summary_is_refused(cnn_run_dir: Path, tmp_path: Path) -> None:
    (cnn_run_dir / "summary.json").unlink()  # killed outright: no summary at all
    image = tmp_path / "digit.png"
    Image.new("L", (28, 28), 0).save(image)
    result = runner.invoke(app, ["predict", str(cnn_run_dir), str(image)])
    assert result.exit_code == 2 and "has no summary.json" in " ".join(result.output.split())


def test_show_says_when_a_run_used_stand_in_data(tmp_path: Path) -> None:
    summary = {
        "recipe": "mnist-cnn",
        "status": "finished",
        "metrics": {"test_acc": 0.97},
        "checks": {"test_acc": "n/a (stand-in data)"},
        "data": "MNIST embedded subset",
        "smoke": False,
        "reference_data": False,
        "fallback_reason": "MNIST download failed (offline)",
    }
    (tmp_path / "summary.json").write_text(json.dumps(summary))
    result = runner.invoke(app, ["show", str(tmp_path)])
    text = " ".join(result.output.split())
    assert result.exit_code == 0, result.output
    assert "not the reference data: MNIST download failed (offline)" in text
    assert "smoke run" not in text and "status: finished" in text


def test_exit_codes_of_the_boundary(capsys: pytest.CaptureFixture[str]) -> None:
    from torchdojo.cli.app import report_error
    from torchdojo.engine import NonFiniteLossError, TrainingInterrupted

    assert report_error(NonFiniteLossError("loss is nan at step 3\nin op addmm")) == 3
    assert report_error(TrainingInterrupted(Path("runs/x/1/checkpoints/step-3.safetensors"))) == 130
    assert report_error(KeyboardInterrupt()) == 130
    assert report_error(FileNotFoundError("no such file: data.csv")) == 2
    lines = _lines(capsys.readouterr().err)
    assert lines[0] == "error: loss is nan at step 3 in op addmm"
    assert lines[1] == "interrupted; resume with: torchdojo resume runs/x/1"
    assert lines[-1] == "error: no such file: data.csv"
