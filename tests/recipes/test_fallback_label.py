"""A full run on the embedded fallback data says so, and why, everywhere (issue 13, finding 5).

It used to be labelled "smoke run" in report.html while config.yaml and summary.json said
``smoke: false``, and the terminal's expected column said ``n/a`` without a reason.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import torchdojo.data.mnist as mnist
from torchdojo.recipes import RunOptions, run_recipe


def test_fallback_data_is_labelled_with_its_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def offline(*args: object, **kwargs: object) -> None:
        raise OSError("no network")

    monkeypatch.setattr(mnist, "download_idx", offline)
    root = tmp_path / "empty-root"
    root.mkdir()
    options = RunOptions(
        data_dir=str(root), out=str(tmp_path / "runs"), progress=False, overrides=("epochs=1",)
    )
    result = run_recipe("mnist-cnn", options)
    summary = json.loads((result.run_dir / "summary.json").read_text())
    assert summary["smoke"] is False and summary["reference_data"] is False
    assert "no network" in summary["fallback_reason"] and "MNIST" in summary["fallback_reason"]
    assert result.checks["test_acc"] == "n/a (stand-in data)"
    report = (result.run_dir / "report.html").read_text()
    assert "Not the reference data" in report and "no network" in report
    assert "smoke run" not in report.lower()
