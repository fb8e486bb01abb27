"""cifar10-fast and cifar10-zoo: smoke runs, and the airbench pieces they are built from."""

from __future__ import annotations

import math
from pathlib import Path

import torch

from torchdojo.data import Normalize
from torchdojo.models import create_model, load_bundle
from torchdojo.models.airbench import init_whitening
from torchdojo.recipes import RunOptions, _cifar, run_recipe


def _smoke(name: str, tmp_path: Path) -> object:
    return run_recipe(name, RunOptions(smoke=True, out=str(tmp_path), progress=False))


def test_cifar10_fast_smoke_learns_and_saves(tmp_path: Path) -> None:
    result = _smoke("cifar10-fast", tmp_path)
    metrics = result.metrics  # type: ignore[attr-defined]
    assert all(math.isfinite(v) for v in metrics.values())
    assert metrics["test_acc"] > 0.3, metrics  # chance is 0.1
    run_dir = result.run_dir  # type: ignore[attr-defined]
    assert (run_dir / "report.html").is_file()
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
    loader = _cifar.AugmentedLoader(
        x, torch.zeros(8, dtype=torch.long), batch_size=8, normalize=Normalize((0.0,) * 3, (1.0,) * 3),
        translate=0,
    )  # fmt: skip
    flipped = []
    for epoch in (0, 1):
        loader.set_epoch(epoch)
        ((batch, _),) = list(loader)
        order = torch.argsort(_epoch_order(8, epoch))
        flipped.append((batch[:, 0, 0, 0] > 0.05)[order])  # column 31 first when flipped
    assert torch.equal(flipped[0], ~flipped[1]), "each image must flip in exactly one epoch"
    image = torch.arange(16.0).view(1, 1, 4, 4)
    shifted = _cifar.random_translate(image, torch.tensor([[2, 2]]), pad=2)
    assert torch.equal(shifted, image)  # the centre crop of the padding is the image itself
    moved = _cifar.random_translate(image, torch.tensor([[1, 2]]), pad=1)
    assert torch.equal(moved[0, 0, :, :3], image[0, 0, :, 1:])  # moved one column left


def _epoch_order(n: int, epoch: int) -> torch.Tensor:
    from torchdojo.engine.loader import epoch_permutation

    return epoch_permutation(n, seed=0, epoch=epoch)


def test_triangular_schedule_follows_the_time_budget() -> None:
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=1.0)
    clock = {"t": 0.0}
    schedule = _cifar.TriangularSchedule(
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
    plain = _cifar.tta_logits(model, image, level=0)
    assert torch.equal(plain, torch.tensor([[0.0, 3.0]]))
    mirror = _cifar.tta_logits(model, image, level=1)
    assert torch.equal(mirror, torch.tensor([[1.5, 1.5]]))  # (0 + 3) / 2 both ways
    # level 2: half the mirror views, half the mirror views of two copies shifted by 1 px
    up_left = torch.nn.functional.pad(image, (1, 1, 1, 1), mode="reflect")[..., :4, :4]
    down_right = torch.nn.functional.pad(image, (1, 1, 1, 1), mode="reflect")[..., 2:, 2:]
    shifted = (_cifar.tta_logits(model, up_left) + _cifar.tta_logits(model, down_right)) / 2
    expected = 0.5 * mirror + 0.5 * shifted
    assert torch.allclose(_cifar.tta_logits(model, image, level=2), expected)
    assert not torch.allclose(expected, mirror)
