"""Blocks for sequences: sinusoidal positional encoding and an Elman RNN written out by hand.

Positional encoding: Vaswani et al., 2017 (https://arxiv.org/abs/1706.03762), section 3.5.
The RNN cell is ``h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)`` (Elman, 1990), the same
equation and parameter names as :class:`torch.nn.RNNCell`. Taught in lessons/15_rnn_lstm.py
and lessons/16_attention_transformer.py.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


def sinusoidal_encoding(length: int, dim: int) -> Tensor:
    """The (length, dim) table ``PE[t, 2i] = sin(t / 10000^(2i/dim))``, ``PE[t, 2i+1] = cos(...)``.

    Each pair of columns is a clock at its own frequency, from one turn per 2π tokens down to
    one per 10000·2π, so every position gets a distinct code and ``PE[t + k]`` is a rotation of
    ``PE[t]`` (relative offsets are linear functions of the code).
    """
    if dim % 2 != 0:
        raise ValueError(f"dim={dim} must be even for the sine/cosine pairs; use dim={dim + 1}")
    position = torch.arange(length, dtype=torch.float32)[:, None]  # (T, 1)
    freq = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    table = torch.zeros(length, dim)
    table[:, 0::2] = torch.sin(position * freq)  # (T, dim / 2)
    table[:, 1::2] = torch.cos(position * freq)
    return table


class SinusoidalPositionalEncoding(nn.Module):
    """Scale token embeddings by √dim and add the fixed sinusoidal position code.

    The √dim scale (Vaswani et al., section 3.4) keeps embeddings, initialised small, from being
    drowned by the unit-size position code. The table is a non-persistent buffer: it is rebuilt
    from ``max_length`` and never saved in a checkpoint.

    Taught in lessons/16_attention_transformer.py.

    Args:
        dim: Width of each token; must be even.
        max_length: Longest sequence the table covers.
        dropout: Dropout on the sum.
    """

    pe: Tensor

    def __init__(self, dim: int, max_length: int = 512, *, dropout: float = 0.0) -> None:
        super().__init__()
        self.scale = math.sqrt(dim)
        self.register_buffer("pe", sinusoidal_encoding(max_length, dim), persistent=False)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        T = x.shape[1]
        if T > self.pe.shape[0]:
            raise ValueError(
                f"sequence of {T} tokens is longer than max_length={self.pe.shape[0]}; "
                "truncate the input or build the model with a larger max_length"
            )
        return self.drop(x * self.scale + self.pe[:T])  # (B, T, D)


class ElmanRNNCell(nn.Module):
    """One step of a tanh RNN: ``h' = tanh(x W_ihᵀ + b_ih + h W_hhᵀ + b_hh)``.

    The parameters have :class:`torch.nn.RNNCell`'s names and shapes, so weights copy across.
    Initialised like PyTorch: uniform in ±1/√hidden_size.

    Taught in lessons/15_rnn_lstm.py.

    Args:
        input_size: Width of each input step.
        hidden_size: Width of the hidden state.
    """

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.weight_ih = nn.Parameter(torch.empty(hidden_size, input_size))
        self.weight_hh = nn.Parameter(torch.empty(hidden_size, hidden_size))
        self.bias_ih = nn.Parameter(torch.empty(hidden_size))
        self.bias_hh = nn.Parameter(torch.empty(hidden_size))
        bound = 1.0 / math.sqrt(hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def forward(self, x: Tensor, h: Tensor) -> Tensor:
        """Next state (B, hidden) from the input step ``x`` (B, input) and the state ``h``."""
        return torch.tanh(x @ self.weight_ih.T + self.bias_ih + h @ self.weight_hh.T + self.bias_hh)


class ElmanRNN(nn.Module):
    """A one-layer tanh RNN looped over time in Python, honouring a padding mask.

    Where ``mask[:, t]`` is 0 the state is carried over unchanged, so the final state is the
    state after each sequence's last real token, whatever padding follows (what
    ``pack_padded_sequence`` achieves for :class:`torch.nn.RNN`).

    Taught in lessons/15_rnn_lstm.py.

    Args:
        input_size: Width of each input step.
        hidden_size: Width of the hidden state.
    """

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.cell = ElmanRNNCell(input_size, hidden_size)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Run over ``x`` (B, T, input); return all states (B, T, hidden) and the final (B, hidden)."""
        B, T, _ = x.shape
        h = x.new_zeros(B, self.cell.hidden_size)  # (B, hidden)
        outputs = []
        for t in range(T):
            h_next = self.cell(x[:, t], h)  # (B, hidden)
            h = h_next if mask is None else torch.where(mask[:, t, None].bool(), h_next, h)
            outputs.append(h)
        return torch.stack(outputs, dim=1), h  # (B, T, hidden), (B, hidden)
