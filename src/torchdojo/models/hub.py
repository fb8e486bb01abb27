"""Backbones from torchvision's and timm's zoos, reached as ``"tv:<name>"`` / ``"timm:<name>"``.

``create_model("tv:resnet18", weights="IMAGENET1K_V1", num_classes=2)`` loads ImageNet weights
and swaps the classifier for a fresh 2-class one: the transfer-learning starting point.
torchvision weights use the ``weights=`` enums (``pretrained=True`` is deprecated since 0.13);
timm weights come from the Hugging Face Hub. Both also accept a local weights file. With no
network and no cached file, loading fails with a message that names the cache path and the URL.
Taught in lessons/10_transfer_learning.py.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from torch import nn

logger = logging.getLogger(__name__)

_WEIGHT_SUFFIXES = (".pth", ".pt", ".bin", ".safetensors")


def create_hub_model(
    name: str, *, num_classes: int | None = None, weights: str | None = None, **kwargs: Any
) -> nn.Module:
    """Build ``"tv:<name>"`` (torchvision) or ``"timm:<name>"`` (timm), optionally pretrained.

    Args:
        name: ``"tv:resnet18"``, ``"timm:convnext_atto"``, ... (the prefix picks the zoo).
        num_classes: Output classes; when it differs from the weights' classes the last linear
            layer (the classifier) is replaced by a fresh one. ``None`` keeps the zoo default.
        weights: ``None`` for random init; a torchvision weights name (``"IMAGENET1K_V1"``,
            ``"DEFAULT"``); for timm ``"DEFAULT"`` (the Hub weights of ``name``); or a local
            ``.pth``/``.safetensors`` file (loaded without pickle; shape-mismatched head
            tensors are skipped).
        **kwargs: Passed on to ``torchvision.models.get_model`` / ``timm.create_model``; these
            are the zoos' own options, so they are not listed here.

    Raises:
        ValueError: For an unknown prefix or model name.
        RuntimeError: When weights are not cached and cannot be downloaded.
    """
    zoo, _, model_name = name.partition(":")
    if zoo == "tv":
        return _create_torchvision(model_name, num_classes=num_classes, weights=weights, **kwargs)
    if zoo == "timm":
        return _create_timm(model_name, num_classes=num_classes, weights=weights, **kwargs)
    raise ValueError(f"unknown zoo prefix in {name!r}; use 'tv:<name>' or 'timm:<name>'")


def tv_weights_path(name: str, weights: str) -> Path:
    """Where torch.hub caches torchvision's ``weights`` file for model ``name``.

    The folder is ``$TORCH_HOME/hub/checkpoints`` (``TORCH_HOME`` defaults to
    ``~/.cache/torch``).
    """
    import torchvision.models as tvm

    entry = tvm.get_model_weights(name).verify(weights)
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(entry.url).name


def replace_classifier(model: nn.Module, num_classes: int) -> nn.Module:
    """Swap the model's last ``nn.Linear`` for a fresh one with ``num_classes`` outputs.

    Returns the model (changed in place). Does nothing when the size already matches.

    Raises:
        ValueError: When the model has no linear layer.
    """
    linears = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError(f"{type(model).__name__} has no nn.Linear classifier to replace")
    path, old = linears[-1]
    if old.out_features != num_classes:
        new = nn.Linear(old.in_features, num_classes, bias=old.bias is not None)
        parent_path, _, attr = path.rpartition(".")
        setattr(model.get_submodule(parent_path), attr, new)
        logger.info("replaced classifier %s: %d -> %d classes", path, old.out_features, num_classes)
    return model


def load_local_weights(model: nn.Module, path: str | Path) -> nn.Module:
    """Load a ``.safetensors`` or ``.pth`` state dict (no pickle) into ``model``.

    Tensors whose shape differs from the model's (a classifier for other classes) are skipped
    with a log line; any other missing or unexpected key raises.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file {path} does not exist")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(path)
    else:
        state = torch.load(path, map_location="cpu", weights_only=True)
    own = model.state_dict()
    skipped = [k for k, v in state.items() if k in own and own[k].shape != v.shape]
    for key in skipped:
        logger.info(
            "skipping %s: shape %s in file, %s in model",
            key,
            tuple(state[key].shape),
            tuple(own[key].shape),
        )
        del state[key]
    missing, unexpected = model.load_state_dict(state, strict=False)
    if set(missing) - set(skipped) or unexpected:
        raise ValueError(
            f"{path} does not fit {type(model).__name__}: missing {sorted(missing)[:5]}, "
            f"unexpected {sorted(unexpected)[:5]}"
        )
    return model


