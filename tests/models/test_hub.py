"""tv:/timm: backbones: offline pretrained loading, classifier replacement, clear errors."""

from __future__ import annotations

import argparse
import os
import urllib.error
from pathlib import Path
from typing import Any

import pytest
import timm
import torch
import torchvision
from safetensors.torch import save_file
from torch import nn

from torchdojo.models import create_model
from torchdojo.models.hub import create_hub_model, replace_classifier, tv_weights_path


@pytest.fixture(autouse=True)
def _one_thread() -> Any:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every torch.hub download fail as it does with no network."""

    def no_network(url: str, *args: Any, **kwargs: Any) -> None:
        raise urllib.error.URLError("no network in this test")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)


def test_mobilenet_v2_imagenet_weights_load_offline(
    monkeypatch: pytest.MonkeyPatch, offline: None
) -> None:
    data = os.environ.get("TORCHDOJO_DATA")
    if not data:
        pytest.skip("TORCHDOJO_DATA is unset; point it at the shared data folder")
    torch_home = Path(data).resolve() / "torch_home"
    checkpoint = torch_home / "hub" / "checkpoints" / "mobilenet_v2-b0353104.pth"
    if not checkpoint.is_file():
        pytest.skip(f"{checkpoint} is absent; put torchvision's MobileNetV2 IMAGENET1K_V1 there")
    monkeypatch.setenv("TORCH_HOME", str(torch_home))
    assert tv_weights_path("mobilenet_v2", "IMAGENET1K_V1") == checkpoint
    model = create_model("tv:mobilenet_v2", weights="IMAGENET1K_V1", num_classes=2).eval()
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    torch.testing.assert_close(model.features[0][0].weight, state["features.0.0.weight"])
    assert model.classifier[1].out_features == 2
    with torch.no_grad():
        assert model(torch.randn(1, 3, 64, 64)).shape == (1, 2)


def test_saved_resnet18_weights_load_through_the_torch_home_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, offline: None
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    path = tv_weights_path("resnet18", "IMAGENET1K_V1")
    assert path.parent == tmp_path / "hub" / "checkpoints"
    torch.manual_seed(0)
    source = torchvision.models.resnet18()
    path.parent.mkdir(parents=True)
    torch.save(source.state_dict(), path)
    model = create_hub_model("tv:resnet18", weights="IMAGENET1K_V1", num_classes=3)
    torch.testing.assert_close(model.conv1.weight, source.conv1.weight)
    torch.testing.assert_close(model.layer4[1].bn2.running_var, source.layer4[1].bn2.running_var)
    assert isinstance(model.fc, nn.Linear) and model.fc.out_features == 3
    same_classes = create_hub_model("tv:resnet18", weights="IMAGENET1K_V1")
    torch.testing.assert_close(same_classes.fc.weight, source.fc.weight)


def test_missing_weights_offline_name_the_cache_and_the_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, offline: None
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(RuntimeError) as info:
        create_model("tv:resnet18", weights="IMAGENET1K_V1")
    message = str(info.value)
    assert "TORCH_HOME" in message and str(tmp_path) in message
    assert "resnet18-f37072fd.pth" in message and "https://download.pytorch.org" in message


def test_pickled_objects_in_the_cache_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    path = tv_weights_path("resnet18", "IMAGENET1K_V1")
    path.parent.mkdir(parents=True)
    torch.save({"args": argparse.Namespace(lr=0.1)}, path)
    with pytest.raises(Exception, match="[Ww]eights only load failed"):
        create_model("tv:resnet18", weights="IMAGENET1K_V1")


def test_local_safetensors_file_with_other_classes(tmp_path: Path) -> None:
    torch.manual_seed(0)
    source = torchvision.models.resnet18(num_classes=5)
    save_file(source.state_dict(), tmp_path / "r18.safetensors")
    model = create_model("tv:resnet18", weights=str(tmp_path / "r18.safetensors"), num_classes=2)
    torch.testing.assert_close(model.layer1[0].conv1.weight, source.layer1[0].conv1.weight)
    assert model.fc.out_features == 2  # the 5-class head was skipped, not forced in
    exact = create_model("tv:resnet18", weights=str(tmp_path / "r18.safetensors"), num_classes=5)
    torch.testing.assert_close(exact.fc.weight, source.fc.weight)


def test_random_init_passes_num_classes() -> None:
    assert create_model("tv:resnet18", num_classes=4).fc.out_features == 4


def test_timm_model_and_local_weights(tmp_path: Path) -> None:
    torch.manual_seed(0)
    source = timm.create_model("resnet18", num_classes=10)
    torch.save(source.state_dict(), tmp_path / "timm_r18.pth")
    model = create_model("timm:resnet18", weights=str(tmp_path / "timm_r18.pth"), num_classes=3)
    torch.testing.assert_close(model.conv1.weight, source.conv1.weight)
    with torch.no_grad():
        assert model.eval()(torch.randn(1, 3, 32, 32)).shape == (1, 3)


def test_timm_offline_error_names_the_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    def offline_create(name: str, *, pretrained: bool = False, **kwargs: Any) -> nn.Module:
        if pretrained:
            raise FileNotFoundError("cannot find the requested files in the local cache")
        return nn.Linear(1, 1)

    monkeypatch.setattr(timm, "create_model", offline_create)
    with pytest.raises(RuntimeError, match="HF_HOME") as info:
        create_model("timm:resnet18", weights="DEFAULT")
    assert "weights='/path/model.safetensors'" in str(info.value)


@pytest.mark.parametrize(
    ("name", "kwargs", "match"),
    [
        ("hf:resnet18", {}, "unknown zoo prefix"),
        ("tv:resnet_nope", {}, "unknown torchvision model"),
        ("timm:resnet_nope", {}, "unknown timm model"),
        ("timm:resnet18", {"weights": "IMAGENET1K_V1"}, "timm weights must be"),
    ],
)
def test_bad_names_raise_value_error(name: str, kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        create_hub_model(name, **kwargs)


def test_replace_classifier_needs_a_linear_layer() -> None:
    with pytest.raises(ValueError, match="no nn.Linear"):
        replace_classifier(nn.Sequential(nn.Conv2d(3, 8, 1)), 2)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 10))
    assert replace_classifier(model, 3)[2].out_features == 3
    assert model[0].out_features == 8
