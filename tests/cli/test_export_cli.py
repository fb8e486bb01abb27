"""`torchdojo export` on a trained run: model, card and a passing parity report on real inputs."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from torchdojo.cli.app import _register_commands, app

_register_commands()
runner = CliRunner()


def test_export_a_smoke_run_and_refuse_a_non_run(cnn_run_dir: Path, tmp_path: Path) -> None:
    run_dir = cnn_run_dir
    result = runner.invoke(app, ["export", str(run_dir)])
    assert result.exit_code == 0, result.output
    assert "parity on 16 images of synthetic twin" in " ".join(result.output.split())
    export_dir = run_dir / "export"
    card = json.loads((export_dir / "card.json").read_text())
    parity = json.loads((export_dir / "parity.json").read_text())
    assert card["input_size"] == [1, 28, 28] and len(card["class_names"]) == 10
    assert parity["passed"] and 1 in parity["batch_sizes"] and parity["top1_agreement"] == 1.0
    assert (export_dir / "model.onnx").stat().st_size > 1000
    bad = runner.invoke(app, ["export", str(tmp_path)])
    assert bad.exit_code == 2 and "holds no trained model" in " ".join(bad.output.split())
    no_card = runner.invoke(app, ["serve", str(tmp_path)])
    assert no_card.exit_code == 2 and "has no card.json" in " ".join(no_card.output.split())
