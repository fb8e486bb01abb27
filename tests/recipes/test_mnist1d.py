"""MNIST-1D: the paper's data rebuilt offline, and smoke runs of mnist1d-paper / mnist1d-cnn."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

pytest.importorskip("mnist1d", reason="MNIST-1D needs the mnist1d package (pip install mnist1d)")

from torchdojo.data import create_dataset  # noqa: E402
from torchdojo.data.mnist1d import mnist1d_arrays  # noqa: E402
from torchdojo.models import create_model  # noqa: E402
from torchdojo.recipes import RunOptions, run_recipe  # noqa: E402


def test_paper_set_has_the_papers_shape_and_is_reproducible() -> None:
    train, test = create_dataset("mnist1d", "train"), create_dataset("mnist1d", "test")
    assert train.x.shape == (4000, 1, 40) and test.x.shape == (1000, 1, 40)
    assert train.x.dtype == torch.float32 and train.y.dtype == torch.int64
    assert set(train.y.tolist()) == set(range(10))
    again = mnist1d_arrays("train", num_samples=5000, seed=42)
    assert torch.equal(train.x, again.x)
    other = mnist1d_arrays("train", num_samples=500, seed=0)
    assert not torch.equal(train.x[:400], other.x)


@pytest.mark.parametrize(
    "name", ["mnist1d-logistic", "mnist1d-mlp", "mnist1d-convbase", "mnist1d-gru", "mnist1d-resnet"]
)
def test_mnist1d_models_map_curves_to_logits(name: str) -> None:
    model = create_model(name)
    logits = model(torch.randn(3, 1, 40))
    assert logits.shape == (3, 10)
    logits.sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def _rows(run_dir: Path) -> list[dict[str, float]]:
    lines = (run_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def test_mnist1d_paper_smoke_writes_the_table(tmp_path: Path) -> None:
    result = run_recipe(
        "mnist1d-paper",
        RunOptions(smoke=True, out=str(tmp_path), progress=False, overrides=("epochs=4",)),
    )
    for name in ("logistic", "mlp", "cnn", "gru"):
        assert math.isfinite(result.metrics[f"test_acc_{name}"])
    # 4 epochs of 4 batches on 400 curves: every model beats chance (10 %) on 100 test curves
    assert max(result.metrics[f"test_acc_{n}"] for n in ("logistic", "mlp", "cnn")) > 0.2
    table = (result.run_dir / "table.md").read_text(encoding="utf-8")
    assert table.count("\n") == 6 and "| cnn | 94% |" in table
    assert (result.run_dir / "report.html").is_file()
    assert (result.run_dir / "model.json").is_file()


def test_mnist1d_cnn_smoke_learns(tmp_path: Path) -> None:
    result = run_recipe(
        "mnist1d-cnn",
        RunOptions(smoke=True, out=str(tmp_path), progress=False, overrides=("epochs=3",)),
    )
    assert 0.0 <= result.metrics["test_acc"] <= 1.0
    val = [r for r in _rows(result.run_dir) if r["split"] == "val"]
    assert val[-1]["loss"] < val[0]["loss"] or val[-1]["acc"] > val[0]["acc"]
    spec = json.loads((result.run_dir / "model.json").read_text(encoding="utf-8"))
    assert "mnist1d-resnet" in json.dumps(spec)
    assert (result.run_dir / "report.html").is_file()
