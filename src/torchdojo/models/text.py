"""Text classifiers: bag of embeddings, RNN by hand, LSTM/GRU (packed) and a Transformer encoder.

Every model follows the text contract: ``forward(input_ids, attention_mask)`` takes int64
``(B, T)`` token ids and a ``(B, T)`` mask (1 = real token, 0 = padding, padding on the right)
and returns logits ``(B, num_classes)``; padding never changes the logits. Each keeps its
token embedding in ``self.embed`` so :func:`load_embeddings` can copy pretrained vectors
(GloVe, word2vec) into it. The Transformer also has ``token_attention``: how much its [CLS]
query attends to each token, what the HTML view colours.

The Transformer is seed 003 ch7's model (Vaswani et al., 2017,
https://arxiv.org/abs/1706.03762): token embedding, sinusoidal positions, encoder blocks with
the padding masked out of every attention row, the first token ([CLS]) classified.
Taught in lessons/15_rnn_lstm.py and lessons/16_attention_transformer.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence

from torchdojo.models.registry import register_model
from torchdojo.nn import (
    ElmanRNN,
    PostNormTransformerBlock,
    SinusoidalPositionalEncoding,
    TransformerBlock,
)


def padding_mask(input_ids: Tensor, attention_mask: Tensor | None, pad_id: int) -> Tensor:
    """The (B, T) bool mask of real tokens: ``attention_mask`` if given, else ``ids != pad_id``."""
    if attention_mask is None:
        return input_ids != pad_id
    return attention_mask.bool()


def lengths_of(mask: Tensor) -> Tensor:
    """Real tokens per row, at least 1 (an empty text still has one step), on the CPU."""
    return mask.sum(dim=1).clamp(min=1).cpu()


class BagOfEmbeddings(nn.Module):
    """Mean of the real tokens' embeddings, then a linear layer: the order-blind baseline.

    Taught in lessons/15_rnn_lstm.py.

    Args:
        vocab_size: Number of token ids.
        embed_dim: Width of each token embedding.
        num_classes: Number of output logits.
        pad_id: Id of the padding token (its embedding is zero and ignored).
        dropout: Dropout on the mean embedding.
    """

    def __init__(
        self,
        vocab_size: int,
        embed_dim: int,
        num_classes: int,
        *,
        pad_id: int = 0,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.pad_id = pad_id
        self.embed = nn.Embedding(vocab_size, embed_dim, padding_idx=pad_id)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(embed_dim, num_classes)

    def forward(self, input_ids: Tensor, attention_mask: Tensor | None = None) -> Tensor:
        mask = padding_mask(input_ids, attention_mask, self.pad_id)[..., None]  # (B, T, 1)
        x = self.embed(input_ids) * mask  # (B, T, E), padding rows zeroed
        x = x.sum(dim=1) / mask.sum(dim=1).clamp(min=1)  # (B, E): mean over real tokens
        return self.head(self.drop(x))  # (B, num_classes)


class RNNClassifier(nn.Module):
    """Embedding, the hand-written :class:`~torchdojo.nn.ElmanRNN`, final state, linear layer.

    The Python loop over time is slow but shows the recurrence; it matches ``nn.RNN`` with the
    same weights (tested). Taught in lessons/15_rnn_lstm.py.

    Args:
        vocab_size: Number of token ids.
        embed_dim: Width of each token embedding.
        hidden_size: Width of the hidden state.
        num_classes: Number of output logits.
        pad_id: Id of the padding token.
        dropout: Dropout on the embeddings and on the final state.
    """

    def __init__(
        self,
        vocab_size: int,
        embed_dim: int,
        hidden_size: int,
        num_classes: int,
        *,
        pad_id: int = 0,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.pad_id = pad_id
        self.embed = nn.Embedding(vocab_size, embed_dim, padding_idx=pad_id)
        self.drop = nn.Dropout(dropout)
        self.rnn = ElmanRNN(embed_dim, hidden_size)
        self.head = nn.Linear(hidden_size, num_classes)

    def forward(self, input_ids: Tensor, attention_mask: Tensor | None = None) -> Tensor:
        mask = padding_mask(input_ids, attention_mask, self.pad_id)  # (B, T)
        x = self.drop(self.embed(input_ids))  # (B, T, E)
        _, h = self.rnn(x, mask)  # (B, hidden): the state after each row's last real token
        return self.head(self.drop(h))  # (B, num_classes)


class RecurrentClassifier(nn.Module):
    """Embedding, a packed ``nn.LSTM`` or ``nn.GRU``, last layer's final state(s), linear layer.

    ``pack_padded_sequence`` makes the recurrence stop at each row's length, so padding never
    enters the state (and no compute is spent on it). Bidirectional: the forward state after
    the last token and the backward state after the first token are concatenated.
    Taught in lessons/15_rnn_lstm.py.

    Args:
        cell: ``"lstm"`` or ``"gru"``.
        vocab_size: Number of token ids.
        embed_dim: Width of each token embedding.
        hidden_size: Width of the hidden state (per direction).
        num_classes: Number of output logits.
        num_layers: Stacked recurrent layers.
        bidirectional: Also read each text right to left.
        pad_id: Id of the padding token.
        dropout: Dropout on the embeddings, between layers and on the final state.
    """

    def __init__(
        self,
        cell: str,
        vocab_size: int,
        embed_dim: int,
        hidden_size: int,
        num_classes: int,
        *,
        num_layers: int = 1,
        bidirectional: bool = False,
        pad_id: int = 0,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        cells: dict[str, type[nn.LSTM] | type[nn.GRU]] = {"lstm": nn.LSTM, "gru": nn.GRU}
        if cell not in cells:
            raise ValueError(f"cell={cell!r} is not one of {sorted(cells)}; pick one of those")
        self.pad_id = pad_id
        self.directions = 2 if bidirectional else 1
        self.embed = nn.Embedding(vocab_size, embed_dim, padding_idx=pad_id)
        self.drop = nn.Dropout(dropout)
        self.rnn = cells[cell](
            embed_dim,
            hidden_size,
            num_layers=num_layers,
            batch_first=True,
            bidirectional=bidirectional,
            dropout=dropout if num_layers > 1 else 0.0,
        )
        self.head = nn.Linear(hidden_size * self.directions, num_classes)

    def forward(self, input_ids: Tensor, attention_mask: Tensor | None = None) -> Tensor:
        mask = padding_mask(input_ids, attention_mask, self.pad_id)  # (B, T)
        x = self.drop(self.embed(input_ids))  # (B, T, E)
        packed = pack_padded_sequence(x, lengths_of(mask), batch_first=True, enforce_sorted=False)
        _, state = self.rnn(packed)
        h = state[0] if isinstance(state, tuple) else state  # LSTM gives (h, c); GRU gives h
        h = torch.cat(list(h[-self.directions :]), dim=-1)  # (B, hidden * directions)
        return self.head(self.drop(h))  # (B, num_classes)


@dataclass(frozen=True)
class TextTransformerConfig:
    """Shape of a Transformer encoder for text classification."""

    vocab_size: int = 1000
    dim: int = 64  # embedding width D; even (sine/cosine pairs) and divisible by heads
    depth: int = 2  # number of encoder blocks
    heads: int = 4  # attention heads
    mlp_ratio: float = 2.0  # hidden width of each block's MLP, as a multiple of dim
    dropout: float = 0.1
    max_length: int = 512  # longest input the positional table covers
    norm_first: bool = True  # pre-norm (stable, as ViT) or post-norm (the 2017 paper)
    pad_id: int = 0

    def __post_init__(self) -> None:
        if self.depth < 1:
            raise ValueError(f"depth={self.depth} must be at least 1 (one encoder block)")


class TextTransformer(nn.Module):
    """Token embedding, sinusoidal positions, encoder blocks with padding masked, [CLS] head.

    The first position is classified: put a [CLS] token there (the text pipeline's tokenizers
    can prepend one). Seed 003 ch7's model. Taught in lessons/16_attention_transformer.py.

    Args:
        config: Sizes of the model.
        num_classes: Number of output logits.
    """

    def __init__(self, config: TextTransformerConfig, *, num_classes: int = 2) -> None:
        super().__init__()
        D = config.dim
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, D, padding_idx=config.pad_id)
        self.pos = SinusoidalPositionalEncoding(D, config.max_length, dropout=config.dropout)
        block = TransformerBlock if config.norm_first else PostNormTransformerBlock
        self.blocks = nn.ModuleList(
            block(D, config.heads, mlp_ratio=config.mlp_ratio, dropout=config.dropout)
            for _ in range(config.depth)
        )
        # Pre-norm leaves the residual stream unnormalised: one last LayerNorm, as in ViT.
        self.norm = nn.LayerNorm(D) if config.norm_first else nn.Identity()
        self.head = nn.Linear(D, num_classes)
        nn.init.normal_(self.embed.weight, std=D**-0.5)  # × √D in the positional step → unit size
        with torch.no_grad():
            self.embed.weight[config.pad_id].zero_()

    def encode(self, input_ids: Tensor, mask: Tensor, depth: int | None = None) -> Tensor:
        """Token states (B, T, D) after the first ``depth`` blocks (all blocks by default)."""
        x = self.pos(self.embed(input_ids))  # (B, T, D)
        for block in self.blocks[:depth]:
            x = block(x, mask)  # (B, T, D)
        return x

    def _block(self, index: int) -> TransformerBlock:
        return cast(TransformerBlock, self.blocks[index])  # post-norm blocks subclass it

    def forward(self, input_ids: Tensor, attention_mask: Tensor | None = None) -> Tensor:
        mask = padding_mask(input_ids, attention_mask, self.config.pad_id)  # (B, T)
        x = self.encode(input_ids, mask)  # (B, T, D)
        return self.head(self.norm(x[:, 0]))  # (B, num_classes): the [CLS] position

    def attention_maps(self, input_ids: Tensor, attention_mask: Tensor | None = None) -> Tensor:
        """Every block's attention probabilities, stacked: (depth, B, heads, T, T)."""
        mask = padding_mask(input_ids, attention_mask, self.config.pad_id)
        x = self.pos(self.embed(input_ids))  # (B, T, D)
        maps = []
        for i in range(self.config.depth):
            maps.append(self._block(i).attention(x, mask))  # (B, heads, T, T)
            x = self._block(i)(x, mask)
        return torch.stack(maps)

    def token_attention(self, input_ids: Tensor, attention_mask: Tensor | None = None) -> Tensor:
        """How much the [CLS] query attends to each token in the last block, averaged over heads.

        Returns (B, T): each row sums to 1 over real tokens and is exactly 0 on padding.
        """
        mask = padding_mask(input_ids, attention_mask, self.config.pad_id)
        x = self.encode(input_ids, mask, depth=self.config.depth - 1)  # input of the last block
        attn = self._block(-1).attention(x, mask)  # (B, heads, T, T)
        return attn[:, :, 0].mean(dim=1)  # (B, T): row of query 0, mean over heads


