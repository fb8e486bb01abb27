"""The VAE's pieces: the reparameterisation trick carries gradients and the right distribution,
the KL term matches Monte Carlo and vanishes at the prior, and the model's shapes and range."""

from __future__ import annotations

import pytest
import torch

from torchdojo.models.vae import VAE
from torchdojo.nn.generative import gaussian_kl, reparameterize
from torchdojo.runs.generative import vae_terms


def test_reparameterisation_samples_the_gaussian_and_passes_gradients() -> None:
    g = torch.Generator().manual_seed(0)
    mu = torch.tensor([[1.0, -2.0]]).expand(20000, 2).clone().requires_grad_()
    logvar = torch.log(torch.tensor([[0.25, 4.0]])).expand(20000, 2).clone().requires_grad_()
    z = reparameterize(mu, logvar, generator=g)
    torch.testing.assert_close(z.mean(0), torch.tensor([1.0, -2.0]), atol=0.05, rtol=0)
    torch.testing.assert_close(z.std(0), torch.tensor([0.5, 2.0]), atol=0.05, rtol=0)
    z.sum().backward()
    assert mu.grad is not None and torch.all(mu.grad == 1.0)  # dz/dmu = 1
    assert logvar.grad is not None and logvar.grad.abs().sum() > 0


def test_kl_closed_form_matches_monte_carlo_and_is_zero_at_the_prior() -> None:
    mu, logvar = torch.tensor([[0.7, -0.3, 1.5]]), torch.tensor([[0.2, -1.0, 0.5]])
    g = torch.Generator().manual_seed(1)
    z = reparameterize(mu.expand(200000, 3), logvar.expand(200000, 3), generator=g)
    q = torch.distributions.Normal(mu, (0.5 * logvar).exp())
    p = torch.distributions.Normal(torch.zeros(3), torch.ones(3))
    monte_carlo = (q.log_prob(z) - p.log_prob(z)).sum(1).mean()
    closed = gaussian_kl(mu, logvar)
    assert closed.shape == (1,)
    assert closed.item() == pytest.approx(monte_carlo.item(), abs=0.02)
    assert gaussian_kl(torch.zeros(4, 3), torch.zeros(4, 3)).abs().max().item() == 0.0


def test_vae_shapes_range_and_loss_terms() -> None:
    torch.manual_seed(0)
    model = VAE(z_dim=3, width=4)
    x = torch.rand(5, 1, 28, 28) * 2 - 1
    logits, mu, logvar = model(x)
    assert logits.shape == (5, 1, 28, 28) and mu.shape == logvar.shape == (5, 3)
    images = model.generate(torch.randn(6, 3))
    assert images.shape == (6, 1, 28, 28) and images.min() >= -1 and images.max() <= 1
    recon, kl = vae_terms(model, x)
    assert recon.shape == kl.shape == (5,)
    assert (recon > 0).all() and (kl >= 0).all()


def test_a_few_vae_steps_lower_the_negative_elbo() -> None:
    torch.manual_seed(0)
    model = VAE(z_dim=2, width=4)
    x = (torch.rand(16, 1, 28, 28) > 0.8).float() * 2 - 1  # a fixed batch of binary images
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    before = sum(t.mean() for t in vae_terms(model, x)).item()
    for _ in range(15):
        loss = sum(t.mean() for t in vae_terms(model, x))
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert sum(t.mean() for t in vae_terms(model, x)).item() < before - 50
