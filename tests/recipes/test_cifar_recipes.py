"""cifar10-fast and cifar10-zoo: smoke runs, zoo resume, and the airbench pieces they use."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from torchdojo.data import Normalize
from torchdojo.engine import Loaders, TensorLoader, Trainer, TrainerConfig
from torchdojo.engine.augment import AugmentedLoader, random_translate
from torchdojo.engine.lookahead import Lookahead
from torchdojo.engine.schedules import TriangularSchedule
from torchdojo.engine.tta import tta_logits
from torchdojo.models import create_model, load_bundle
from torchdojo.models.airbench import init_whitening
from torchdojo.recipes import RunOptions, run_recipe


def _smoke(name: str, tmp_path: Path) -> object:
    return run_recipe(name, RunOptions(smoke=True, out=str(tmp_path), progress=False))


def test_cifar10_fast_smoke_learns_and_saves(tmp_path: Path) -> None:
    result = _smoke("cifar10-fast", tmp_path)
    metrics = result.metrics  # type: ignore[attr-defined]
    assert all(math.isfinite(v) for v in metrics.values())
    assert metrics["test_acc"] > 0.3, metrics  # chance is 0.1
    run_dir = result.run_dir  # type: ignore[attr-defined]
    assert (run_dir / "report.html").is_file()
    for name in ("confusion_matrix", "most_confused", "top_losses", "grad_cam"):
        assert (run_dir / "plots" / f"{name}.png").is_file(), name
    model, spec = load_bundle(run_dir)
    assert spec.name == "airbench"
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 10)


def test_cifar10_fast_sgd_smoke_learns(tmp_path: Path) -> None:
    options = RunOptions(smoke=True, out=str(tmp_path), progress=False, overrides=["optimizer=sgd"])
    result = run_recipe("cifar10-fast", options)
    metrics = result.metrics  # type: ignore[attr-defined]
    assert metrics["test_acc"] > 0.3, metrics  # chance is 0.1


def test_cifar10_zoo_smoke_writes_table_and_figure(tmp_path: Path) -> None:
    result = _smoke("cifar10-zoo", tmp_path)
    metrics = result.metrics  # type: ignore[attr-defined]
    assert set(metrics) == {"lenet5_test_acc", "mnist-cnn_test_acc", "best_test_acc"}
    assert metrics["best_test_acc"] > 0.3, metrics
    run_dir = result.run_dir  # type: ignore[attr-defined]
    table = (run_dir / "zoo.md").read_text()
    assert "| lenet5 |" in table and "| mnist-cnn |" in table
    assert (run_dir / "plots" / "zoo.png").stat().st_size > 10_000
    assert (run_dir / "plots" / "zoo_curves.png").stat().st_size > 10_000
    for name in ("lenet5", "mnist-cnn"):  # each model logs and checkpoints on its own
        rows = [json.loads(line) for line in (run_dir / name / "metrics.jsonl").open()]
        assert {row["split"] for row in rows} == {"train", "val"}
        assert list((run_dir / "checkpoints" / name).glob("step-*.safetensors"))


@pytest.mark.parametrize("killed", ["mid-model", "between-models"])
def test_cifar10_zoo_resume_keeps_finished_models_and_ends_with_identical_weights(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, killed: str
) -> None:
    import torchdojo.recipes.cifar10_zoo as zoo

    # the first model uses dropout: its training moves the global RNG the next model starts from
    monkeypatch.setitem(zoo.MODEL_KWARGS, "mlp", {"in_features": 3 * 32 * 32, "dropout": 0.5})
    options = RunOptions(
        smoke=True, out=str(tmp_path), progress=False, overrides=["models=mlp,mnist-cnn"]
    )
    run_dir: Path = run_recipe("cifar10-zoo", options).run_dir
    finished = load_file(str(run_dir / "model.safetensors"))  # the last model's weights
    rows = json.loads((run_dir / "zoo_rows.json").read_text())
    (run_dir / "zoo_rows.json").write_text(json.dumps(rows[:1]))  # as if killed in mnist-cnn
    (run_dir / "model.safetensors").unlink()
    current = run_dir / "checkpoints" / "mnist-cnn"
    if killed == "mid-model":
        sorted(current.glob("step-*.safetensors"))[-1].unlink()  # resumes from epoch 1's end
    else:
        shutil.rmtree(current)  # killed before its first checkpoint: it starts again
    first_log = (run_dir / "mlp" / "metrics.jsonl").read_text()
    resumed = run_recipe("cifar10-zoo", RunOptions(resume=str(run_dir), progress=False))
    assert resumed.metrics["mlp_test_acc"] == rows[0]["test_acc"]  # kept, not trained again
    assert (run_dir / "mlp" / "metrics.jsonl").read_text() == first_log
    again = load_file(str(run_dir / "model.safetensors"))
    for key, value in finished.items():
        assert torch.equal(value, again[key]), key
    assert len(json.loads((run_dir / "zoo_rows.json").read_text())) == 2


def test_whitening_decorrelates_patches() -> None:
    g = torch.Generator().manual_seed(0)
    mix = torch.randn(3, 3, generator=g)
    images = torch.einsum("dc,nchw->ndhw", mix, torch.randn(64, 3, 32, 32, generator=g))
    net = create_model("airbench", widths=(8, 8, 8))
    init_whitening(net[0], images)
    assert not net[0].weight.requires_grad
    with torch.no_grad():
        out = torch.nn.functional.conv2d(images, net[0].weight[:12])  # (N, 12, 31, 31)
    flat = out.transpose(0, 1).flatten(1)  # (12, N*31*31)
    covariance = torch.cov(flat)
    assert torch.allclose(covariance, torch.eye(12), atol=0.05)


def test_alternating_flip_and_translation() -> None:
    x = torch.arange(32, dtype=torch.uint8).repeat(8, 3, 32, 1)  # pixel value = column index
    loader = AugmentedLoader(
        x,
        torch.zeros(8, dtype=torch.long),
        batch_size=8,
        normalize=Normalize((0.0,) * 3, (1.0,) * 3),
        translate=0,
    )
    flipped = []
    for epoch in (0, 1):
        loader.set_epoch(epoch)
        ((batch, _),) = list(loader)
        order = torch.argsort(_epoch_order(8, epoch))
        flipped.append((batch[:, 0, 0, 0] > 0.05)[order])  # column 31 first when flipped
    assert torch.equal(flipped[0], ~flipped[1]), "each image must flip in exactly one epoch"
    image = torch.arange(16.0).view(1, 1, 4, 4)
    shifted = random_translate(image, torch.tensor([[2, 2]]), pad=2)
    assert torch.equal(shifted, image)  # the centre crop of the padding is the image itself
    moved = random_translate(image, torch.tensor([[1, 2]]), pad=1)
    assert torch.equal(moved[0, 0, :, :3], image[0, 0, :, 1:])  # moved one column left


def _epoch_order(n: int, epoch: int) -> torch.Tensor:
    from torchdojo.engine.loader import epoch_permutation

    return epoch_permutation(n, seed=0, epoch=epoch)


def test_triangular_schedule_follows_the_time_budget() -> None:
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=1.0)
    clock = {"t": 0.0}
    schedule = TriangularSchedule(
        optimizer, total_steps=1000, clock=lambda: clock["t"], time_budget=100.0
    )
    assert math.isclose(optimizer.param_groups[0]["lr"], 0.2)
    clock["t"] = 23.0
    schedule.step()
    assert math.isclose(optimizer.param_groups[0]["lr"], 1.0)  # the peak, by time, not steps
    clock["t"] = 100.0
    schedule.step()
    assert math.isclose(optimizer.param_groups[0]["lr"], 0.07)


def test_tta_levels_average_the_views_airbench_weights() -> None:
    class FirstPixel(torch.nn.Module):  # logits = the top-left and top-right pixel of channel 0
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.stack([x[:, 0, 0, 0], x[:, 0, 0, -1]], dim=1)

    image = torch.arange(16.0).view(1, 1, 4, 4)  # pixel (r, c) = 4r + c
    model = FirstPixel()
    plain = tta_logits(model, image, level=0)
    assert torch.equal(plain, torch.tensor([[0.0, 3.0]]))
    mirror = tta_logits(model, image, level=1)
    assert torch.equal(mirror, torch.tensor([[1.5, 1.5]]))  # (0 + 3) / 2 both ways
    # level 2: half the mirror views, half the mirror views of two copies shifted by 1 px
    up_left = torch.nn.functional.pad(image, (1, 1, 1, 1), mode="reflect")[..., :4, :4]
    down_right = torch.nn.functional.pad(image, (1, 1, 1, 1), mode="reflect")[..., 2:, 2:]
    shifted = (tta_logits(model, up_left) + tta_logits(model, down_right)) / 2
    expected = 0.5 * mirror + 0.5 * shifted
    assert torch.allclose(tta_logits(model, image, level=2), expected)
    assert not torch.allclose(expected, mirror)


def test_lookahead_resumes_with_its_average(tmp_path: Path) -> None:
    """Stopped after epoch 1 and resumed, a lookahead run ends as the uninterrupted one."""
    x, y = torch.randn(40, 4, generator=torch.Generator().manual_seed(0)), torch.arange(40) % 2

    def fit(epochs: int, folder: Path, resume: Path | None = None) -> dict[str, torch.Tensor]:
        torch.manual_seed(0)
        model = torch.nn.Linear(4, 2)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
        lookahead = Lookahead(every=3, decay=0.9, progress=lambda: 0.5)  # 5 steps an epoch
        config = TrainerConfig(epochs=epochs, num_threads=1)
        trainer = Trainer(config, callbacks=[lookahead], checkpoint_dir=folder)
        loaders = Loaders(TensorLoader(x, y, batch_size=8))
        trainer.fit(model, loaders, torch.nn.CrossEntropyLoss(), optimizer, resume=resume)
        return model.state_dict()

    uninterrupted = fit(2, tmp_path / "a")
    fit(1, tmp_path / "b")  # its checkpoint holds the weights and the average after epoch 1
    resumed = fit(2, tmp_path / "c", resume=tmp_path / "b")
    for key, value in uninterrupted.items():
        assert torch.equal(value, resumed[key]), key
