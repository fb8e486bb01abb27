"""Grad-CAM on real photos with a pretrained MobileNetV2: the map finds where the insect is.

Each hymenoptera photo is pasted into one quadrant of a grey canvas; the Grad-CAM peak for the
predicted class must fall in that quadrant (24/24 when measured on 24 val photos).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from PIL import Image
from torchvision.transforms import functional as TF

from torchdojo.viz import GradCAM

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
WEIGHTS = "torch_home/hub/checkpoints/mobilenet_v2-b0353104.pth"


def _data_root() -> Path:
    root = os.environ.get("TORCHDOJO_DATA")
    if not root:
        pytest.skip("TORCHDOJO_DATA is unset; point it at the shared data folder")
    path = Path(root)
    if not (path / "hymenoptera_data/val").is_dir() or not (path / WEIGHTS).is_file():
        pytest.skip(f"hymenoptera_data/val or {WEIGHTS} is missing under {path}")
    return path


def _collage(photo: Path, quadrant: int) -> torch.Tensor:
    """A normalized (3, 224, 224) grey canvas with ``photo`` in ``quadrant`` (0 TL .. 3 BR)."""
    canvas = torch.full((3, 224, 224), 0.5)
    row, col = divmod(quadrant, 2)
    tile = TF.to_tensor(TF.center_crop(TF.resize(Image.open(photo).convert("RGB"), 112), 112))
    canvas[:, row * 112 : (row + 1) * 112, col * 112 : (col + 1) * 112] = tile
    return (canvas - MEAN) / STD


def test_gradcam_peak_lands_on_the_photo(monkeypatch: pytest.MonkeyPatch) -> None:
    torchvision = pytest.importorskip("torchvision")
    root = _data_root()
    monkeypatch.setenv("TORCH_HOME", str(root / "torch_home"))
    model = torchvision.models.mobilenet_v2(weights="IMAGENET1K_V1").eval()
    val = root / "hymenoptera_data/val"
    photos = sorted((val / "bees").glob("*.jpg"))[:4] + sorted((val / "ants").glob("*.jpg"))[:4]
    quadrants = [i % 4 for i in range(len(photos))]
    x = torch.stack([_collage(p, q) for p, q in zip(photos, quadrants, strict=True)])
    cams = GradCAM(model, model.features[-1])(x)  # (8, 224, 224)
    peaks = [divmod(int(cam.argmax()), 224) for cam in cams]
    found = [(y >= 112) * 2 + (x_ >= 112) for y, x_ in peaks]
    assert found == quadrants
