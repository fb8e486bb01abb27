"""The GAN ideas in isolation: spectral norm's largest singular value ~1, self-attention rows
that sum to 1 (and an identity start), hinge and non-saturating losses against hand values,
and the DCGAN/SAGAN nets' shapes and ranges at 28, 32 and 64 px."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from torchdojo.models.gan import DCGANDiscriminator, DCGANGenerator
from torchdojo.nn.generative import (
    SelfAttention2d,
    bce_d_loss,
    bce_g_loss,
    hinge_d_loss,
    hinge_g_loss,
)


@pytest.fixture(autouse=True)
def _seeded() -> None:
    torch.manual_seed(0)


def largest_singular_value(weight: torch.Tensor) -> float:
    return float(torch.linalg.matrix_norm(weight.detach().flatten(1), ord=2))


def test_spectral_norm_brings_the_largest_singular_value_to_one() -> None:
    conv = nn.Conv2d(16, 32, 4, 2, 1)
    nn.init.normal_(conv.weight, 0.0, 1.0)
    assert largest_singular_value(conv.weight) > 5  # far from 1 before
    sn = spectral_norm(conv)
    for _ in range(20):  # each training forward runs one power iteration
        sn(torch.randn(2, 16, 8, 8))
    assert largest_singular_value(sn.weight) == pytest.approx(1.0, abs=0.02)


def test_the_sagan_discriminator_layers_are_all_normalised() -> None:
    d = DCGANDiscriminator(image_size=28, width=8, spectral_norm=True, attention=True).train()
    for _ in range(10):
        d(torch.randn(4, 1, 28, 28))
    convs = [m for m in d.modules() if isinstance(m, nn.Conv2d) and hasattr(m, "parametrizations")]
    assert len(convs) == 3  # two strided convs and the head; attention's 1x1 convs are not SN
    for conv in convs:
        assert largest_singular_value(conv.weight) == pytest.approx(1.0, abs=0.05)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in d.modules())


def test_attention_rows_sum_to_one_and_the_layer_starts_as_identity() -> None:
    layer = SelfAttention2d(16)
    x = torch.randn(3, 16, 5, 7)
    attn = layer.attention(x)
    assert attn.shape == (3, 35, 35)
    assert (attn >= 0).all()
    torch.testing.assert_close(attn.sum(-1), torch.ones(3, 35))
    torch.testing.assert_close(layer(x), x)  # gamma = 0 at the start
    with torch.no_grad():
        layer.gamma.fill_(1.0)
    assert not torch.allclose(layer(x), x)


def test_attention_mixes_values_with_its_map() -> None:
    """Output at position i = x_i + gamma * sum_j attn[i, j] * v_j, checked for one position."""
    layer = SelfAttention2d(8, reduction=2)
    with torch.no_grad():
        layer.gamma.fill_(0.5)
    x = torch.randn(1, 8, 3, 3)
    attn = layer.attention(x)[0]  # (9, 9)
    v = layer.value(x)[0].flatten(1)  # (8, 9)
    i = 4
    expected = x[0].flatten(1)[:, i] + 0.5 * (v @ attn[i])
    torch.testing.assert_close(layer(x)[0].flatten(1)[:, i], expected)


def test_hinge_losses_by_hand() -> None:
    real = torch.tensor([2.0, 0.5, -1.0])  # costs relu(1 - r): 0, 0.5, 2 -> mean 2.5 / 3
    fake = torch.tensor([-3.0, 0.0])  # costs relu(1 + f): 0, 1 -> mean 0.5
    assert hinge_d_loss(real, fake).item() == pytest.approx(2.5 / 3 + 0.5)
    assert hinge_g_loss(fake).item() == pytest.approx(1.5)
    # samples beyond the margin cost nothing: D stops pushing them
    assert hinge_d_loss(torch.tensor([1.5]), torch.tensor([-1.2])).item() == 0.0


def test_bce_losses_by_hand() -> None:
    logit = torch.tensor([0.0])  # D undecided: p = 0.5
    assert bce_d_loss(logit, logit).item() == pytest.approx(2 * math.log(2))
    assert bce_g_loss(torch.tensor([math.log(3.0)])).item() == pytest.approx(-math.log(0.75))


@pytest.mark.parametrize("size", [28, 32, 64])
@pytest.mark.parametrize("sagan", [False, True])
def test_generator_and_discriminator_shapes(size: int, sagan: bool) -> None:
    g = DCGANGenerator(z_dim=10, image_size=size, width=4, spectral_norm=sagan, attention=sagan)
    d = DCGANDiscriminator(image_size=size, width=4, spectral_norm=sagan, attention=sagan)
    images = g(torch.randn(3, 10))
    assert g.z_dim == 10
    assert images.shape == (3, 1, size, size)
    assert images.abs().max() <= 1.0  # tanh
    torch.testing.assert_close(g.generate(torch.zeros(2, 10)), g(torch.zeros(2, 10)))
    logits = d(images)
    assert logits.shape == (3,)
    assert d.features(images).shape[0] == 3 and d.features(images).ndim == 2
    assert any(isinstance(m, SelfAttention2d) for m in g.modules()) == sagan


def test_unsupported_image_size_names_the_choices() -> None:
    with pytest.raises(ValueError, match="28, 32 or 64"):
        DCGANGenerator(image_size=48)
