"""The DDPM pieces in isolation: the schedule, the closed-form forward process, and samplers
that, given the exact noise of a one-point data set, land on that point."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from torchdojo.models import create_model
from torchdojo.models.diffusion import DiffusionModel, NoiseSchedule, timestep_embedding


def test_schedule_is_linear_and_alpha_bar_decays_to_almost_pure_noise() -> None:
    s = NoiseSchedule(1000, 1e-4, 0.02)
    assert s.betas[0].item() == pytest.approx(1e-4) and s.betas[-1].item() == pytest.approx(0.02)
    assert (s.alpha_bar.diff() < 0).all()  # every step adds noise
    assert torch.allclose(s.alpha_bar, torch.cumprod(1 - s.betas.double(), 0).float())
    assert s.alpha_bar[-1] < 1e-4  # x_T keeps < 1 % of the signal's amplitude
    with pytest.raises(ValueError, match="beta_start"):
        NoiseSchedule(10, 0.2, 0.1)


def test_two_forward_steps_equal_the_closed_form_with_the_combined_noise() -> None:
    """q(x_2|x_0) from two q(x_t|x_{t-1}) steps: Gaussians add, exactly, for any draw."""
    s = NoiseSchedule(10, 0.05, 0.3)
    g = torch.Generator().manual_seed(0)
    x0, e1, e2 = (torch.randn(4, 1, 8, 8, generator=g) for _ in range(3))
    t0, t1 = torch.zeros(4, dtype=torch.long), torch.ones(4, dtype=torch.long)
    x2 = s.q_step(s.q_step(x0, t0, e1), t1, e2)
    a1, a2 = 1 - s.betas[0], 1 - s.betas[1]
    combined = (a2.sqrt() * (1 - a1).sqrt() * e1 + (1 - a2).sqrt() * e2) / (1 - a1 * a2).sqrt()
    assert torch.allclose(x2, s.q_sample(x0, t1, combined), atol=1e-6)


def test_iterated_forward_process_matches_closed_form_moments() -> None:
    s = NoiseSchedule(50, 1e-3, 0.1)
    g = torch.Generator().manual_seed(1)
    x0 = torch.full((20_000, 1, 1, 1), 0.7)
    x = x0
    for step in range(30):
        x = s.q_step(x, torch.full((len(x),), step), torch.randn(x.shape, generator=g))
    abar = s.alpha_bar[29]
    assert x.mean().item() == pytest.approx(0.7 * abar.sqrt().item(), abs=0.02)
    assert x.var().item() == pytest.approx(1 - abar.item(), abs=0.02)


def test_predict_x0_inverts_q_sample() -> None:
    s = NoiseSchedule(100)
    x0, noise = torch.rand(3, 1, 4, 4) * 2 - 1, torch.randn(3, 1, 4, 4)
    t = torch.tensor([0, 50, 99])
    assert torch.allclose(s.predict_x0(s.q_sample(x0, t, noise), t, noise), x0, atol=1e-3)


def test_ddpm_step_mean_is_ddpm_eq_11_and_its_variance_the_posterior_one() -> None:
    s = NoiseSchedule(100, 1e-3, 0.05)
    g = torch.Generator().manual_seed(2)
    x0 = torch.rand(2, 1, 4, 4, generator=g) * 1.6 - 0.8  # inside [-1, 1]: no clipping
    eps = torch.randn(2, 1, 4, 4, generator=g)
    t = torch.tensor([10, 60])
    x_t = s.q_sample(x0, t, eps)
    alpha, beta = (v[t].view(-1, 1, 1, 1) for v in (s.alphas, s.betas))
    abar, abar_prev = s.alpha_bar[t].view(-1, 1, 1, 1), s.alpha_bar[t - 1].view(-1, 1, 1, 1)
    mean = (x_t - beta / (1 - abar).sqrt() * eps) / alpha.sqrt()  # Ho et al., eq. 11
    assert torch.allclose(s.ddpm_step(x_t, t, eps, torch.zeros_like(x_t)), mean, atol=1e-5)
    spread = s.ddpm_step(x_t, t, eps, torch.ones_like(x_t)) - mean
    assert torch.allclose(spread, (beta * (1 - abar_prev) / (1 - abar)).sqrt(), atol=1e-5)


def test_ddim_step_with_the_true_noise_stays_on_the_forward_trajectory() -> None:
    """Deterministic DDIM moves x_t to x_{t'} = q_sample(x_0, t', eps) with the same eps."""
    s = NoiseSchedule(100)
    g = torch.Generator().manual_seed(3)
    x0 = torch.rand(2, 1, 4, 4, generator=g) * 1.6 - 0.8
    eps = torch.randn(2, 1, 4, 4, generator=g)
    t, t_prev = torch.tensor([90, 40]), torch.tensor([70, 5])
    moved = s.ddim_step(s.q_sample(x0, t, eps), t, t_prev, eps, torch.zeros_like(x0), eta=0.0)
    assert torch.allclose(moved, s.q_sample(x0, t_prev, eps), atol=1e-5)


class Oracle(DiffusionModel):
    """The exact noise predictor for data that is always the image ``target``."""

    def __init__(self, target: Tensor, steps: int) -> None:
        super().__init__(image_size=target.shape[-1], width=8, steps=steps)
        self.target = target

    def forward(self, x_t: Tensor, t: Tensor) -> Tensor:
        abar = self.schedule.alpha_bar[t].view(-1, 1, 1, 1)
        return (x_t - abar.sqrt() * self.target) / (1 - abar).sqrt()


@pytest.mark.parametrize("steps", [40, 7, 1])  # 40 = T: DDPM ancestral; fewer: DDIM
def test_samplers_with_the_exact_noise_land_on_the_data(steps: int) -> None:
    target = torch.linspace(-0.9, 0.9, 16).view(1, 1, 4, 4)
    model = Oracle(target, steps=40)
    images = model.sample(3, generator=torch.Generator().manual_seed(0), steps=steps)
    assert images.shape == (3, 1, 4, 4)
    assert torch.allclose(images, target.expand(3, -1, -1, -1), atol=1e-3)  # float32 round-off


def test_ddim_is_deterministic_and_ddpm_is_stochastic() -> None:
    torch.manual_seed(0)
    model = create_model("ddpm-unet-28", width=8, steps=20).eval()

    def draw(seed: int, steps: int) -> Tensor:
        return model.sample(2, generator=torch.Generator().manual_seed(seed), steps=steps)

    first = draw(0, 5)
    assert first.shape == (2, 1, 28, 28) and first.min() >= -1 and first.max() <= 1
    assert torch.equal(first, draw(0, 5))
    assert not torch.equal(first, draw(1, 5))
    assert not torch.equal(draw(0, 20), first)  # DDPM draws fresh noise at every step
    with pytest.raises(ValueError, match="steps=21"):
        model.sample(1, steps=21)


def test_time_embedding_tells_steps_apart() -> None:
    emb = timestep_embedding(torch.arange(1000), 32)  # (T, 32)
    assert emb.shape == (1000, 32)
    distances = torch.cdist(emb, emb) + torch.eye(1000) * 1e3
    assert distances.min() > 0.01  # no two steps share an embedding


def test_unet_predicts_noise_of_the_input_shape_and_uses_t() -> None:
    torch.manual_seed(0)
    model = create_model("ddpm-unet-28", width=8)
    x = torch.randn(2, 1, 28, 28)
    early, late = model(x, torch.tensor([0, 0])), model(x, torch.tensor([999, 999]))
    assert early.shape == x.shape
    assert not torch.allclose(early, late)
    with pytest.raises(ValueError, match="multiple of 4"):
        create_model("ddpm-unet-28", image_size=30)
