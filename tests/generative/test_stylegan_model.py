"""StyleGAN's ideas one at a time: the mapping network, modulation and demodulation, noise
inputs and style mixing; then the recipe's smoke run and its bundle."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import Tensor
from torch.nn import functional as F  # noqa: N812

from torchdojo.models import create_model, load_bundle
from torchdojo.models.stylegan import MappingNetwork, ModulatedConv2d, StyleGenerator
from torchdojo.recipes import run_recipe
from torchdojo.runs import RunOptions


def generator() -> StyleGenerator:
    torch.manual_seed(0)
    model = create_model("stylegan-28", width=16, z_dim=8, w_dim=8)
    assert isinstance(model, StyleGenerator)
    with torch.no_grad():  # trained-like styles: far from the initial all-ones
        for m in model.modules():
            if isinstance(m, ModulatedConv2d):
                m.affine.weight.normal_(0, 1.0)
    return model.eval()


def same_noise(model: StyleGenerator, *args: Tensor | int | None) -> Tensor:
    """The images of ``model(*args)`` with the per-pixel noise seeded: only the styles vary."""
    torch.manual_seed(123)
    with torch.no_grad():
        return model(*args)


def test_mapping_network_gives_one_w_per_z_and_ignores_the_scale_of_z() -> None:
    mapping = MappingNetwork(z_dim=8, w_dim=12, depth=3)
    z = torch.randn(5, 8)
    w = mapping(z)
    assert w.shape == (5, 12)
    assert torch.allclose(mapping(3 * z), w, atol=1e-5)  # pixel norm: only z's direction counts


def test_a_fresh_generator_draws_different_images_for_different_z() -> None:
    # with PyTorch's default Linear init the mapping shrank w ~2.5x per layer: every z got
    # nearly the same style, samples differed by 0.003 of a pixel, and training collapsed
    torch.manual_seed(0)
    model = create_model("stylegan-28").eval()
    assert isinstance(model, StyleGenerator)
    z = torch.randn(256, model.z_dim)
    with torch.no_grad():
        w = model.mapping(z)
        images = model(z)  # (256, 1, 28, 28)
    assert 0.5 < w.square().mean().sqrt() < 2  # |w| ~ |z|: He init through the depth
    across = images.std(0).mean()  # how much the image changes with z, per pixel
    assert across > 0.5 * images.std()  # most of the variation is between samples


def test_demodulated_weights_have_unit_norm_per_sample_and_output_channel() -> None:
    torch.manual_seed(0)
    conv = ModulatedConv2d(6, 5, w_dim=4)
    w = torch.randn(3, 4) * 3
    norms = conv.modulated_weight(w).square().sum((2, 3, 4)).sqrt()  # (B, C_out)
    assert torch.allclose(norms, torch.ones(3, 5), atol=1e-4)
    plain = ModulatedConv2d(6, 5, w_dim=4, demodulate=False).modulated_weight(w)
    assert not torch.allclose(plain.square().sum((2, 3, 4)).sqrt(), torch.ones(3, 5), atol=0.1)


def test_grouped_modulated_conv_equals_each_samples_own_conv() -> None:
    torch.manual_seed(0)
    conv = ModulatedConv2d(4, 6, w_dim=3)
    x, w = torch.randn(2, 4, 7, 7), torch.randn(2, 3)
    weights = conv.modulated_weight(w)  # (B, C_out, C_in, 3, 3)
    one_by_one = torch.cat([F.conv2d(x[i : i + 1], weights[i], padding=1) for i in range(2)])
    assert torch.allclose(conv(x, w), one_by_one, atol=1e-5)


def test_demodulation_keeps_unit_variance_through_the_conv_whatever_the_style() -> None:
    torch.manual_seed(0)
    conv = ModulatedConv2d(64, 32, w_dim=8)
    x = torch.randn(4, 64, 16, 16)
    for scale in (0.1, 10.0):
        std = conv(x, torch.randn(4, 8) * scale).std().item()
        assert 0.7 < std < 1.3, f"style scale {scale}: output std {std}"


def test_generator_has_dcgans_interface() -> None:
    model = generator()
    z = torch.randn(3, model.z_dim)
    images = same_noise(model, z)
    assert images.shape == (3, 1, 28, 28) and images.abs().max() <= 1
    assert torch.equal(images, same_noise(model, z))
    torch.manual_seed(123)
    assert torch.equal(model.generate(z), images)
    assert model.styles(z).shape == (3, model.num_layers, model.w_dim)


def test_noise_inputs_change_only_detail_when_switched_on() -> None:
    model = generator()
    z = torch.randn(2, model.z_dim)
    torch.manual_seed(1)
    a = model(z)
    torch.manual_seed(2)
    assert torch.equal(a, model(z))  # strengths start at 0: the noise is off
    with torch.no_grad():
        for block in model.blocks:
            block.noise.strength.fill_(0.2)
    torch.manual_seed(1)
    b = model(z)
    torch.manual_seed(2)
    c = model(z)
    assert not torch.equal(b, c)
    assert (b - c).abs().mean() < (a - same_noise(model, torch.randn(2, model.z_dim))).abs().mean()


def test_style_mixing_differs_from_both_parents_and_coarse_layers_matter_more() -> None:
    model = generator()
    z1, z2 = torch.randn(4, model.z_dim), torch.randn(4, model.z_dim)
    first, second = same_noise(model, z1), same_noise(model, z2)
    assert torch.equal(same_noise(model, z1, z2, model.num_layers), first)  # no layer from z2
    assert torch.allclose(same_noise(model, z1, z2, 0), second, atol=1e-6)  # every layer
    distances = []
    for layer in range(1, model.num_layers):
        mixed = same_noise(model, z1, z2, layer)
        assert not torch.allclose(mixed, first, atol=1e-4)
        assert not torch.allclose(mixed, second, atol=1e-4)
        distances.append((mixed - first).abs().mean().item())
    # giving z2 the coarse layers too (a smaller crossover layer) moves the image further from z1
    assert distances[0] > distances[-1]
    with pytest.raises(ValueError, match="mix_at=9"):
        model(z1, z2, 9)


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("stylegan")
    options = RunOptions(smoke=True, out=str(out), progress=False, threads=1)
    return run_recipe("stylegan-mnist", options).run_dir


def test_smoke_run_saves_a_generator_and_the_mixing_table(smoke_run: Path) -> None:
    model, spec = load_bundle(smoke_run)
    assert spec.task == "generation" and spec.name == "stylegan-28"
    assert isinstance(model, StyleGenerator) and model.z_dim == spec.kwargs["z_dim"] == 16
    assert model.generate(torch.randn(2, 16)).shape == (2, 1, 28, 28)
    assert (smoke_run / "plots" / "mixing.png").is_file()
