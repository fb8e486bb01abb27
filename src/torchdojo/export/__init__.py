"""Layer 2: export to ONNX / ``torch.export`` with a model card and a parity check.

``export_model`` needs torch and is imported lazily; the card, preprocessing and
``OnnxPredictor`` need only numpy, Pillow and ONNX Runtime, so ``torchdojo.serve`` can use them
without importing torch. ``TextOnnxPredictor`` adds the ``tokenizers`` library (the text extra)
and is imported lazily too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from torchdojo.export.card import ModelCard, TextModelCard, card_task, load_card, load_text_card
from torchdojo.export.predictor import OnnxPredictor, Prediction
from torchdojo.export.preprocess import decode_image, preprocess_image

if TYPE_CHECKING:
    from torchdojo.export.exporter import ExportResult, ParityReport, check_parity, export_model
    from torchdojo.export.text_exporter import (
        TextExportResult,
        TextParityReport,
        export_text_model,
    )
    from torchdojo.export.text_predictor import TextOnnxPredictor, TextPrediction

_TORCH_NAMES = ("ExportResult", "ParityReport", "check_parity", "export_model")
_TEXT_TORCH_NAMES = ("TextExportResult", "TextParityReport", "export_text_model")
_TEXT_NAMES = ("TextOnnxPredictor", "TextPrediction")  # need the text extra (tokenizers)

__all__ = [
    "ExportResult",
    "ModelCard",
    "OnnxPredictor",
    "ParityReport",
    "Prediction",
    "TextExportResult",
    "TextModelCard",
    "TextOnnxPredictor",
    "TextParityReport",
    "TextPrediction",
    "card_task",
    "check_parity",
    "decode_image",
    "export_model",
    "export_text_model",
    "load_card",
    "load_text_card",
    "preprocess_image",
]


def __getattr__(name: str) -> Any:
    """Import the torch-based exporter only when one of its names is asked for."""
    if name in _TORCH_NAMES:
        from torchdojo.export import exporter

        return getattr(exporter, name)
    if name in _TEXT_TORCH_NAMES:
        from torchdojo.export import text_exporter

        return getattr(text_exporter, name)
    if name in _TEXT_NAMES:
        from torchdojo.export import text_predictor

        return getattr(text_predictor, name)
    raise AttributeError(f"module 'torchdojo.export' has no attribute {name!r}")
