"""The model card: a JSON sidecar that says how to feed an exported model and what it predicts.

An export folder holds ``model.onnx`` (or ``model.pt2``), ``card.json`` and ``parity.json``.
A text classifier's folder also holds its tokenizer (``tokenizer.json`` + ``textcodec.json``):
tokenization runs in Python, and its ``TextModelCard`` (``"task": "text-classification"``) says
so. This module needs no torch, so the server can read a card with ONNX Runtime and numpy only.
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
    if data.get("task") == TEXT_TASK:
        raise ValueError(
            "card.json describes a text-classification export; load it with load_text_card "
            "or TextOnnxPredictor"
        )
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


# ---------------------------------------------------------------------------------------------
# Text classifiers: token ids in, logits (and per-token attention) out; tokenization in Python

TEXT_TASK = "text-classification"
TEXT_INPUTS = ("input_ids", "attention_mask")
TEXT_PREPROCESSING = (
    "Python, not the graph: TextCodec.load(export_dir).encode(texts) from torchdojo.utils.textcodec "
    "reads tokenizer.json + textcodec.json and returns int64 input_ids and attention_mask of shape "
    "(B, T), padded to the longest text of the batch and truncated to max_length"
)
TEXT_POSTPROCESSING = (
    "Python, not the graph: the graph returns raw logits (B, C); softmax and ranking run in "
    "torchdojo.export.text_predictor (numpy). 'attention' (B, T), when present, is the "
    "classifier's weight on each token (rows sum to 1 over real tokens, 0 on padding)"
)


@dataclass(frozen=True)
class TextModelCard:
    """``card.json`` of an exported text classifier: how to tokenize, what the graph returns.

    Args:
        class_names: Label of each output index.
        model_file: File name of the model inside the export folder.
        format: ``"onnx"``.
        exporter: Which exporter wrote the file (``"dynamo"`` or ``"torchscript"``).
        max_length: Longest encoding the tokenizer keeps (special tokens included).
        pretokenize: ``None``, or ``"janome"`` when Japanese text is split into morphemes first.
        tokenizer_files: The tokenizer files copied into the export folder.
        opset: ONNX opset of the graph.
        input_names: Graph inputs, both int64 ``(B, T)`` with dynamic batch and sequence axes.
        output_names: ``logits`` ``(B, C)``, and ``attention`` ``(B, T)`` when the model has it.
        preprocessing: Where and how texts become ids (in Python, with the saved tokenizer).
        postprocessing: Where and how logits become labels.
        notes: How the graph differs from the trained module, if it does (e.g. a packed LSTM
            exported as its unpacked equivalent).
        metrics: Measured metrics of the model.
        versions: Versions of torch, onnx, onnxruntime and tokenizers at export time.
        created: ISO-8601 UTC time of the export.
        task: Always ``"text-classification"``; tells a reader which card this is.
    """

    class_names: tuple[str, ...]
    model_file: str
    format: str
    exporter: str
    max_length: int
    pretokenize: str | None = None
    tokenizer_files: tuple[str, ...] = ("tokenizer.json", "textcodec.json")
    opset: int | None = None
    input_names: tuple[str, ...] = TEXT_INPUTS
    output_names: tuple[str, ...] = ("logits",)
    preprocessing: str = TEXT_PREPROCESSING
    postprocessing: str = TEXT_POSTPROCESSING
    notes: tuple[str, ...] = ()
    metrics: dict[str, float] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    created: str = ""
    task: str = TEXT_TASK

    @property
    def num_classes(self) -> int:
        """Number of output classes."""
        return len(self.class_names)

    @property
    def has_attention(self) -> bool:
        """Whether the graph also returns per-token ``attention``."""
        return "attention" in self.output_names

    def to_dict(self) -> dict[str, Any]:
        """The card as plain JSON-ready values."""
        return asdict(self)


def card_task(export_dir: str | Path) -> str:
    """The task of the export in ``export_dir``: ``"classification"`` (images) or a text task."""
    path = Path(export_dir) / CARD_FILE
    if not path.is_file():
        raise ValueError(
            f"no {CARD_FILE} in {export_dir}; export a run there: torchdojo export RUN"
        )
    return str(json.loads(path.read_text(encoding="utf-8")).get("task", "classification"))


def load_text_card(export_dir: str | Path) -> TextModelCard:
    """Read the ``card.json`` of a text export written by ``export_text_model``.

    Args:
        export_dir: Folder holding ``card.json``, the model file and the tokenizer files.
    """
    path = Path(export_dir) / CARD_FILE
    if not path.is_file():
        raise ValueError(
            f"no {CARD_FILE} in {export_dir}; export a run there: torchdojo export RUN"
        )
    data = json.loads(path.read_text(encoding="utf-8"))
    if data.get("task") != TEXT_TASK:
        raise ValueError(f"{path} is not a {TEXT_TASK} card; load it with load_card")
    missing = {"class_names", "model_file", "max_length"} - data.keys()
    if missing:
        raise ValueError(f"{path} lacks {sorted(missing)}; re-export the run: torchdojo export RUN")
    return TextModelCard(
        class_names=tuple(str(v) for v in data["class_names"]),
        model_file=str(data["model_file"]),
        format=str(data.get("format", "onnx")),
        exporter=str(data.get("exporter", "unknown")),
        max_length=int(data["max_length"]),
        pretokenize=data.get("pretokenize"),
        tokenizer_files=tuple(str(v) for v in data.get("tokenizer_files", ())),
        opset=data.get("opset"),
        input_names=tuple(str(v) for v in data.get("input_names", TEXT_INPUTS)),
        output_names=tuple(str(v) for v in data.get("output_names", ("logits",))),
        preprocessing=str(data.get("preprocessing", TEXT_PREPROCESSING)),
        postprocessing=str(data.get("postprocessing", TEXT_POSTPROCESSING)),
        notes=tuple(str(v) for v in data.get("notes", ())),
        metrics={str(k): float(v) for k, v in (data.get("metrics") or {}).items()},
        versions={str(k): str(v) for k, v in (data.get("versions") or {}).items()},
        created=str(data.get("created", "")),
    )