def load_embeddings(model: nn.Module, vectors: Tensor, *, freeze: bool = False) -> None:
    """Copy pretrained word vectors (vocab_size, dim) into ``model.embed``, e.g. GloVe rows.

    Build the text model with ``embed_dim`` (or ``dim``) equal to the vectors' width. With
    ``freeze`` the embedding is not trained (seed 003 ch7 freezes its fastText vectors).
    """
    embed = getattr(model, "embed", None)
    if not isinstance(embed, nn.Embedding):
        raise ValueError(f"{type(model).__name__} has no `embed` nn.Embedding; use a text-* model")
    if tuple(vectors.shape) != tuple(embed.weight.shape):
        raise ValueError(
            f"vectors of shape {tuple(vectors.shape)} do not fit the embedding "
            f"{tuple(embed.weight.shape)}; build the model with vocab_size={vectors.shape[0]} "
            f"and embed_dim/dim={vectors.shape[1]}"
        )
    with torch.no_grad():
        embed.weight.copy_(vectors)
    embed.weight.requires_grad_(not freeze)


@register_model
def text_bow(
    *,
    vocab_size: int = 1000,
    num_classes: int = 2,
    pad_id: int = 0,
    embed_dim: int = 64,
    dropout: float = 0.0,
) -> BagOfEmbeddings:
    """Mean of token embeddings + linear layer: the bag-of-words baseline."""
    return BagOfEmbeddings(vocab_size, embed_dim, num_classes, pad_id=pad_id, dropout=dropout)


