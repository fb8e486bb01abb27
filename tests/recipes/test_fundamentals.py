"""Smoke runs of the fundamentals recipes, and their shared helpers."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest
import torch

from torchdojo.data import create_dataset, load_tabular
from torchdojo.data.transforms import CropFlip
from torchdojo.models.mlp import deep_mlp
from torchdojo.recipes import RunOptions, run_recipe


def _smoke(name: str, tmp_path: Path, *overrides: str):  # type: ignore[no-untyped-def]
    result = run_recipe(
        name, RunOptions(smoke=True, out=str(tmp_path), progress=False, overrides=overrides)
    )
    assert all(math.isfinite(v) for v in result.metrics.values()), result.metrics
    assert (result.run_dir / "report.html").is_file()
    return result


def _train_losses(run_dir: Path) -> list[float]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [r["loss"] for r in rows if r.get("split") == "train"]


def test_logistic_regression_learns_and_draws_its_boundary(tmp_path: Path) -> None:
    result = _smoke("logistic-regression", tmp_path)
    assert result.metrics["test_acc"] > 0.85  # 3 epochs on standardized breast cancer
    assert result.metrics["auroc"] > 0.9
    assert result.metrics["test_acc_2_features"] > 0.8
    assert (result.run_dir / "plots" / "decision_boundary.png").is_file()
    spec = json.loads((result.run_dir / "model.json").read_text())
    assert spec["kwargs"] == {"in_features": 30, "num_classes": 1, "depth": 0}
    losses = _train_losses(result.run_dir)
    assert losses[-1] < losses[0]


def test_logistic_regression_on_iris_pair(tmp_path: Path) -> None:
    result = _smoke("logistic-regression", tmp_path, "dataset=iris-binary", "plot_features=2,3")
    assert result.metrics["test_acc_2_features"] > 0.75


def test_softmax_iris_three_regions(tmp_path: Path) -> None:
    result = _smoke("softmax-iris", tmp_path, "epochs=30")
    assert result.metrics["test_acc"] > 0.85
    assert result.metrics["test_acc_2_features"] > 0.85  # petal length and width separate well
    assert (result.run_dir / "plots" / "decision_boundary.png").is_file()
    assert (result.run_dir / "plots" / "confusion_matrix.png").is_file()


def test_digits_mlp_smoke(tmp_path: Path) -> None:
    result = _smoke("digits-mlp", tmp_path)
    assert result.metrics["test_acc"] > 0.5  # 2 epochs; chance is 0.1
    assert (result.run_dir / "model.json").is_file()


def test_fashion_cnn_smoke_saves_a_model(tmp_path: Path) -> None:
    result = _smoke("fashion-mnist-cnn", tmp_path)
    spec = json.loads((result.run_dir / "model.json").read_text())
    assert spec["name"] == "mnist-cnn"
    assert spec["input_shape"] == [1, 28, 28]


def test_deep_mlp_init_records_layer_profiles(tmp_path: Path) -> None:
    result = _smoke("deep-mlp-init", tmp_path)
    assert 0.3 < result.metrics["act_std_ratio_init"] < 3  # kaiming + relu keeps the scale
    assert (result.run_dir / "plots" / "activation_std.png").is_file()
    assert (result.run_dir / "plots" / "gradient_norm.png").is_file()


def test_deep_mlp_init_sigmoid_signal_dies(tmp_path: Path) -> None:
    result = _smoke("deep-mlp-init", tmp_path, "activation=sigmoid", "init=xavier", "depth=12")
    assert result.metrics["grad_ratio_first_last_init"] < 1e-3  # vanishing gradients


def test_load_tabular_standardizes_with_train_statistics() -> None:
    train, test, names = load_tabular("breast_cancer")
    assert len(names) == train.x.shape[1] == 30
    assert torch.allclose(train.x.mean(0), torch.zeros(30), atol=1e-5)
    assert torch.allclose(train.x.std(0), torch.ones(30), atol=1e-4)
    assert len(train) + len(test) == 569
    pair = load_tabular("iris-binary")[0]
    assert pair.classes == ["versicolor", "virginica"] and set(pair.y.tolist()) == {0, 1}
    with pytest.raises(ValueError, match="unknown tabular dataset"):
        load_tabular("wine-quality")
    iris_test = create_dataset("iris", "test")  # registered, so a recipe's `dataset` may name it
    assert iris_test.x.shape == (38, 4) and iris_test.classes[0] == "setosa"


def test_crop_flip_moves_content_without_changing_it() -> None:
    x = torch.zeros(64, 1, 8, 8, dtype=torch.uint8)
    x[:, :, 3:5, 2:5] = 255  # a 2x3 block, off-centre
    torch.manual_seed(0)
    out = CropFlip((0.0,), (1.0,), pad=2, flip=True)(x)
    assert out.shape == x.shape and out.dtype == torch.float32
    assert torch.allclose(out.sum((1, 2, 3)), torch.full((64,), 6.0))  # nothing cut off
    positions = {tuple(torch.nonzero(o[0])[0].tolist()) for o in out}
    assert len(positions) > 5  # per-image offsets, not one shift for the batch
    plain = CropFlip((0.5,), (0.25,), pad=0, flip=False)(x)
    assert torch.allclose(plain, (x.float() / 255 - 0.5) / 0.25)


def test_deep_mlp_shape_and_bad_activation() -> None:
    model = deep_mlp(
        in_features=64, num_classes=10, width=16, depth=5, activation="tanh", batchnorm=True
    )
    assert model(torch.randn(4, 1, 8, 8)).shape == (4, 10)
    assert sum(isinstance(m, torch.nn.BatchNorm1d) for m in model) == 5
    with pytest.raises(ValueError, match="activation must be one of"):
        deep_mlp(in_features=4, num_classes=2, width=4, depth=1, activation="gelu")


@pytest.mark.slow
@pytest.mark.parametrize(
    "name",
    ["logistic-regression", "softmax-iris", "digits-mlp", "deep-mlp-init", "fashion-mnist-cnn"],
)
def test_full_run_meets_its_floors(name: str, tmp_path: Path) -> None:
    from torchdojo.recipes import get_recipe

    data_dir = None
    if name in {"deep-mlp-init", "fashion-mnist-cnn"}:
        data_dir = os.environ.get("TORCHDOJO_DATA")
        if not data_dir or not Path(data_dir).is_dir():
            pytest.skip("real data absent: set TORCHDOJO_DATA to a folder like ../shared/data")
    result = run_recipe(name, RunOptions(out=str(tmp_path), progress=False, data_dir=data_dir))
    for key in get_recipe(name).expected:
        assert result.checks[key] == "pass", (key, result.metrics[key])
