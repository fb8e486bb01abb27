"""Run an exported text classifier with ONNX Runtime: sentences in, label, probabilities and
per-token attention out (no torch).

Tokenization stays in Python: the export folder holds the run's ``tokenizer.json`` and
``textcodec.json``, and :class:`TextOnnxPredictor` encodes with
``torchdojo.utils.textcodec.TextCodec`` before the graph runs. :func:`describe_texts` turns
logits and attention into :class:`TextPrediction`s; ``torchdojo predict`` uses the same function
on the PyTorch model, so local and served answers have one shape. Used by ``torchdojo.serve``
and by ``export_text_model``'s parity check.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from torchdojo.export.card import TextModelCard, load_text_card
from torchdojo.export.predictor import session_options, softmax
from torchdojo.utils.textcodec import TextCodec


@dataclass(frozen=True)
class TextPrediction:
    """The answer for one text: the best label, every class's probability, and the tokens.

    Args:
        text: The input text.
        label: The most probable class.
        probability: Its probability.
        probs: Probability of every class, in the model's class order.
        tokens: The tokens as the model saw them (after truncation).
        attention: The classifier's weight on each token (sums to 1), or ``None`` when the
            model has no ``token_attention``.
    """

    text: str
    label: str
    probability: float
    probs: dict[str, float]
    tokens: list[str]
    attention: list[float] | None


def describe_texts(
    texts: Sequence[str],
    codec: TextCodec,
    logits: np.ndarray,
    attention: np.ndarray | None,
    class_names: Sequence[str],
) -> list[TextPrediction]:
    """Pair each text with its label, probabilities, tokens and attention weights.

    Args:
        texts: The texts, in batch order.
        codec: The codec that encoded them (gives the tokens to show).
        logits: ``(B, C)`` raw model outputs.
        attention: ``(B, T)`` per-token weights, 0 on padding, or ``None``.
        class_names: Label of each output index.
    """
    probs = softmax(np.asarray(logits, dtype=np.float32))  # (B, C)
    predictions = []
    for i, text in enumerate(texts):
        best = int(np.argmax(probs[i]))
        tokens = codec.tokens(text)
        weights = None
        if attention is not None:
            weights = [round(float(w), 6) for w in attention[i, : len(tokens)]]
        predictions.append(
            TextPrediction(
                text=text,
                label=str(class_names[best]),
                probability=round(float(probs[i, best]), 6),
                probs={
                    str(c): round(float(p), 6) for c, p in zip(class_names, probs[i], strict=True)
                },
                tokens=tokens,
                attention=weights,
            )
        )
    return predictions


class TextOnnxPredictor:
    """Classify texts with the ``model.onnx`` and tokenizer of a text export folder.

    Args:
        export_dir: Folder written by ``export_text_model`` (``torchdojo export`` of a text run).
        threads: Intra-op threads of the session; ``None`` for ONNX Runtime's default.
        allow_spinning: Let idle ONNX Runtime threads busy-wait (faster alone, worse when shared).
    """

    def __init__(
        self, export_dir: str | Path, *, threads: int | None = None, allow_spinning: bool = False
    ) -> None:
        self.export_dir = Path(export_dir)
        self.card: TextModelCard = load_text_card(self.export_dir)
        self.codec = TextCodec.load(self.export_dir)
        options = session_options(threads=threads, allow_spinning=allow_spinning)
        model_path = str(self.export_dir / self.card.model_file)
        self.session = ort.InferenceSession(model_path, options, providers=["CPUExecutionProvider"])

    def run(
        self, input_ids: np.ndarray, attention_mask: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Logits ``(B, C)`` and attention ``(B, T)`` (or ``None``) for encoded ids and mask."""
        feeds = {
            "input_ids": np.ascontiguousarray(input_ids, dtype=np.int64),  # (B, T)
            "attention_mask": np.ascontiguousarray(attention_mask, dtype=np.int64),  # (B, T)
        }
        outputs = self.session.run(list(self.card.output_names), feeds)
        logits = np.asarray(outputs[0], dtype=np.float32)  # (B, C)
        attention = np.asarray(outputs[1], dtype=np.float32) if len(outputs) > 1 else None
        return logits, attention

    def predict(self, texts: Sequence[str]) -> list[TextPrediction]:
        """Label, probabilities, tokens and attention of each text."""
        if isinstance(texts, str):
            raise TypeError("predict takes a list of texts; wrap one text as [text]")
        if not texts:
            return []
        batch = self.codec.encode(texts)
        logits, attention = self.run(batch["input_ids"], batch["attention_mask"])
        return describe_texts(texts, self.codec, logits, attention, self.card.class_names)
