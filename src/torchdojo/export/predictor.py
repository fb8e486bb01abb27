"""Run an exported ONNX model with ONNX Runtime: batches in, probabilities out (no torch).

Used by the server (``torchdojo.serve``) and by ``export_model``'s parity check.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image

from torchdojo.export.card import ModelCard, load_card
from torchdojo.export.preprocess import preprocess_image


@dataclass(frozen=True)
class Prediction:
    """One ranked class of a prediction."""

    label: str
    index: int
    probability: float


def softmax(logits: np.ndarray) -> np.ndarray:
    """Numerically stable softmax over the last axis."""
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return np.asarray(exp / exp.sum(axis=-1, keepdims=True), dtype=np.float32)


def session_options(
    *, threads: int | None = None, allow_spinning: bool = False
) -> ort.SessionOptions:
    """ONNX Runtime options for CPU inference.

    Spinning is off by default: measured here, spinning ORT threads next to torch code raised
    eager p90 latency from 21 to 34 ms (see docs on CPU performance).

    Args:
        threads: Intra-op threads; ``None`` lets ONNX Runtime use one per physical core.
        allow_spinning: Let idle worker threads busy-wait for the next op.
    """
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.inter_op_num_threads = 1
    if threads is not None:
        options.intra_op_num_threads = threads
    options.add_session_config_entry(
        "session.intra_op.allow_spinning", "1" if allow_spinning else "0"
    )
    return options


class OnnxPredictor:
    """Predict with the ``model.onnx`` of an export folder, preprocessing as its card says.

    Args:
        export_dir: Folder written by ``export_model(..., format="onnx")``.
        threads: Intra-op threads of the session; ``None`` for ONNX Runtime's default.
        allow_spinning: Let idle ONNX Runtime threads busy-wait (faster alone, worse when shared).
    """

    def __init__(
        self, export_dir: str | Path, *, threads: int | None = None, allow_spinning: bool = False
    ) -> None:
        self.export_dir = Path(export_dir)
        self.card: ModelCard = load_card(self.export_dir)
        if self.card.format != "onnx":
            raise ValueError(
                f"{export_dir} holds a {self.card.format!r} export; OnnxPredictor needs "
                'export_model(..., format="onnx")'
            )
        options = session_options(threads=threads, allow_spinning=allow_spinning)
        model_path = str(self.export_dir / self.card.model_file)
        self.session = ort.InferenceSession(model_path, options, providers=["CPUExecutionProvider"])

    def logits(self, batch_nchw: np.ndarray) -> np.ndarray:
        """Raw model outputs for a preprocessed batch of shape ``(B, C, H, W)``."""
        x = np.ascontiguousarray(batch_nchw, dtype=np.float32)
        if x.ndim != 4 or tuple(x.shape[1:]) != self.card.input_size:  # (B, C, H, W)
            raise ValueError(
                f"expected a batch of shape (B, {', '.join(map(str, self.card.input_size))}), "
                f"got {tuple(x.shape)}; preprocess images with preprocess_image"
            )
        (logits,) = self.session.run([self.card.output_name], {self.card.input_name: x})
        return np.asarray(logits, dtype=np.float32)  # (B, num_classes)

    def predict(self, batch_nchw: np.ndarray) -> np.ndarray:
        """Class probabilities ``(B, num_classes)`` for a preprocessed batch ``(B, C, H, W)``."""
        return softmax(self.logits(batch_nchw))

    def topk(self, image: Image.Image | np.ndarray, k: int = 5) -> list[Prediction]:
        """The ``k`` most probable classes of one image, best first.

        Args:
            image: A Pillow image, or an already preprocessed ``(C, H, W)`` array.
            k: How many classes to return (capped at the number of classes).
        """
        x = preprocess_image(image, self.card) if isinstance(image, Image.Image) else image
        probs = self.predict(x[None])[0]  # (num_classes,)
        return rank(probs, self.card.class_names, k=k)


def rank(probs: np.ndarray, class_names: tuple[str, ...], *, k: int) -> list[Prediction]:
    """Turn one probability vector into its ``k`` best ``Prediction``s."""
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    order = np.argsort(-probs, kind="stable")[: min(k, len(probs))]
    return [Prediction(class_names[i], int(i), float(probs[i])) for i in order]
