"""Smoke runs of the foundation recipes: offline, seconds, and their claims hold."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from torchdojo.recipes import RunOptions, run_recipe


def smoke(name: str, tmp_path: Path, *overrides: str):  # type: ignore[no-untyped-def]
    return run_recipe(
        name, RunOptions(smoke=True, out=str(tmp_path), progress=False, overrides=overrides)
    )


def test_linear_regression_hand_written_descent_equals_torch_and_least_squares(
    tmp_path: Path,
) -> None:
    result = smoke("linear-regression", tmp_path)
    assert result.metrics["hand_vs_torch_max_diff"] < 1e-5
    assert result.metrics["r2"] > 0.9
    full = smoke("linear-regression", tmp_path, "epochs=400")
    assert full.metrics["torch_vs_least_squares_max_diff"] < 1e-3


@pytest.mark.parametrize("name", ["mnist-mlp", "mnist-cnn"])
def test_mnist_recipes_learn_the_synthetic_twin(name: str, tmp_path: Path) -> None:
    result = smoke(name, tmp_path, "epochs=3")
    rows = [
        json.loads(line) for line in (result.run_dir / "metrics.jsonl").read_text().splitlines()
    ]
    train = [r["loss"] for r in rows if r["split"] == "train"]
    assert train[-1] < train[0], "training loss did not fall"
    assert result.metrics["test_acc"] > 0.5  # 10 classes: chance is 0.1
    assert result.checks["test_acc"].startswith("n/a")  # floors are for the real data only
    spec = json.loads((result.run_dir / "model.json").read_text())
    assert spec["input_shape"] == [1, 28, 28] and len(spec["classes"]) == 10
