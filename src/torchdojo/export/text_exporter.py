"""Export a trained text classifier to ONNX with its tokenizer, a card and a parity report.

The graph takes ``input_ids`` and ``attention_mask`` (int64, dynamic batch and sequence axes)
and returns ``logits`` ``(B, C)``, plus ``attention`` ``(B, T)`` when the model defines
``token_attention``. Tokenization stays in Python: the codec files (``tokenizer.json``,
``textcodec.json``) are copied beside ``model.onnx`` and the card says where pre- and
post-processing run. The parity report runs real sentences of varied length through ONNX
Runtime and eager PyTorch, one at a time and as one padded batch. Like the image exporter, the
dynamo exporter goes first and the TorchScript one is the fallback.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import cast

import numpy as np
import onnx
import torch
from torch import Tensor, nn

from torchdojo.export.card import CARD_FILE, ONNX_FILE, PARITY_FILE, TEXT_INPUTS, TextModelCard
from torchdojo.export.exporter import (
    DEFAULT_OPSET,
    Exporter,
    GraphSignature,
    _graph_opset,
    _versions,
    write_onnx,
)
from torchdojo.export.predictor import softmax
from torchdojo.export.recurrent import UnpackedRecurrent, is_packed_recurrent, loops_in_python
from torchdojo.export.text_predictor import TextOnnxPredictor
from torchdojo.utils.io import atomic_write_json
from torchdojo.utils.textcodec import CODEC_FILE, TOKENIZER_FILE, TextCodec

logger = logging.getLogger(__name__)

# Sentences for the parity check when the caller has none: lengths 1 to 12 words.
FALLBACK_TEXTS = (
    "good",
    "not bad at all",
    "the battery died after two days",
    "I loved every minute of this film and would watch it again",
    "terrible",
    "the service was slow but the food made up for it",
)


@dataclass(frozen=True)
class TextParityReport:
    """ONNX Runtime against eager PyTorch on real sentences of varied length.

    Args:
        texts: How many sentences were compared.
        batch_sizes: Batch sizes run: each sentence alone (1), then all of them padded together.
        seq_lengths: Distinct sequence lengths ``T`` the graph ran with (proves a dynamic axis).
        max_abs_diff_logits: Largest absolute difference of logits.
        max_abs_diff_probs: Largest absolute difference of softmax probabilities.
        max_abs_diff_attention: Largest absolute difference of the attention output, or ``None``.
        top1_agreement: Fraction of sentences whose label agrees.
        atol_logits: Tolerance on logits.
        atol_probs: Tolerance on probabilities (and on attention weights).
        passed: All differences within tolerance and every label agrees.
    """

    texts: int
    batch_sizes: tuple[int, ...]
    seq_lengths: tuple[int, ...]
    max_abs_diff_logits: float
    max_abs_diff_probs: float
    max_abs_diff_attention: float | None
    top1_agreement: float
    atol_logits: float
    atol_probs: float
    passed: bool


@dataclass(frozen=True)
class TextExportResult:
    """What ``export_text_model`` wrote."""

    out_dir: Path
    model_path: Path
    card: TextModelCard
    parity: TextParityReport


class WithAttention(nn.Module):
    """``(input_ids, attention_mask) -> (logits, attention)`` for a model with token attention."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> tuple[Tensor, Tensor]:
        logits = self.model(input_ids, attention_mask)  # (B, C)
        token_attention = cast(Callable[[Tensor, Tensor], Tensor], self.model.token_attention)
        return logits, token_attention(input_ids, attention_mask)  # (B, C), (B, T)


