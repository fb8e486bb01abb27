"""A trained model on disk: ``model.safetensors`` + ``model.json`` (how to rebuild it).

``model.json`` names the registered builder and its keyword arguments, the input shape, the
normalization and the class names; loading rebuilds the model with :func:`create_model` and
reads the weights with safetensors (no pickle).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from safetensors.torch import load_file, save_file
from torch import nn

from torchdojo.models.registry import create_model
from torchdojo.utils.io import atomic_write, atomic_write_json


@dataclass
class ModelSpec:
    """How to rebuild a model and feed it.

    Args:
        name: A name for :func:`create_model` (``"mnist-cnn"``, ``"tv:resnet18"``, ...).
        kwargs: Keyword arguments of the builder (JSON-able).
        input_shape: One input's shape without the batch dimension, e.g. ``[1, 28, 28]``.
        mean: Per-channel normalization mean (inputs scaled to [0, 1] first).
        std: Per-channel normalization std.
        classes: Class names, in output order.
        task: ``"classification"``, ``"regression"``, ``"text-classification"`` or
            ``"audio-classification"``.
        preprocess: What turns a raw input into ``input_shape`` beyond mean/std, as JSON.
            Text: ``{"tokenizer": "tokenizer.json", "max_length": 128, "pretokenize": null}``
            (the tokenizer file sits beside ``model.json``); audio: the sample rate and the
            spectrogram settings.
    """

    name: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    input_shape: list[int] = field(default_factory=list)
    mean: list[float] = field(default_factory=list)
    std: list[float] = field(default_factory=list)
    classes: list[str] = field(default_factory=list)
    task: str = "classification"
    preprocess: dict[str, Any] = field(default_factory=dict)


def save_bundle(folder: str | Path, model: nn.Module, spec: ModelSpec) -> Path:
    """Write ``model.safetensors`` and ``model.json`` into ``folder`` atomically."""
    folder = Path(folder)
    state = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    atomic_write(folder / "model.safetensors", lambda tmp: save_file(state, str(tmp)))
    atomic_write_json(folder / "model.json", asdict(spec))
    return folder


def load_bundle(folder: str | Path) -> tuple[nn.Module, ModelSpec]:
    """Rebuild the model saved in ``folder`` and load its weights (eval mode, CPU)."""
    folder = Path(folder)
    spec_file, weights = folder / "model.json", folder / "model.safetensors"
    if not spec_file.is_file() or not weights.is_file():
        raise FileNotFoundError(
            f"{folder} holds no trained model (model.json + model.safetensors); "
            "pass a finished run folder, e.g. runs/mnist-cnn/<timestamp>"
        )
    spec = ModelSpec(**json.loads(spec_file.read_text()))
    kwargs = {k: v for k, v in spec.kwargs.items() if k != "weights"}
    model = create_model(spec.name, **kwargs)
    model.load_state_dict(load_file(str(weights)))
    return model.eval(), spec
