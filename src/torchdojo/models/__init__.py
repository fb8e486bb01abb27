"""Layer 2: the model zoo. ``create_model(name, ...)``, ``list_models()``."""

from torchdojo.models.registry import (
    create_model,
    get_model_builder,
    list_models,
    register_model,
)

__all__ = ["create_model", "get_model_builder", "list_models", "register_model"]

from torchdojo.models.bundle import ModelSpec, load_bundle, save_bundle  # noqa: E402

__all__ += ["ModelSpec", "load_bundle", "save_bundle"]