def _is_file_path(weights: str) -> bool:
    return "/" in weights or "\\" in weights or weights.endswith(_WEIGHT_SUFFIXES)


def _create_torchvision(
    name: str, *, num_classes: int | None, weights: str | None, **kwargs: Any
) -> nn.Module:
    import torchvision.models as tvm

    if name not in tvm.list_models():
        raise ValueError(
            f"unknown torchvision model {name!r}; see torchvision.models.list_models()"
        )
    if weights is None or _is_file_path(weights):
        extra: dict[str, Any] = {} if num_classes is None else {"num_classes": num_classes}
        model = tvm.get_model(name, weights=None, **extra, **kwargs)
        return model if weights is None else load_local_weights(model, weights)
    entry = tvm.get_model_weights(name).verify(weights)
    path = tv_weights_path(name, weights)
    if path.is_file():
        # torchvision unpickles the file; check first that it holds nothing but tensors.
        torch.load(path, map_location="cpu", weights_only=True)
    try:
        model = tvm.get_model(name, weights=entry, **kwargs)
    except OSError as err:  # URLError, socket errors, a read-only cache folder
        raise RuntimeError(_tv_offline_message(name, entry.url, path)) from err
    return model if num_classes is None else replace_classifier(model, num_classes)


def _tv_offline_message(name: str, url: str, path: Path) -> str:
    return (
        f"could not download the weights of tv:{name} and no cached copy exists at {path}. "
        f"torch.hub caches in $TORCH_HOME/hub/checkpoints (TORCH_HOME is now "
        f"{Path(torch.hub.get_dir()).parent}). Offline: download {url} on a machine with "
        f"network and copy it to {path}, or point TORCH_HOME at a folder holding "
        f"hub/checkpoints/{path.name}."
    )


def _create_timm(
    name: str, *, num_classes: int | None, weights: str | None, **kwargs: Any
) -> nn.Module:
    import timm

    base = name.split(".")[0]  # timm names may carry a weights tag: "resnet18.a1_in1k"
    if not timm.is_model(base):
        raise ValueError(f"unknown timm model {name!r}; see timm.list_models()")
    extra: dict[str, Any] = {} if num_classes is None else {"num_classes": num_classes}
    if weights is None or _is_file_path(weights):
        model = timm.create_model(name, pretrained=False, **extra, **kwargs)
        return model if weights is None else load_local_weights(model, weights)
    if weights.upper() != "DEFAULT":
        raise ValueError(
            f"timm weights must be None, 'DEFAULT' or a file path, got {weights!r}; pick a "
            f"weights tag through the name instead, e.g. 'timm:{base}.<tag>'"
        )
    try:
        return timm.create_model(name, pretrained=True, **extra, **kwargs)
    except OSError as err:  # no network, or not in the Hugging Face cache
        raise RuntimeError(
            f"could not fetch the timm weights of {name!r} from the Hugging Face Hub and no "
            f"cached copy exists (cache: $HF_HOME/hub, default ~/.cache/huggingface/hub). "
            f"Offline: on a machine with network run `hf download timm/{name}` and copy the "
            f"cache folder over (or set HF_HOME to it), or save the weights to a file and pass "
            f"weights='/path/model.safetensors'."
        ) from err
