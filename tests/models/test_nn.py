"""Blocks of torchdojo.nn, model options, and the summary/FLOP helpers."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn

from torchdojo.models import create_model
from torchdojo.models.summary import count_flops, count_params, model_summary
from torchdojo.models.swin import shifted_window_mask, window_partition, window_reverse
from torchdojo.nn import (
    BasicBlock,
    ConvBnAct,
    MultiHeadSelfAttention,
    PatchEmbed,
    Residual,
    init_weights,
    inverted_residual,
)


@pytest.fixture(autouse=True)
def _one_thread() -> Any:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_conv_bn_act_shapes_and_layers() -> None:
    block = ConvBnAct(3, 8, 3, stride=2)
    assert block(torch.randn(2, 3, 9, 9)).shape == (2, 8, 5, 5)
    assert [type(m) for m in block] == [nn.Conv2d, nn.BatchNorm2d, nn.ReLU]
    assert block[0].bias is None
    assert len(ConvBnAct(3, 8, 1, act=None)) == 2


def test_residual_adds_its_input() -> None:
    fn = nn.Linear(4, 4)
    x = torch.randn(3, 4)
    torch.testing.assert_close(Residual(fn)(x), x + fn(x))


def test_basic_block_projection_only_when_shape_changes() -> None:
    assert isinstance(BasicBlock(8, 8).shortcut, nn.Identity)
    down = BasicBlock(8, 16, stride=2)
    assert isinstance(down.shortcut, ConvBnAct)
    assert down(torch.randn(2, 8, 8, 8)).shape == (2, 16, 4, 4)


def test_inverted_residual_skip_only_when_shape_is_kept() -> None:
    assert isinstance(inverted_residual(16, 16), Residual)
    assert not isinstance(inverted_residual(16, 24), Residual)
    assert inverted_residual(16, 24, stride=2)(torch.randn(1, 16, 8, 8)).shape == (1, 24, 4, 4)


def test_self_attention_matches_torch_multihead_attention() -> None:
    torch.manual_seed(0)
    ours = MultiHeadSelfAttention(16, 4).eval()
    ref = nn.MultiheadAttention(16, 4, batch_first=True).eval()
    with torch.no_grad():
        ref.in_proj_weight.copy_(ours.qkv.weight)
        ref.in_proj_bias.copy_(ours.qkv.bias)
        ref.out_proj.weight.copy_(ours.proj.weight)
        ref.out_proj.bias.copy_(ours.proj.bias)
    x = torch.randn(2, 5, 16)
    torch.testing.assert_close(ours(x), ref(x, x, x, need_weights=False)[0])


def test_attention_probabilities_visible_to_a_hook() -> None:
    attn = MultiHeadSelfAttention(8, 2)
    seen: list[torch.Tensor] = []
    attn.attn_drop.register_forward_hook(lambda m, i, o: seen.append(o))
    attn(torch.randn(1, 3, 8))
    assert seen[0].shape == (1, 2, 3, 3)
    torch.testing.assert_close(seen[0].sum(-1), torch.ones(1, 2, 3))


def test_heads_must_divide_dim() -> None:
    with pytest.raises(ValueError, match="divisible by heads"):
        MultiHeadSelfAttention(10, 3)


def test_patch_embed_is_a_linear_map_of_flattened_patches() -> None:
    torch.manual_seed(0)
    embed = PatchEmbed(3, 5, patch_size=4)
    x = torch.randn(2, 3, 8, 8)
    patches = x.unfold(2, 4, 4).unfold(3, 4, 4)  # (B, C, 2, 2, 4, 4)
    patches = patches.permute(0, 2, 3, 1, 4, 5).reshape(2, 4, 3 * 16)  # (B, N, C*p*p)
    expected = patches @ embed.proj.weight.reshape(5, -1).T + embed.proj.bias
    torch.testing.assert_close(embed(x), expected)


@pytest.mark.parametrize("scheme", ["kaiming", "xavier", "normal"])
def test_init_weights(scheme: str) -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(64, 128, 3), nn.BatchNorm2d(128), nn.Linear(256, 512))
    nn.init.constant_(model[1].weight, 3.0)
    init_weights(model, scheme, std=0.05)  # type: ignore[arg-type]
    conv, linear = model[0].weight, model[2].weight
    expected_std = {
        "kaiming": ((2 / (128 * 9)) ** 0.5, (2 / 512) ** 0.5),  # fan_out
        "xavier": ((2 / (64 * 9 + 128 * 9)) ** 0.5, (2 / (256 + 512)) ** 0.5),
        "normal": (0.05, 0.05),
    }[scheme]
    assert conv.std().item() == pytest.approx(expected_std[0], rel=0.05)
    assert linear.std().item() == pytest.approx(expected_std[1], rel=0.05)
    assert model[0].bias.abs().sum() == 0 and model[2].bias.abs().sum() == 0
    assert torch.equal(model[1].weight, torch.ones(128))
    with pytest.raises(ValueError, match="unknown init scheme"):
        init_weights(model, "orthogonal")  # type: ignore[arg-type]


def test_window_partition_round_trip_and_shift_mask() -> None:
    x = torch.randn(2, 8, 8, 3)
    windows = window_partition(x, 4)
    assert windows.shape == (8, 16, 3)
    torch.testing.assert_close(windows[1], x[0, :4, 4:8].reshape(16, 3))
    torch.testing.assert_close(window_reverse(windows, 4, 8, 8), x)
    assert shifted_window_mask(8, 4, 0).abs().sum() == 0
    mask = shifted_window_mask(8, 4, 2)
    assert mask.shape == (4, 16, 16)
    assert mask[0].abs().sum() == 0  # the top-left window holds one region only
    assert (mask[3] == -100).any()  # the corner window mixes four regions
    torch.testing.assert_close(mask, mask.transpose(1, 2))


def test_model_options() -> None:
    with torch.no_grad():
        assert create_model("lenet5", padding=0).eval()(torch.randn(1, 1, 32, 32)).shape == (1, 10)
        big = create_model("resnet18", stem="imagenet", num_classes=3).eval()
        assert big(torch.randn(1, 3, 64, 64)).shape == (1, 3)
        vit = create_model("vit-tiny", image_size=16, patch_size=8, depth=1).eval()
        assert vit(torch.randn(1, 3, 16, 16)).shape == (1, 10)
        swin = create_model("swin-mini", image_size=64, patch_size=4).eval()
        assert swin(torch.randn(1, 3, 64, 64)).shape == (1, 10)
        assert create_model("mobilenet-v2", width_mult=0.5)(torch.randn(2, 3, 32, 32)).shape == (
            2,
            10,
        )
    with pytest.raises(ValueError, match="stem"):
        create_model("resnet18", stem="tiny")
    with pytest.raises(ValueError, match="divisible by patch_size"):
        create_model("vit-tiny", image_size=30)
    with pytest.raises(ValueError, match="window_size"):
        create_model("swin-mini", image_size=36)


def test_count_params_and_flops() -> None:
    model = nn.Sequential(nn.Linear(10, 20), nn.ReLU(), nn.Linear(20, 3))
    assert count_params(model) == 10 * 20 + 20 + 20 * 3 + 3
    model[0].requires_grad_(False)
    assert count_params(model, trainable_only=True) == 20 * 3 + 3
    assert count_flops(model, (4, 10)) == 2 * 4 * (10 * 20 + 20 * 3)  # 2 FLOPs per multiply-add
    conv = nn.Conv2d(3, 8, 3, padding=1)
    assert count_flops(conv, (1, 3, 16, 16)) == 2 * 8 * 16 * 16 * 3 * 9
    model.train()
    count_flops(model, (1, 10))
    assert model.training  # the mode is restored


def test_model_summary_lists_layers_and_totals() -> None:
    text = model_summary(create_model("lenet5"), (1, 1, 28, 28))
    assert "LeNet5" in text and "[1, 16, 5, 5]" in text
    assert "Total params: 61,706" in text