@register_model
def text_rnn(
    *,
    vocab_size: int = 1000,
    num_classes: int = 2,
    pad_id: int = 0,
    embed_dim: int = 64,
    hidden_size: int = 64,
    dropout: float = 0.0,
) -> RNNClassifier:
    """A tanh RNN cell written by hand, looped over time (slow; for teaching)."""
    return RNNClassifier(
        vocab_size, embed_dim, hidden_size, num_classes, pad_id=pad_id, dropout=dropout
    )


@register_model
def text_lstm(
    *,
    vocab_size: int = 1000,
    num_classes: int = 2,
    pad_id: int = 0,
    embed_dim: int = 64,
    hidden_size: int = 64,
    num_layers: int = 1,
    bidirectional: bool = True,
    dropout: float = 0.0,
) -> RecurrentClassifier:
    """A packed (bi)LSTM; its final states are classified."""
    return RecurrentClassifier(
        "lstm",
        vocab_size,
        embed_dim,
        hidden_size,
        num_classes,
        num_layers=num_layers,
        bidirectional=bidirectional,
        pad_id=pad_id,
        dropout=dropout,
    )


@register_model
def text_gru(
    *,
    vocab_size: int = 1000,
    num_classes: int = 2,
    pad_id: int = 0,
    embed_dim: int = 64,
    hidden_size: int = 64,
    num_layers: int = 1,
    bidirectional: bool = True,
    dropout: float = 0.0,
) -> RecurrentClassifier:
    """A packed (bi)GRU; its final states are classified."""
    return RecurrentClassifier(
        "gru",
        vocab_size,
        embed_dim,
        hidden_size,
        num_classes,
        num_layers=num_layers,
        bidirectional=bidirectional,
        pad_id=pad_id,
        dropout=dropout,
    )


@register_model
def text_transformer(
    *,
    vocab_size: int = 1000,
    num_classes: int = 2,
    pad_id: int = 0,
    dim: int = 64,
    depth: int = 2,
    heads: int = 4,
    mlp_ratio: float = 2.0,
    dropout: float = 0.1,
    max_length: int = 512,
    norm_first: bool = True,
) -> TextTransformer:
    """A Transformer encoder from scratch (seed 003 ch7), classifying the [CLS] position."""
    config = TextTransformerConfig(
        vocab_size=vocab_size,
        dim=dim,
        depth=depth,
        heads=heads,
        mlp_ratio=mlp_ratio,
        dropout=dropout,
        max_length=max_length,
        norm_first=norm_first,
        pad_id=pad_id,
    )
    return TextTransformer(config, num_classes=num_classes)