def export_text_model(
    model: nn.Module,
    *,
    out_dir: str | Path,
    codec: TextCodec,
    class_names: Sequence[str],
    parity_texts: Sequence[str] | None = None,
    metrics: dict[str, float] | None = None,
    exporter: Exporter = "auto",
    opset: int = DEFAULT_OPSET,
    atol_probs: float = 1e-4,
) -> TextExportResult:
    """Export a text classifier to ``out_dir/model.onnx`` with its tokenizer, card and parity.

    Args:
        model: Maps int64 ``input_ids`` and ``attention_mask`` ``(B, T)`` to logits ``(B, C)``;
            its ``token_attention(input_ids, attention_mask)``, if any, becomes a second output.
        out_dir: Folder for ``model.onnx``, ``card.json``, ``parity.json`` and the codec files.
        codec: The run's tokenizer; it is saved into ``out_dir``.
        class_names: Label of each output index.
        parity_texts: Real sentences for the parity check (varied lengths); a fixed English
            set when ``None``.
        metrics: Measured metrics to record in the card.
        exporter: ``"auto"`` tries dynamo then TorchScript; or force one of them.
        opset: ONNX opset to ask for.
        atol_probs: Tolerance on probabilities and attention; logits get ``100 * atol_probs``.

    Raises:
        ValueError: No classes, an export blocker (the message says the fix), or an exported
            model that disagrees with PyTorch.
    """
    if not class_names:
        raise ValueError("class_names is empty; pass the label of each output index")
    texts = [t for t in (parity_texts or FALLBACK_TEXTS) if t.strip()] or list(FALLBACK_TEXTS)
    eager = copy.deepcopy(model).cpu().eval()
    reference, graph_model, notes = _graph_of(eager)
    outputs = ("logits", "attention") if isinstance(reference, WithAttention) else ("logits",)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model_path = out / ONNX_FILE
    used, graph = write_onnx(
        graph_model, _example(codec, texts), model_path, exporter, opset, _signature(outputs, codec)
    )
    _check_dynamic_axes(graph, model=graph_model)
    graph_opset = _graph_opset(graph)
    codec.save(out)
    card = TextModelCard(
        class_names=tuple(str(c) for c in class_names),
        model_file=model_path.name,
        format="onnx",
        exporter=used,
        max_length=codec.max_length,
        pretokenize=codec.pretokenize,
        tokenizer_files=(TOKENIZER_FILE, CODEC_FILE),
        opset=graph_opset,
        output_names=outputs,
        notes=notes,
        metrics={k: float(v) for k, v in (metrics or {}).items()},
        versions={**_versions(), "tokenizers": _version("tokenizers")},
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )
    atomic_write_json(out / CARD_FILE, card.to_dict())
    parity = check_text_parity(reference, out, texts, atol_probs=atol_probs)
    atomic_write_json(out / PARITY_FILE, asdict(parity))
    if not parity.passed:
        raise ValueError(
            f"exported model disagrees with PyTorch (see {out / PARITY_FILE}): max |dlogits|="
            f"{parity.max_abs_diff_logits:.2e}, label agreement={parity.top1_agreement:.3f}; "
            "check for ops that depend on the padded length or behave differently in eval mode"
        )
    logger.info("exported %s with %s to %s", type(model).__name__, used, model_path)
    return TextExportResult(out_dir=out, model_path=model_path, card=card, parity=parity)


def _graph_of(eager: nn.Module) -> tuple[nn.Module, nn.Module, tuple[str, ...]]:
    """The eager reference for parity, the module to export, and notes for the card."""
    name = type(eager).__name__
    if loops_in_python(eager):
        raise ValueError(
            f"cannot export {name}: its hand-written RNN loops over time in Python, so the graph "
            "would fix the sentence length; export a text-lstm or text-gru run instead"
        )
    if is_packed_recurrent(eager):
        note = (
            f"{name} packs its padded batch (pack_padded_sequence), which does not export; the "
            "graph is its unpacked equivalent (torchdojo.export.recurrent.UnpackedRecurrent: the "
            "same weights, each row read up to its length), checked against the packed model"
        )
        return eager, UnpackedRecurrent(eager).eval(), (note,)
    if hasattr(eager, "token_attention"):
        wrapped = WithAttention(eager).eval()
        return wrapped, wrapped, ()
    return eager, eager, ()


def _example(codec: TextCodec, texts: Sequence[str]) -> tuple[Tensor, Tensor]:
    """Two texts padded to at least 3 tokens: batch 2 and length T >= 3 stay symbolic."""
    batch = codec.encode(list(texts[:2]) if len(texts) >= 2 else [texts[0], texts[0]])
    ids, mask = torch.from_numpy(batch["input_ids"]), torch.from_numpy(batch["attention_mask"])
    short = 3 - ids.shape[1]
    if short > 0 and codec.max_length >= 3:  # T=1 or 2 would be specialized as a constant
        ids = torch.nn.functional.pad(ids, (0, short), value=codec.pad_id)
        mask = torch.nn.functional.pad(mask, (0, short), value=0)
    return ids, mask  # each (2, T)


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "absent"


