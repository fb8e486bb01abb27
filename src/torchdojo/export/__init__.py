"""Layer 2: export to ONNX / ``torch.export`` with a model card and a parity check.

``export_model`` needs torch and is imported lazily; the card, preprocessing and
``OnnxPredictor`` need only numpy, Pillow and ONNX Runtime, so ``torchdojo.serve`` can use them
without importing torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from torchdojo.export.card import ModelCard, load_card
from torchdojo.export.predictor import OnnxPredictor, Prediction
from torchdojo.export.preprocess import decode_image, preprocess_image

if TYPE_CHECKING:
    from torchdojo.export.exporter import ExportResult, ParityReport, check_parity, export_model

_TORCH_NAMES = ("ExportResult", "ParityReport", "check_parity", "export_model")

__all__ = [
    "ExportResult",
    "ModelCard",
    "OnnxPredictor",
    "ParityReport",
    "Prediction",
    "check_parity",
    "decode_image",
    "export_model",
    "load_card",
    "preprocess_image",
]


def __getattr__(name: str) -> Any:
    """Import the torch-based exporter only when one of its names is asked for."""
    if name in _TORCH_NAMES:
        from torchdojo.export import exporter

        return getattr(exporter, name)
    raise AttributeError(f"module 'torchdojo.export' has no attribute {name!r}")
