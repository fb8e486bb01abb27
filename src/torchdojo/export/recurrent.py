"""An export-friendly twin of a packed LSTM/GRU text classifier: same weights, no packing.

``pack_padded_sequence`` does not export: the dynamo exporter cannot trace its data-dependent
batch sizes and the TorchScript exporter fails on the packed ``aten::lstm``. For right-padded
text, packing is equivalent to running the recurrence on the padded batch and reading each
row's state at its own last token: a step only looks back, so padding after the last real
token never reaches it. The backward direction reads each row reversed *within its length*
(a gather whose index is built from the lengths), so it also starts at the last real token.
:class:`UnpackedRecurrent` does exactly that, layer by layer, with the classifier's own
weights; the parity report then compares it with the packed original. Taught in the
deployment section of lessons/15_rnn_lstm.py.
"""

from __future__ import annotations

from typing import cast

import torch
from torch import Tensor, nn

from torchdojo.nn import ElmanRNN


def is_packed_recurrent(model: nn.Module) -> bool:
    """Whether ``model`` looks like a packed recurrent text classifier this module can unpack.

    It needs ``embed`` (an embedding), ``rnn`` (a batch-first ``nn.LSTM`` or ``nn.GRU``),
    ``head`` (the linear classifier) and ``directions`` (1 or 2).
    """
    rnn = getattr(model, "rnn", None)
    return (
        isinstance(rnn, (nn.LSTM, nn.GRU))
        and bool(rnn.batch_first)
        and isinstance(getattr(model, "embed", None), nn.Embedding)
        and isinstance(getattr(model, "head", None), nn.Module)
    )


def loops_in_python(model: nn.Module) -> bool:
    """Whether ``model`` runs a hand-written RNN whose Python loop fixes the sequence length."""
    return isinstance(getattr(model, "rnn", None), ElmanRNN)


def reverse_within_length(x: Tensor, lengths: Tensor) -> Tensor:
    """Reverse each row's first ``lengths[b]`` steps, leaving padding in place.

    Args:
        x: ``(B, T, D)`` steps, real ones first.
        lengths: ``(B,)`` real steps per row (at least 1).
    """
    T = x.shape[1]
    steps = torch.arange(T, device=x.device)[None, :]  # (1, T)
    last = lengths[:, None] - 1  # (B, 1)
    index = torch.where(steps <= last, last - steps, steps)  # (B, T): an involution per row
    return x.gather(1, index[..., None].expand_as(x))  # (B, T, D)


class UnpackedRecurrent(nn.Module):
    """The packed classifier ``model`` computed without packing, with copies of its weights.

    Args:
        model: A classifier for which :func:`is_packed_recurrent` is true, in eval mode.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        if not is_packed_recurrent(model):
            raise ValueError(
                f"{type(model).__name__} is not a packed LSTM/GRU classifier (embed, batch-first "
                "rnn, head); export it as it is"
            )
        self.model = model
        rnn = cast(nn.LSTM | nn.GRU, model.rnn)
        if getattr(rnn, "proj_size", 0):
            raise ValueError(
                "an LSTM with proj_size > 0 has no unpacked twin here; set proj_size=0"
            )
        self.directions = 2 if rnn.bidirectional else 1
        self.layers = nn.ModuleList(
            nn.ModuleList(_one_direction(rnn, layer, d) for d in range(self.directions))
            for layer in range(rnn.num_layers)
        )

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        lengths = attention_mask.sum(dim=1).clamp(min=1)  # (B,), as lengths_of() packs them
        x = cast(nn.Embedding, self.model.embed)(input_ids)  # (B, T, E); no dropout in eval
        finals: list[Tensor] = []
        for layer in self.layers:
            directions = cast(nn.ModuleList, layer)
            forward_out, _ = directions[0](x)  # (B, T, H)
            finals = [_at_last(forward_out, lengths)]  # (B, H): state after the last real token
            outputs = [forward_out]
            if self.directions == 2:
                backward_rev, _ = directions[1](reverse_within_length(x, lengths))  # (B, T, H)
                finals.append(_at_last(backward_rev, lengths))  # state after the first token
                outputs.append(reverse_within_length(backward_rev, lengths))
            x = torch.cat(outputs, dim=-1)  # (B, T, H * directions): next layer's input
        head = cast(nn.Module, self.model.head)
        return cast(Tensor, head(torch.cat(finals, dim=-1)))  # (B, num_classes)


def _at_last(out: Tensor, lengths: Tensor) -> Tensor:
    """``out[b, lengths[b] - 1]`` for every row: ``(B, T, H)`` -> ``(B, H)``."""
    index = (lengths - 1)[:, None, None].expand(-1, 1, out.shape[2])  # (B, 1, H)
    return out.gather(1, index).squeeze(1)  # (B, H)


def _one_direction(rnn: nn.LSTM | nn.GRU, layer: int, direction: int) -> nn.Module:
    """A one-layer, one-direction copy of ``rnn``'s weights for ``layer`` and ``direction``."""
    suffix = f"_l{layer}" + ("_reverse" if direction == 1 else "")
    weight_ih = getattr(rnn, "weight_ih" + suffix)
    single = type(rnn)(
        weight_ih.shape[1], rnn.hidden_size, batch_first=True, bias=rnn.bias
    )  # input width of this layer: E, or H * directions above the first
    with torch.no_grad():
        for name in ("weight_ih", "weight_hh") + (("bias_ih", "bias_hh") if rnn.bias else ()):
            getattr(single, name + "_l0").copy_(getattr(rnn, name + suffix))
    return single.eval()
