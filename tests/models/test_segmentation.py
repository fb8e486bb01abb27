"""Segmentation models: logits at the input's size, the pieces' shapes, the offline backbone."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from torchdojo.models import create_model
from torchdojo.models.segmentation import (
    ASPP,
    MobileNetV2Backbone,
    PyramidPooling,
    ToRGB,
)


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("size", [(32, 32), (37, 50)])
def test_unet_logits_keep_any_input_size(size: tuple[int, int]) -> None:
    model = create_model("unet", in_channels=1, num_classes=3, width=4, depth=3).eval()
    with torch.no_grad():
        assert model(torch.rand(2, 1, *size)).shape == (2, 3, *size)


def test_unet_depth_and_width_set_the_levels() -> None:
    model = create_model("unet", in_channels=2, num_classes=5, width=4, depth=2)
    assert len(model.down) == 2 and len(model.up) == 2
    assert model.down[-1][1][0][0].out_channels == 4 * 2**2  # the deepest level: width * 2**depth


@pytest.mark.parametrize(("stride", "side"), [(8, 8), (16, 4)])
def test_backbone_output_stride(stride: int, side: int) -> None:
    backbone = MobileNetV2Backbone(in_channels=3, output_stride=stride, pretrained=False).eval()
    with torch.no_grad():
        low, high = backbone(torch.rand(1, 3, 64, 64))
    assert low.shape == (1, 96, side, side) and high.shape == (1, 320, side, side)


def test_pyramid_pooling_doubles_the_channels_and_trains_on_a_batch_of_one() -> None:
    ppm = PyramidPooling(32).train()
    out = ppm(torch.rand(1, 32, 7, 9))
    assert out.shape == (1, 64, 7, 9)
    aspp = ASPP(32, 16, rates=(1, 2)).train()
    assert aspp(torch.rand(2, 32, 5, 5)).shape == (2, 16, 5, 5)


def test_gray_input_is_repeated_to_three_channels() -> None:
    gray = torch.rand(1, 1, 4, 4)
    assert torch.equal(ToRGB(1)(gray), ToRGB(3)(gray.repeat(1, 3, 1, 1)))


@pytest.mark.parametrize("name", ["pspnet-mobilenetv2", "deeplabv3-mobilenetv2"])
def test_backbone_models_give_logits_at_input_size(name: str) -> None:
    model = create_model(name, in_channels=1, num_classes=3, width=16).eval()
    with torch.no_grad():
        assert model(torch.rand(1, 1, 40, 56)).shape == (1, 3, 40, 56)


def test_pspnet_aux_head_reads_the_96_channel_stage() -> None:
    model = create_model("pspnet-mobilenetv2", num_classes=4, width=16).eval()
    x = torch.rand(1, 3, 32, 48)
    with torch.no_grad():
        logits, aux = model.forward_aux(x)
        assert torch.allclose(logits, model(x))  # the main output is forward's
    assert logits.shape == aux.shape == (1, 4, 32, 48)
    assert not torch.allclose(logits, aux)


def test_pretrained_backbone_loads_imagenet_weights_offline(
    real_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(real_data / "torch_home"))
    import torchvision

    reference = torchvision.models.mobilenet_v2()
    reference.load_state_dict(
        torch.load(
            real_data / "torch_home/hub/checkpoints/mobilenet_v2-b0353104.pth", weights_only=True
        )
    )
    model = create_model("deeplabv3-mobilenetv2", in_channels=1, pretrained=True)
    assert torch.equal(model.backbone.low[0][0].weight, reference.features[0][0].weight)
