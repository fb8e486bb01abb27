"""A finished mnist-cnn smoke run made through the CLI, for tests that read or use one."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from torchdojo.cli.app import _register_commands, app


@pytest.fixture
def cnn_run_dir(tmp_path: Path) -> Path:
    """``torchdojo run mnist-cnn --smoke --set width=8`` under ``tmp_path``; its run folder."""
    _register_commands()
    args = ["run", "mnist-cnn", "--smoke", "--out", str(tmp_path), "--no-progress"]
    result = CliRunner().invoke(app, [*args, "--set", "width=8"])
    assert result.exit_code == 0, result.output
    (run_dir,) = (tmp_path / "mnist-cnn").iterdir()
    return run_dir
