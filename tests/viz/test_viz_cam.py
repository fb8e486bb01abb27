"""Grad-CAM on a hand-built net with a known answer, and the overlay figure."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from torchdojo.viz import GradCAM, cam_overlay_figure


def _detector_net() -> nn.Sequential:
    """Two hand-set detectors: channel 0 fires on input channel 0, channel 1 on input 1.

    The head reads only channel 0 for class 0 and only channel 1 for class 1, so class 0's
    evidence is wherever input channel 0 is bright.
    """
    conv = nn.Conv2d(2, 2, kernel_size=1, bias=False)
    head = nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.eye(2).view(2, 2, 1, 1))
        head.weight.copy_(torch.eye(2))
    net = nn.Sequential(conv, nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), head)
    for p in net.parameters():
        p.requires_grad_(False)  # frozen nets must work too
    return net


def _image() -> torch.Tensor:
    torch.manual_seed(0)
    x = torch.rand(1, 2, 16, 16) * 0.1  # faint noise everywhere
    x[0, 0, 10:14, 11:15] = 1.0  # class-0 blob in the bottom-right quadrant
    x[0, 1, 2:5, 2:5] = 0.8  # class-1 blob in the top-left quadrant
    return x


def _argmax_yx(cam: torch.Tensor) -> tuple[int, int]:
    flat = int(cam.flatten().argmax())
    return divmod(flat, cam.shape[-1])


def test_gradcam_finds_the_bottom_right_evidence() -> None:
    net, x = _detector_net(), _image()
    cam = GradCAM(net, net[1])(x)  # class 0 is predicted: its blob is bigger and brighter
    assert cam.shape == (1, 16, 16)
    assert float(cam.min()) >= 0.0 and float(cam.max()) == pytest.approx(1.0)
    y, x_ = _argmax_yx(cam[0])
    assert y >= 8 and x_ >= 8
    assert float(cam[0, 8:, 8:].mean()) > 3 * float(cam[0, :8, :8].mean())


def test_gradcam_class_idx_moves_the_map() -> None:
    net, x = _detector_net(), _image()
    cams = GradCAM(net, net[1])(x.repeat(2, 1, 1, 1), class_idx=[0, 1])
    assert _argmax_yx(cams[0])[0] >= 8
    y, x_ = _argmax_yx(cams[1])
    assert y < 8 and x_ < 8  # class 1's evidence is the top-left blob


def test_gradcam_leaves_the_model_untouched() -> None:
    net = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(inplace=True),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(4, 3),
    )
    net.train()
    before = net(torch.randn(2, 3, 8, 8)).detach()  # also moves BN stats once
    net.eval()
    before = net(torch.ones(2, 3, 8, 8)).detach()
    net.train()
    cams = GradCAM(net, net[1])(torch.randn(2, 3, 8, 8), class_idx=2)  # BN then in-place ReLU
    assert cams.shape == (2, 8, 8) and torch.isfinite(cams).all()
    assert net.training and not net[1]._forward_hooks
    assert all(p.grad is None for p in net.parameters())
    net.eval()
    assert torch.equal(net(torch.ones(2, 3, 8, 8)), before)  # running stats not updated
    with pytest.raises(ValueError, match="class_idx"):
        GradCAM(net, net[1])(torch.randn(2, 3, 8, 8), class_idx=5)


def test_cam_overlay_figure() -> None:
    images = torch.rand(3, 3, 16, 16)
    cams = torch.rand(3, 16, 16)
    fig = cam_overlay_figure(images, cams, ["a", "b", "c"], ncols=2)
    assert len(fig.axes) == 3 and len(fig.axes[0].get_images()) == 2
    with pytest.raises(ValueError, match="cams"):
        cam_overlay_figure(images, cams[:, :8])
