"""The engine's diagnose: layer statistics, one-batch overfitting, the problems it names."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from torchdojo.engine.diagnose import diagnose, find_problems, layer_statistics
from torchdojo.nn import init_weights
from torchdojo.viz.diagnostics import gradient_violin_figure, layer_profile_figure


def _mlp(activation: type[nn.Module], depth: int = 20, width: int = 64) -> nn.Sequential:
    layers: list[nn.Module] = []
    features = 32
    for _ in range(depth):
        layers += [nn.Linear(features, width), activation()]
        features = width
    layers.append(nn.Linear(width, 10))
    return nn.Sequential(*layers)


@pytest.fixture
def batch() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.randn(64, 32, generator=g), torch.randint(0, 10, (64,), generator=g)


def _run(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor], lr: float):  # type: ignore[no-untyped-def]
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    return diagnose(model, [batch], nn.CrossEntropyLoss(), opt, steps=50)


def test_healthy_relu_net_passes(batch: tuple[torch.Tensor, torch.Tensor]) -> None:
    torch.manual_seed(0)
    found = _run(init_weights(_mlp(nn.ReLU, depth=6), "kaiming"), batch, lr=1e-3)
    assert found.healthy, found.problems
    assert found.loss_drop > 0.9
    assert len(found.losses) == 50 and found.losses[-1] < found.losses[0]


def test_sigmoid_stack_has_vanishing_gradients(batch: tuple[torch.Tensor, torch.Tensor]) -> None:
    torch.manual_seed(0)
    found = _run(init_weights(_mlp(nn.Sigmoid), "xavier"), batch, lr=1e-3)
    assert any(p.startswith("vanishing gradients") for p in found.problems), found.problems
    linear = [s for s in found.layers if s.kind == "Linear"]
    assert linear[0].grad_norm is not None and linear[-1].grad_norm is not None
    assert linear[0].grad_norm < 1e-6 * linear[-1].grad_norm


def test_sigmoid_with_unit_normal_init_cannot_overfit(
    batch: tuple[torch.Tensor, torch.Tensor],
) -> None:
    torch.manual_seed(0)
    found = _run(init_weights(_mlp(nn.Sigmoid), "normal", std=1.0), batch, lr=1e-3)
    assert not found.healthy
    assert any("cannot overfit one batch" in p for p in found.problems), found.problems
    assert found.loss_drop < 0.9


def test_too_high_learning_rate_is_flagged(batch: tuple[torch.Tensor, torch.Tensor]) -> None:
    torch.manual_seed(0)
    found = _run(init_weights(_mlp(nn.ReLU, depth=6), "kaiming"), batch, lr=10.0)
    assert any("NaN" in p or "cannot overfit" in p for p in found.problems), found.problems


def test_tiny_normal_init_makes_activations_vanish(
    batch: tuple[torch.Tensor, torch.Tensor],
) -> None:
    torch.manual_seed(0)
    model = init_weights(_mlp(nn.ReLU), "normal", std=0.01)
    problems = find_problems(layer_statistics(model, *batch, nn.CrossEntropyLoss()))
    assert any(p.startswith("vanishing activations") for p in problems), problems


def test_dead_relus_are_counted_and_flagged(batch: tuple[torch.Tensor, torch.Tensor]) -> None:
    model = _mlp(nn.ReLU, depth=2)
    with torch.no_grad():
        model[0].bias[:48] = -100.0  # 48 of 64 units can never fire
    stats = layer_statistics(model, *batch, nn.CrossEntropyLoss())
    first_relu = next(s for s in stats if s.kind == "ReLU")
    assert first_relu.dead_fraction == pytest.approx(48 / 64)
    assert any(p.startswith("dead ReLUs") for p in find_problems(stats))


def test_layer_statistics_match_hand_computed(batch: tuple[torch.Tensor, torch.Tensor]) -> None:
    model = nn.Sequential(nn.Linear(32, 8), nn.ReLU(), nn.Linear(8, 10))
    x, y = batch
    stats = layer_statistics(model, x, y, nn.CrossEntropyLoss())
    assert [s.name for s in stats] == ["0", "1", "2"]
    hidden = model[0](x).detach()
    assert stats[0].act_mean == pytest.approx(float(hidden.mean()), rel=1e-5)
    assert stats[1].act_std == pytest.approx(float(hidden.relu().std()), rel=1e-5)
    assert stats[2].grad_norm == pytest.approx(float(model[2].weight.grad.norm()), rel=1e-6)
    assert stats[1].grad_norm is None and stats[0].dead_fraction is None
    assert stats[0].grad_sample is not None and stats[0].grad_sample.numel() == 32 * 8
    assert "grad_sample" not in stats[0].to_dict()


def test_empty_batches_raise() -> None:
    model = nn.Linear(2, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="at least one"):
        diagnose(model, [], nn.CrossEntropyLoss(), opt)


def test_violin_and_profile_figures() -> None:
    grads = [torch.randn(100), torch.zeros(50), torch.randn(10) * 1e-8]
    fig = gradient_violin_figure(["a", "b", "c"], grads)
    labels = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert labels == ["a", "b (100% zero)", "c"]
    with pytest.raises(ValueError, match="one gradient tensor per layer"):
        gradient_violin_figure(["a"], grads)
    profile = layer_profile_figure({"init": [1.0, 0.1, 0.0]}, ylabel="std", title="t")
    assert profile.axes[0].get_yscale() == "log"
    assert math.isclose(profile.axes[0].lines[0].get_ydata()[-1], 1e-30)
