"""The model card: a JSON sidecar that says how to feed an exported model and what it predicts.

An export folder holds ``model.onnx`` (or ``model.pt2``), ``card.json`` and ``parity.json``.
This module needs no torch, so the server can read a card with ONNX Runtime and numpy only.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

CARD_FILE = "card.json"
PARITY_FILE = "parity.json"
ONNX_FILE = "model.onnx"
PT2_FILE = "model.pt2"

# torchvision's evaluation transform resizes to 256 and crops 224: the crop keeps 87.5 % of the side.
CROP_FRACTION = 0.875


@dataclass(frozen=True)
class ModelCard:
    """What a consumer of an exported model needs to know, written as ``card.json``.

    Args:
        input_size: ``(C, H, W)`` of one input image.
        mean: Per-channel mean subtracted after scaling pixels to [0, 1].
        std: Per-channel standard deviation divided after subtracting ``mean``.
        class_names: Label of each output index.
        model_file: File name of the model inside the export folder.
        format: ``"onnx"`` or ``"torch-export"``.
        exporter: Which exporter wrote the file (``"dynamo"``, ``"torchscript"``, ``"torch.export"``).
        resize_size: Short side the image is resized to before the center crop.
        opset: ONNX opset of the graph, ``None`` for ``model.pt2``.
        input_name: Name of the graph input.
        output_name: Name of the graph output (logits).
        metrics: Measured metrics of the model, e.g. ``{"val_acc": 0.99}``.
        versions: Versions of torch, onnx and onnxruntime at export time.
        created: ISO-8601 UTC time of the export.
    """

    input_size: tuple[int, int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    class_names: tuple[str, ...]
    model_file: str
    format: str
    exporter: str
    resize_size: int
    opset: int | None = None
    input_name: str = "input"
    output_name: str = "logits"
    metrics: dict[str, float] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    created: str = ""

    @property
    def num_classes(self) -> int:
        """Number of output classes."""
        return len(self.class_names)

    def to_dict(self) -> dict[str, Any]:
        """The card as plain JSON-ready values."""
        return asdict(self)


SMALL_INPUT = 64  # below this side, models train on whole images (MNIST, CIFAR): no crop margin


def default_resize_size(input_size: tuple[int, int, int]) -> int:
    """Short side to resize to before cropping ``input_size``: 256 for a 224 crop; the input
    side itself for inputs under ``SMALL_INPUT`` pixels (the whole image is used)."""
    side = max(input_size[1:])
    return side if side < SMALL_INPUT else round(side / CROP_FRACTION)


def card_from_dict(data: dict[str, Any]) -> ModelCard:
    """Build a card from parsed JSON, checking the fields a predictor relies on."""
    missing = {"input_size", "mean", "std", "class_names", "model_file"} - data.keys()
    if missing:
        raise ValueError(
            f"card.json lacks {sorted(missing)}; re-export the model with export_model"
        )
    sizes = [int(v) for v in data["input_size"]]
    if len(sizes) != 3:  # (C, H, W)
        raise ValueError(f"card input_size must be (C, H, W), got {data['input_size']}")
    input_size = (sizes[0], sizes[1], sizes[2])
    channels = input_size[0]
    if len(data["mean"]) != channels or len(data["std"]) != channels:
        raise ValueError(f"card mean/std need {channels} values each, one per input channel")
    return ModelCard(
        input_size=input_size,
        mean=tuple(float(v) for v in data["mean"]),
        std=tuple(float(v) for v in data["std"]),
        class_names=tuple(str(v) for v in data["class_names"]),
        model_file=str(data["model_file"]),
        format=str(data.get("format", "onnx")),
        exporter=str(data.get("exporter", "unknown")),
        resize_size=int(data.get("resize_size") or default_resize_size(input_size)),
        opset=data.get("opset"),
        input_name=str(data.get("input_name", "input")),
        output_name=str(data.get("output_name", "logits")),
        metrics={str(k): float(v) for k, v in (data.get("metrics") or {}).items()},
        versions={str(k): str(v) for k, v in (data.get("versions") or {}).items()},
        created=str(data.get("created", "")),
    )


def load_card(export_dir: str | Path) -> ModelCard:
    """Read ``card.json`` from an export folder written by ``export_model``.

    Args:
        export_dir: Folder holding ``card.json`` and the model file.
    """
    path = Path(export_dir) / CARD_FILE
    if not path.is_file():
        raise ValueError(f"no {CARD_FILE} in {export_dir}; export a model there with export_model")
    return card_from_dict(json.loads(path.read_text(encoding="utf-8")))
