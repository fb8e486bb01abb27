"""EMA, MixUp/CutMix, the LR range test and Muon: exact math and visible effects.

EMA and mixing are callbacks on a plain Trainer; tests/unit/test_callbacks_compose.py checks them
together with Freeze and gradient clipping.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from torchdojo.engine import Callback, Loaders, StepOutput, TensorLoader, Trainer, TrainerConfig
from torchdojo.engine.checkpoint import load_checkpoint, save_checkpoint
from torchdojo.engine.ema import EMA
from torchdojo.engine.lr_finder import find_lr, lr_schedule, smooth
from torchdojo.engine.mixing import BatchMixer, Mix, mixup
from torchdojo.engine.optim import Muon, orthogonalize


# ----------------------------------------------------------------------------- EMA
def test_ema_update_matches_hand_computed_average() -> None:
    model = nn.Linear(1, 1)
    ema = EMA(decay=0.5)
    weights = [1.0, 3.0, 7.0, -1.0]
    with torch.no_grad():
        model.weight.fill_(weights[0])
    ema.reset(model)  # average starts at 1.0
    for w in weights[1:]:
        with torch.no_grad():
            model.weight.fill_(w)
        ema.update(model)
    # 1 -> 0.5 * 1 + 0.5 * 3 = 2 -> 0.5 * 2 + 0.5 * 7 = 4.5 -> 0.5 * 4.5 + 0.5 * (-1) = 1.75
    assert ema.shadow["weight"].item() == pytest.approx(1.75)
    assert ema.num_updates == 3


class _Record(Callback):
    """Copy the weight after every step (runs after EMA because it is listed later)."""

    def __init__(self) -> None:
        self.weights: list[torch.Tensor] = []

    def on_batch_end(self, trainer: Trainer, output: StepOutput) -> None:
        self.weights.append(trainer.unwrapped_model.weight.detach().clone())


@pytest.mark.parametrize("every", [1, 2])
def test_ema_callback_in_trainer_follows_the_formula(every: int) -> None:
    torch.manual_seed(0)
    x, y = torch.randn(32, 3), torch.randn(32, 1)
    model = nn.Linear(3, 1, bias=False)
    start = model.weight.detach().clone()
    ema, record = EMA(decay=0.9, every=every), _Record()
    trainer = Trainer(TrainerConfig(epochs=1, num_threads=1), callbacks=[ema, record])
    loader = TensorLoader(x, y, batch_size=4, shuffle=False)
    trainer.fit(model, Loaders(loader), nn.MSELoss(), torch.optim.SGD(model.parameters(), lr=0.1))
    expected = start
    for step, weight in enumerate(record.weights, start=1):
        if step % every == 0:
            expected = 0.9 * expected + 0.1 * weight
    assert len(record.weights) == 8
    torch.testing.assert_close(ema.shadow["weight"], expected)
    assert not torch.allclose(expected, model.weight)  # the average lags the raw weights


def test_ema_swap_restores_weights_and_state_survives_a_checkpoint(tmp_path: object) -> None:
    model = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    ema = EMA(decay=0.99)
    ema.reset(model)
    with torch.no_grad():
        model[0].weight.add_(1.0)
    raw = {k: v.clone() for k, v in model.state_dict().items()}
    with ema.swap(model):
        torch.testing.assert_close(model[0].weight, ema.shadow["0.weight"])
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, raw[key])
    path = save_checkpoint(f"{tmp_path}/ema.safetensors", {"callbacks": {"EMA": ema.state_dict()}})
    restored = EMA(decay=0.99)
    restored.load_state_dict(load_checkpoint(path).state["callbacks"]["EMA"])
    torch.testing.assert_close(restored.shadow["0.weight"], ema.shadow["0.weight"])
    assert restored.shadow["1.num_batches_tracked"].dtype == torch.int64


def test_ema_callback_validates_on_the_average() -> None:
    torch.manual_seed(0)
    x, y = torch.randn(64, 2), torch.randn(64, 1)
    model = nn.Linear(2, 1)
    ema = EMA(decay=0.999)  # barely moves: validation must see the (almost) initial weights
    initial_loss = float(nn.functional.mse_loss(model(x), y).detach())
    trainer = Trainer(TrainerConfig(epochs=3, num_threads=1), callbacks=[ema])  # validate=True
    loader = TensorLoader(x, y, batch_size=16, shuffle=False)
    history = trainer.fit(
        model, Loaders(loader, loader), nn.MSELoss(), torch.optim.SGD(model.parameters(), lr=0.1)
    )
    assert history.last()["val_loss"] == pytest.approx(initial_loss, rel=0.05)
    assert history.last()["train_loss"] < 0.8 * initial_loss
    raw_loss = float(nn.functional.mse_loss(model(x), y).detach())
    assert raw_loss < 0.8 * initial_loss  # the raw weights came back after validation


# -------------------------------------------------------------------- MixUp / CutMix
def test_mixup_exact_math() -> None:
    x = torch.arange(12.0).view(3, 4)
    y = torch.tensor([0, 1, 2])
    x_mixed, y_soft = mixup(x, y, lam=0.7, num_classes=3)
    torch.testing.assert_close(x_mixed, 0.7 * x + 0.3 * x.roll(1, 0))
    torch.testing.assert_close(y_soft[0], torch.tensor([0.7, 0.0, 0.3]))
    torch.testing.assert_close(y_soft.sum(1), torch.ones(3))


def _lam_from_targets(y: torch.Tensor, y_soft: torch.Tensor) -> torch.Tensor:
    return y_soft.gather(1, y[:, None]).squeeze(1)  # weight of each sample's own class


def test_batch_mixer_mixup_on_images_is_a_convex_blend() -> None:
    torch.manual_seed(0)
    x, y = torch.rand(6, 3, 8, 8), torch.arange(6)
    x_mixed, y_soft = BatchMixer(6, mixup_alpha=1.0, cutmix_alpha=0.0)(x, y)
    lam = _lam_from_targets(y, y_soft)
    assert torch.allclose(lam, lam[0]) and 0 < float(lam[0]) < 1
    torch.testing.assert_close(x_mixed, lam[0] * x + (1 - lam[0]) * x.roll(1, 0))
    torch.testing.assert_close(y_soft.sum(1), torch.ones(6))


def test_batch_mixer_cutmix_box_area_matches_lambda() -> None:
    torch.manual_seed(3)
    x, y = torch.rand(4, 1, 32, 32), torch.arange(4)
    for _ in range(5):
        x_mixed, y_soft = BatchMixer(4, mixup_alpha=0.0, cutmix_alpha=1.0)(x, y)
        from_partner = (x_mixed == x.roll(1, 0)) & (x_mixed != x)  # (B, 1, H, W)
        from_self = x_mixed == x
        assert bool((from_partner | from_self).all())  # every pixel comes from a or b
        pasted = from_partner.float().mean((1, 2, 3))
        lam = _lam_from_targets(y, y_soft)
        torch.testing.assert_close(pasted, 1 - lam)
        torch.testing.assert_close(y_soft.sum(1), torch.ones(4))


def test_batch_mixer_on_signals_uses_mixup_and_refuses_cutmix() -> None:
    torch.manual_seed(0)
    x, y = torch.randn(5, 1, 40), torch.arange(5)
    x_mixed, y_soft = BatchMixer(5, mixup_alpha=0.4, cutmix_alpha=0.0)(x, y)
    lam = _lam_from_targets(y, y_soft)[0]
    torch.testing.assert_close(x_mixed, lam * x + (1 - lam) * x.roll(1, 0))
    with pytest.raises(ValueError, match="CutMix needs"):
        BatchMixer(5, mixup_alpha=0.0, cutmix_alpha=1.0)(x, y)


def test_mix_callback_trains_on_soft_targets() -> None:
    torch.manual_seed(0)
    y = torch.randint(0, 2, (128,))
    x = torch.randn(128, 1, 4, 4) + 2.0 * y.view(-1, 1, 1, 1).float()
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 2))
    seen: list[torch.Tensor] = []

    class Spy(BatchMixer):
        def __call__(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            x_mixed, y_soft = super().__call__(x, y)
            seen.append(y_soft)
            return x_mixed, y_soft

    trainer = Trainer(
        TrainerConfig(epochs=4, num_threads=1), callbacks=[Mix(Spy(2, mixup_alpha=0.4))]
    )
    loader = TensorLoader(x, y, batch_size=32, seed=0)
    history = trainer.fit(
        model,
        Loaders(loader, loader),
        nn.CrossEntropyLoss(),
        torch.optim.Adam(model.parameters(), lr=0.05),
    )
    assert len(seen) == 16 and seen[0].shape == (32, 2)
    assert history.records[-1]["train_loss"] < history.records[0]["train_loss"]
    assert 0.0 <= history.last()["val_loss"] < math.log(2)


# ----------------------------------------------------------------------- LR finder
def test_lr_schedule_and_smoothing_math() -> None:
    lrs = lr_schedule(1e-4, 1.0, 5)
    assert lrs == pytest.approx([1e-4, 1e-3, 1e-2, 1e-1, 1.0])
    assert smooth([2.0, 2.0, 2.0], 0.9) == pytest.approx([2.0, 2.0, 2.0])  # bias-corrected
    assert smooth([1.0, 3.0], 0.5) == pytest.approx([1.0, (0.25 + 1.5) / 0.75])


def test_find_lr_suggests_a_sensible_lr_and_restores_weights() -> None:
    # Linear regression with E[x x^T] = I: MSE's Hessian is 2I, plain SGD diverges above lr = 1.
    torch.manual_seed(0)
    x = torch.randn(512, 8)
    y = x @ torch.randn(8, 1)
    model = nn.Linear(8, 1)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    result = find_lr(
        model,
        TensorLoader(x, y, batch_size=32, seed=0),
        nn.MSELoss(),
        lambda p: torch.optim.SGD(p, lr=0.1),
        start_lr=1e-5,
        end_lr=100.0,
        steps=120,
    )
    assert 1e-2 <= result.suggestion <= 1.0
    assert result.diverged and result.lrs[-1] > 1.0  # stopped once past the stability limit
    assert len(result.lrs) == len(result.losses) == len(result.raw_losses)
    assert min(result.losses) < 0.1 * result.losses[0]
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key])
    assert torch.equal(torch.get_rng_state(), rng)


def test_find_lr_rejects_bad_ranges() -> None:
    with pytest.raises(ValueError, match="start_lr"):
        find_lr(nn.Linear(1, 1), [], nn.MSELoss(), torch.optim.SGD, start_lr=1.0, end_lr=0.1)


# ----------------------------------------------------------------------------- Muon
def test_orthogonalize_pushes_singular_values_toward_one() -> None:
    g = torch.randn(64, 200, generator=torch.Generator().manual_seed(0))
    g[:, :3] *= 50.0  # a badly conditioned matrix: a few huge directions
    before = torch.linalg.svdvals(g)
    after = torch.linalg.svdvals(orthogonalize(g, steps=5))
    assert before.max() / before.min() > 10
    assert after.min() > 0.5 and after.max() < 1.5, after  # Keller's band around 1
    assert orthogonalize(g.T, steps=5).shape == (200, 64)  # tall input is handled transposed


def test_muon_plain_groups_are_nesterov_sgd_and_muon_groups_keep_their_norm() -> None:
    torch.manual_seed(0)
    conv = nn.Conv2d(4, 8, 3)  # a muon weight: (8, 4, 3, 3) read as (8, 36)
    bias = nn.Parameter(torch.randn(5))
    twin = nn.Parameter(bias.detach().clone())
    muon = Muon(
        [
            {"params": [conv.weight], "muon": True},
            {"params": [bias], "lr": 0.1, "momentum": 0.85, "weight_decay": 0.01},
        ],
        lr=0.05,
    )
    sgd = torch.optim.SGD([twin], lr=0.1, momentum=0.85, nesterov=True, weight_decay=0.01)
    for _ in range(4):
        grad_w, grad_b = torch.randn(8, 4, 3, 3), torch.randn(5)
        previous = conv.weight.detach().clone()
        conv.weight.grad, bias.grad, twin.grad = grad_w, grad_b, grad_b.clone()
        muon.step()
        sgd.step()
        assert torch.allclose(bias, twin, atol=1e-6)  # the plain group is torch's SGD exactly
        # the muon step: rescale to norm sqrt(8), then move by lr along an ~orthogonal matrix
        step = previous * (8**0.5 / previous.norm()) - conv.weight.detach()
        singular = torch.linalg.svdvals(step.reshape(8, -1) / 0.05)
        assert singular.min() > 0.3 and singular.max() < 1.6, singular


def test_muon_step_evaluates_a_closure_like_torch_optimizers() -> None:
    weight = nn.Parameter(torch.ones(3, 3))
    optimizer = Muon([{"params": [weight], "muon": True}], lr=0.1)

    def closure() -> float:
        optimizer.zero_grad()
        loss = (weight * torch.arange(9.0).view(3, 3)).sum()
        loss.backward()
        return float(loss.detach())

    assert optimizer.step(closure) == 36.0  # the loss before the step
    assert not torch.equal(weight.detach(), torch.ones(3, 3))
