"""export_model: ONNX and torch.export files, the card, the parity check and the known blockers."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from torch import Tensor, nn

import torchdojo.export.exporter as exporter_module
from torchdojo.export import OnnxPredictor, export_model, load_card
from torchdojo.export.exporter import check_parity
from torchdojo.models import create_model

MNIST = {
    "input_size": (1, 28, 28),
    "mean": (0.1307,),
    "std": (0.3081,),
    "class_names": [str(i) for i in range(10)],
}


@pytest.fixture(autouse=True)
def one_thread() -> None:
    torch.set_num_threads(1)


def mnist_cnn() -> nn.Module:
    torch.manual_seed(0)
    return create_model("mnist-cnn").eval()


def tiny_net(pool: int = 1) -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.AdaptiveAvgPool2d(pool),
        nn.Flatten(),
        nn.Linear(4 * pool * pool, 3),
    ).eval()


TINY = {"mean": (0.5, 0.5, 0.5), "std": (0.25, 0.25, 0.25), "class_names": ["a", "b", "c"]}


@pytest.fixture(scope="module")
def mnist_export(tmp_path_factory: pytest.TempPathFactory) -> tuple[nn.Module, Path, Tensor]:
    torch.set_num_threads(1)
    model = mnist_cnn()
    inputs = torch.randn(6, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    out = tmp_path_factory.mktemp("mnist-onnx")
    export_model(model, out_dir=out, metrics={"val_acc": 0.991}, parity_inputs=inputs, **MNIST)
    return model, out, inputs


def test_onnx_export_writes_files_and_passes_parity(
    mnist_export: tuple[nn.Module, Path, Tensor],
) -> None:
    _, out, _ = mnist_export
    assert {p.name for p in out.iterdir()} >= {"model.onnx", "card.json", "parity.json"}
    parity = json.loads((out / "parity.json").read_text())
    assert parity["passed"] is True
    assert parity["batch_sizes"] == [1, 6]  # batch 1 and N: the batch dimension is dynamic
    assert parity["max_abs_diff_logits"] <= parity["atol_logits"]
    assert parity["max_abs_diff_probs"] <= parity["atol_probs"] == 1e-4
    assert parity["top1_agreement"] == 1.0


def test_onnx_graph_has_a_symbolic_batch_and_runs_any_batch(
    mnist_export: tuple[nn.Module, Path, Tensor],
) -> None:
    model, out, _ = mnist_export
    graph = onnx.load(str(out / "model.onnx"))
    assert graph.graph.input[0].type.tensor_type.shape.dim[0].dim_param  # named, not a number
    predictor = OnnxPredictor(out, threads=1)
    for batch in (1, 3, 17):
        x = torch.randn(batch, 1, 28, 28)
        with torch.inference_mode():
            expected = torch.softmax(model(x), dim=1).numpy()
        np.testing.assert_allclose(predictor.predict(x.numpy()), expected, atol=1e-5)


def test_card_records_how_to_use_the_model(mnist_export: tuple[nn.Module, Path, Tensor]) -> None:
    _, out, _ = mnist_export
    card = json.loads((out / "card.json").read_text())
    assert card["input_size"] == [1, 28, 28]
    assert card["mean"] == [0.1307] and card["std"] == [0.3081]
    assert card["class_names"] == MNIST["class_names"]
    assert card["metrics"] == {"val_acc": 0.991}
    assert card["exporter"] == "dynamo" and card["format"] == "onnx"
    assert card["opset"] == 18
    assert card["model_file"] == "model.onnx"
    assert set(card["versions"]) >= {"torch", "onnx", "onnxruntime"}
    assert card["versions"]["torch"] == torch.__version__
    assert datetime.fromisoformat(card["created"]).tzinfo is not None
    assert load_card(out).class_names == tuple(MNIST["class_names"])


def test_predictor_refuses_wrong_shapes(mnist_export: tuple[nn.Module, Path, Tensor]) -> None:
    predictor = OnnxPredictor(mnist_export[1], threads=1)
    with pytest.raises(ValueError, match=r"\(B, 1, 28, 28\)"):
        predictor.predict(np.zeros((2, 3, 28, 28), dtype=np.float32))


def test_parity_check_catches_a_different_model(
    mnist_export: tuple[nn.Module, Path, Tensor],
) -> None:
    model, out, inputs = mnist_export
    changed = mnist_cnn()
    with torch.no_grad():
        changed.head[-1].bias.add_(torch.arange(10.0))  # shifts logits, changes the winner
    report = check_parity(changed.eval(), out, load_card(out), inputs, atol_probs=1e-4)
    assert not report.passed
    assert report.max_abs_diff_logits > 1.0
    same = check_parity(model, out, load_card(out), inputs, atol_probs=1e-4)
    assert same.passed


def test_torch_export_format_writes_a_loadable_pt2(tmp_path: Path) -> None:
    model = tiny_net()
    result = export_model(
        model, out_dir=tmp_path, input_size=(3, 16, 16), format="torch-export", **TINY
    )
    assert result.model_path == tmp_path / "model.pt2"
    assert result.card.exporter == "torch.export" and result.card.opset is None
    loaded = torch.export.load(str(result.model_path)).module()
    x = torch.randn(5, 3, 16, 16)
    torch.testing.assert_close(loaded(x), model(x))
    assert result.parity.batch_sizes == (1, 4)


def test_torchscript_exporter_on_request_is_recorded(tmp_path: Path) -> None:
    result = export_model(
        tiny_net(), out_dir=tmp_path, input_size=(3, 16, 16), exporter="torchscript", **TINY
    )
    assert result.card.exporter == "torchscript"
    assert result.card.opset == 17
    assert result.parity.passed and result.parity.batch_sizes == (1, 4)


def test_auto_falls_back_to_torchscript_when_dynamo_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_dynamo(*args: object) -> None:
        raise RuntimeError("simulated dynamo exporter failure")

    monkeypatch.setattr(exporter_module, "_export_dynamo", broken_dynamo)
    result = export_model(tiny_net(), out_dir=tmp_path, input_size=(3, 16, 16), **TINY)
    assert json.loads((tmp_path / "card.json").read_text())["exporter"] == "torchscript"
    assert result.parity.passed


def test_blocker_adaptive_pool_that_does_not_divide(tmp_path: Path) -> None:
    # 30x30 -> 15x15 after the max pool; 15 is not a multiple of 4
    with pytest.raises(
        ValueError, match=r"AdaptiveAvgPool2d's output size does not divide.*AdaptiveAvgPool2d\(1\)"
    ):
        export_model(
            tiny_net(pool=4),
            out_dir=tmp_path,
            input_size=(3, 30, 30),
            exporter="torchscript",
            **TINY,
        )


def test_dynamo_handles_the_same_adaptive_pool(tmp_path: Path) -> None:
    result = export_model(tiny_net(pool=4), out_dir=tmp_path, input_size=(3, 30, 30), **TINY)
    assert result.card.exporter == "dynamo" and result.parity.passed


class ValueBranch(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = tiny_net()

    def forward(self, x: Tensor) -> Tensor:
        logits = self.net(x)
        if logits.sum() > 0:  # data-dependent control flow
            return logits
        return -logits


class FixedBatch(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = tiny_net()[:-1]
        self.head = nn.Linear(4, 3)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x).view(2, -1))  # bakes batch size 2 in


def test_blocker_data_dependent_branch_is_not_silently_traced(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"branches on tensor values.*torch\.where"):
        export_model(ValueBranch().eval(), out_dir=tmp_path, input_size=(3, 16, 16), **TINY)
    assert not (tmp_path / "card.json").exists()


def test_blocker_fixed_batch_size(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"fixed batch size.*x\.flatten\(1\)"):
        export_model(FixedBatch().eval(), out_dir=tmp_path, input_size=(3, 16, 16), **TINY)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mean": (0.5,)}, "one value per input channel"),
        ({"class_names": []}, "class_names is empty"),
        ({"format": "tflite"}, "format must be"),
        ({"exporter": "magic"}, "exporter must be"),
        (
            {"parity_inputs": torch.zeros(2, 3, 8, 8)},
            r"parity_inputs must have shape \(N, 3, 16, 16\)",
        ),
    ],
)
def test_bad_arguments_say_what_to_pass(
    tmp_path: Path, kwargs: dict[str, object], message: str
) -> None:
    options: dict[str, object] = {**TINY, "input_size": (3, 16, 16), **kwargs}
    with pytest.raises(ValueError, match=message):
        export_model(tiny_net(), out_dir=tmp_path, **options)  # type: ignore[arg-type]


def test_export_leaves_the_callers_model_untouched(tmp_path: Path) -> None:
    model = tiny_net().train()
    export_model(model, out_dir=tmp_path, input_size=(3, 16, 16), **TINY)
    assert model.training


def test_predictor_and_card_loading_refuse_the_wrong_folder(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no card.json"):
        load_card(tmp_path)
    export_model(
        tiny_net(), out_dir=tmp_path, input_size=(3, 16, 16), format="torch-export", **TINY
    )
    with pytest.raises(ValueError, match='format="onnx"'):
        OnnxPredictor(tmp_path)
