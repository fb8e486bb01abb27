"""The model registry: ``@register_model`` builders, ``create_model``, ``list_models``.

Names with a ``tv:`` or ``timm:`` prefix reach torchvision's and timm's zoos (see
:mod:`torchdojo.models.hub`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from torch import nn

from torchdojo.utils.registry import Registry

ModelBuilder = Callable[..., nn.Module]
B = TypeVar("B", bound=ModelBuilder)

MODELS: Registry[ModelBuilder] = Registry("model")


def register_model(fn: B) -> B:
    """Register a keyword-only builder under its function name (``_`` becomes ``-``)."""
    MODELS.decorator()(fn)
    return fn


def list_models() -> list[str]:
    """Names of every registered model (the zoo prefixes ``tv:``/``timm:`` are not listed)."""
    _load_zoo()
    return MODELS.names()


def get_model_builder(name: str) -> ModelBuilder:
    """The builder registered as ``name``."""
    _load_zoo()
    return MODELS.get(name)


def create_model(name: str, **kwargs: Any) -> nn.Module:
    """Build a model by name, e.g. ``create_model("lenet5", num_classes=10)``.

    ``"tv:resnet18"`` and ``"timm:resnet18"`` build from torchvision's or timm's zoo;
    pass ``weights=...`` there for pretrained weights.
    """
    if name.startswith(("tv:", "timm:")):
        from torchdojo.models import hub

        return hub.create_hub_model(name, **kwargs)
    return get_model_builder(name)(**kwargs)


def _load_zoo() -> None:
    """Import every zoo module once so their decorators run."""
    import importlib
    import pkgutil

    import torchdojo.models as pkg

    for info in pkgutil.iter_modules(pkg.__path__):
        if not info.name.startswith("_") and info.name not in {"registry", "hub"}:
            importlib.import_module(f"torchdojo.models.{info.name}")
