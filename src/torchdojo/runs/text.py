"""What every text-classification recipe shares: data, dict-batch steps, and the finish.

A text recipe (``text-classifier``, ``bert-finetune``) loads its split with
:func:`load_splits`, returns a :class:`TextSetup` (a :class:`Setup` that also carries the
:class:`~torchdojo.utils.textcodec.TextCodec` and the test sentences), trains with
``ctx.fit(task, step=text_step, eval_step=text_eval_step)``, and ends with
:func:`finish_text_classifier`: model + codec saved for ``predict``/``export``/``serve``, the
confusion matrix, and the book's attention colouring of test sentences (seed 003 ch7-8).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, cast

import numpy as np
import torch
from torch import Tensor, nn

from torchdojo.data.text import TextLoader, TextSplits, load_text_dataset
from torchdojo.engine import EvalOutput, History, StepOutput, Trainer
from torchdojo.runs.classify import classifier_metrics, most_confused_figure
from torchdojo.runs.context import RunContext
from torchdojo.runs.contract import ConfigError, Setup
from torchdojo.utils.textcodec import TextCodec

if TYPE_CHECKING:
    from torchdojo.viz.attention import AttentionExample

CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff]")  # kana and CJK ideographs
SPECIAL_TOKENS = frozenset({"[CLS]", "[SEP]", "[PAD]"})  # not shown in the colouring


@dataclass
class TextSetup(Setup):
    """A :class:`Setup` plus what turns text into ids and the test sentences, in order."""

    codec: TextCodec | None = None
    test_texts: list[str] = field(default_factory=list)


def load_splits(
    ctx: RunContext,
    dataset: str,
    *,
    text_column: str | None,
    label_column: str | None,
    seed: int,
) -> TextSplits:
    """The run's train/test texts; a data error becomes a one-line ``ConfigError``.

    The recipes' floors were measured on ``uci``: other data (chABSA, your own) are noted as
    such, so their metrics are not checked against those floors.
    """
    try:
        splits = load_text_dataset(
            dataset, ctx.data_dir, text_column=text_column, label_column=label_column, seed=seed
        )
    except ValueError as err:
        raise ConfigError(f"dataset={dataset!r}: {err}") from None
    reason = "" if dataset == "uci" else f"dataset={dataset}: the floors are for uci"
    ctx.note_data(splits.source, reference=not reason, reason=reason)
    return splits


def mostly_cjk(texts: list[str]) -> bool:
    """True when most texts hold kana or CJK ideographs (Japanese, Chinese)."""
    return sum(bool(CJK.search(t)) for t in texts) > len(texts) / 2


def text_step(trainer: Trainer, batch: dict[str, Tensor]) -> StepOutput:
    """One optimizer step on a dict batch: ``model(input_ids, attention_mask)`` vs ``labels``."""
    assert trainer.loss_fn is not None
    with trainer.autocast():
        logits = trainer.model(batch["input_ids"], batch["attention_mask"])  # (B, C)
        loss = trainer.loss_fn(logits.float(), batch["labels"])
    trainer.backward(loss)
    trainer.step_optimizer()
    return StepOutput(loss=loss.detach(), batch_size=len(batch["labels"]))


def text_eval_step(trainer: Trainer, batch: dict[str, Tensor]) -> EvalOutput:
    """Loss and logits of one dict batch."""
    logits = trainer.model(batch["input_ids"], batch["attention_mask"]).float()  # (B, C)
    labels = batch["labels"]
    loss = trainer.loss_fn(logits, labels) if trainer.loss_fn is not None else None
    return EvalOutput(loss=loss, preds=logits, target=labels, batch_size=len(labels))


@torch.inference_mode()
def predict_texts(model: nn.Module, loader: TextLoader) -> tuple[Tensor, Tensor]:
    """Logits ``(N, C)`` and labels ``(N,)`` of an unshuffled loader, in the texts' order
    (the loader batches by length, so its batches come in another order)."""
    model.eval()
    device = next(model.parameters()).device
    order = [i for batch in loader.sampler.batches() for i in batch]
    parts = [
        model(b["input_ids"].to(device), b["attention_mask"].to(device)).float().cpu()
        for b in loader
    ]
    logits = torch.empty(len(order), parts[0].shape[1])
    logits[torch.as_tensor(order)] = torch.cat(parts)
    return logits, torch.as_tensor(loader.labels)


def pick_examples(preds: Tensor, targets: Tensor, n: int) -> list[int]:
    """Up to ``n`` test indices spread over the set: half mistakes (if any), half right."""
    wrong = torch.nonzero(preds != targets).flatten().tolist()
    right = torch.nonzero(preds == targets).flatten().tolist()
    n_wrong = min(len(wrong), n // 2)
    return sorted(_spread(wrong, n_wrong) + _spread(right, n - n_wrong))


def _spread(items: list[int], n: int) -> list[int]:
    if n <= 0 or not items:
        return []
    at = np.unique(np.linspace(0, len(items) - 1, min(n, len(items))).round().astype(int))
    return [items[i] for i in at]


@torch.inference_mode()
def attention_examples(
    model: nn.Module, codec: TextCodec, texts: list[str], classes: list[str], targets: list[int]
) -> list[AttentionExample]:
    """One :class:`~torchdojo.viz.AttentionExample` per text: its tokens without [CLS]/[SEP],
    coloured by ``model.token_attention`` rescaled to sum to 1 over what is shown."""
    from torchdojo.viz.attention import AttentionExample

    model.eval()
    device = next(model.parameters()).device
    attend = cast(Callable[[Tensor, Tensor], Tensor], model.token_attention)
    examples: list[AttentionExample] = []
    for text, target in zip(texts, targets, strict=True):
        encoded = codec.encode([text])
        ids, mask = (
            torch.from_numpy(encoded[k]).to(device) for k in ("input_ids", "attention_mask")
        )
        probs = model(ids, mask).softmax(1)[0].float().cpu()  # (C,)
        weights = attend(ids, mask)[0].float().cpu()  # (T,), sums to 1 over real tokens
        tokens = codec.tokens(text)
        keep = [i for i, t in enumerate(tokens) if t not in SPECIAL_TOKENS]
        shown = weights[keep] / weights[keep].sum().clamp_min(1e-12)
        label = int(probs.argmax())
        examples.append(
            AttentionExample(
                tokens=[tokens[i] for i in keep],
                weights=shown.tolist(),
                label=classes[label],
                prob=float(probs[label]),
                true_label=classes[target],
            )
        )
    return examples


def report_attention(
    ctx: RunContext,
    model: nn.Module,
    codec: TextCodec,
    texts: list[str],
    classes: list[str],
    targets: list[int],
    *,
    note: str,
) -> None:
    """The attention colouring of ``texts``: a report.html section, attention.html, and a PNG
    (English only: matplotlib's default font has no CJK glyphs)."""
    from torchdojo.utils.io import atomic_write_text
    from torchdojo.viz.attention import attention_figure, attention_page, attention_section

    examples = attention_examples(model, codec, texts, classes, targets)
    ctx.add_section("Attention on test sentences", attention_section(examples, note=note))
    atomic_write_text(ctx.run_dir / "attention.html", attention_page(examples, title="Attention"))
    if not any(CJK.search(text) for text in texts):
        ctx.save_figure(attention_figure(examples), "attention")


def finish_text_classifier(
    ctx: RunContext,
    task: TextSetup,
    history: History,
    *,
    attention: int = 8,
    note: str = "Each token's background: how much the classifier attends to it (last layer, "
    "mean over heads), rescaled over the tokens shown; the strongest token is fully red.",
) -> dict[str, float]:
    """Save model + codec, the confusion matrix and most-confused pairs, colour ``attention``
    test sentences (models with ``token_attention``), and return the run's metrics with
    ``samples_per_s``."""
    from torchdojo.viz import confusion_matrix_figure

    model = getattr(task.model, "module", task.model)  # DDP wraps it
    assert task.spec is not None and task.codec is not None
    assert isinstance(task.loaders.train, TextLoader) and isinstance(task.loaders.val, TextLoader)
    ctx.save_model(model, task.spec)
    task.codec.save(ctx.run_dir)
    logits, targets = predict_texts(model, task.loaders.val)
    preds = logits.argmax(1)
    ctx.save_figure(confusion_matrix_figure(targets, preds, task.classes), "confusion_matrix")
    ctx.save_figure(most_confused_figure(targets, preds, task.classes), "most_confused")
    if attention and hasattr(model, "token_attention"):
        picks = pick_examples(preds, targets, attention)
        texts = [task.test_texts[i] for i in picks]
        labels = [int(targets[i]) for i in picks]
        report_attention(ctx, model, task.codec, texts, task.classes, labels, note=note)
    metrics = classifier_metrics(history)
    seen = len(task.loaders.train.labels) * len(history.records)
    metrics["samples_per_s"] = seen / max(metrics["train_time"], 1e-9)
    return metrics