# ---------------------------------------------------------------------------------------------
# Writing the graph


def _signature(outputs: tuple[str, ...], codec: TextCodec) -> GraphSignature:
    """ids and mask ``(batch, seq)`` in; ``logits (batch, C)`` and ``attention (batch, seq)`` out."""
    both = ((0, "batch"), (1, "seq"))
    axes = dict.fromkeys(TEXT_INPUTS, both) | {"logits": ((0, "batch"),), "attention": both}
    return GraphSignature(
        inputs=tuple(TEXT_INPUTS),
        outputs=outputs,
        axes=tuple((name, axes[name]) for name in (*TEXT_INPUTS, *outputs)),
        max_sizes=(("seq", max(codec.max_length, 3)),),
    )


def _check_dynamic_axes(graph: onnx.ModelProto, *, model: nn.Module) -> None:
    for value in graph.graph.input:
        dims = value.type.tensor_type.shape.dim  # (B, T)
        fixed = [("batch", "sequence")[i] for i, dim in enumerate(dims[:2]) if not dim.dim_param]
        if fixed:
            raise ValueError(
                f"the exported {type(model).__name__} has a fixed {' and '.join(fixed)} size for "
                f"{value.name}: the forward pass bakes a shape in, e.g. x.view(2, 16, -1); use "
                "x.shape[0] and x.shape[1] (or -1) instead"
            )


# ---------------------------------------------------------------------------------------------
# Parity


def check_text_parity(
    model: nn.Module, export_dir: Path, texts: Sequence[str], *, atol_probs: float
) -> TextParityReport:
    """Compare ONNX Runtime with eager ``model`` on each text alone and on all texts padded.

    Args:
        model: The eager model (or :class:`WithAttention` around it), in eval mode.
        export_dir: Folder holding ``model.onnx``, its card and the codec files.
        texts: Real sentences, ideally of different lengths.
        atol_probs: Tolerance on probabilities and attention; logits get ``100 * atol_probs``.
    """
    predictor = TextOnnxPredictor(export_dir, threads=1)
    batches = [[t] for t in texts] + ([list(texts)] if len(texts) > 1 else [])
    d_logits, d_probs, d_attention, agree, lengths = [], [], [], [], set()
    for batch in batches:
        encoded = predictor.codec.encode(batch)
        ids, mask = encoded["input_ids"], encoded["attention_mask"]  # each (B, T)
        lengths.add(int(ids.shape[1]))
        with torch.inference_mode():
            out = model(torch.from_numpy(ids), torch.from_numpy(mask))
        expected = out if isinstance(out, tuple) else (out,)
        got_logits, got_attention = predictor.run(ids, mask)
        want_logits = expected[0].float().numpy()  # (B, C)
        d_logits.append(float(np.abs(got_logits - want_logits).max()))
        d_probs.append(float(np.abs(softmax(got_logits) - softmax(want_logits)).max()))
        agree.append(got_logits.argmax(axis=1) == want_logits.argmax(axis=1))
        if got_attention is not None and len(expected) > 1:
            d_attention.append(float(np.abs(got_attention - expected[1].float().numpy()).max()))
    agreement = float(np.concatenate(agree[: len(texts)]).mean())
    atol_logits = 100 * atol_probs
    max_attention = max(d_attention) if d_attention else None
    passed = (
        max(d_probs) <= atol_probs
        and max(d_logits) <= atol_logits
        and (max_attention is None or max_attention <= atol_probs)
        and bool(np.concatenate(agree).all())
    )
    return TextParityReport(
        texts=len(texts),
        batch_sizes=tuple(sorted({len(b) for b in batches})),
        seq_lengths=tuple(sorted(lengths)),
        max_abs_diff_logits=max(d_logits),
        max_abs_diff_probs=max(d_probs),
        max_abs_diff_attention=max_attention,
        top1_agreement=agreement,
        atol_logits=atol_logits,
        atol_probs=atol_probs,
        passed=passed,
    )
