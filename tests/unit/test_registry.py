from __future__ import annotations

import pytest

from torchdojo.data import create_dataset, list_datasets
from torchdojo.models import create_model, list_models
from torchdojo.recipes import ConfigError, get_recipe, list_recipes
from torchdojo.utils import Registry


def test_registry_refuses_duplicates_and_lists_valid_names() -> None:
    reg: Registry[int] = Registry("thing")
    reg.register("alpha", 1)
    with pytest.raises(ValueError, match="already registered"):
        reg.register("alpha", 2)
    with pytest.raises(KeyError, match=r"Did you mean 'alpha'\?.*Available: alpha"):
        reg.get("alpa")


def test_model_registry_knows_core_models_and_explains_unknown() -> None:
    assert {"mlp", "mnist-cnn"} <= set(list_models())
    assert create_model("mlp", in_features=4, num_classes=3, width=8)(
        __import__("torch").ones(2, 4)
    ).shape == (2, 3)
    with pytest.raises(KeyError, match="unknown model 'nope'"):
        create_model("nope")


def test_dataset_registry() -> None:
    assert {"mnist", "fashion-mnist", "mnist-tiny", "digits"} <= set(list_datasets())
    tiny = create_dataset("mnist-tiny", "train")
    assert tiny.x.shape[1:] == (1, 28, 28) and tiny.x.dtype.is_floating_point is False
    with pytest.raises(ValueError, match="split must be"):
        create_dataset("mnist-tiny", "validation")


def test_recipe_registry() -> None:
    assert {"linear-regression", "mnist-mlp", "mnist-cnn"} <= set(list_recipes())
    assert get_recipe("mnist-cnn").name == "mnist-cnn"
    with pytest.raises(ConfigError, match="Available: .*mnist-cnn"):
        get_recipe("mnist-cnm")
