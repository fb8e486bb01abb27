"""Model size and cost: a layer table (torchinfo), parameter count and FLOPs.

FLOPs are counted by running the model once under ``torch.utils.flop_counter.FlopCounterMode``;
one multiply-add counts as 2 FLOPs (so a "MACs" figure from other tools is half of it), and only
matmuls and convolutions are counted. Taught in lessons/12_cnn_zoo.py.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from torchdojo.utils.device import forward_flops


def count_params(model: nn.Module, *, trainable_only: bool = False) -> int:
    """Number of parameters (each shared tensor once); ``trainable_only`` counts
    ``requires_grad`` ones only."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def count_flops(model: nn.Module, input_size: Sequence[int]) -> int:
    """FLOPs of one forward pass on a zero tensor of ``input_size`` (batch included).

    The model runs in eval mode under ``torch.no_grad`` and is put back in its former mode.

    Args:
        model: The model to measure.
        input_size: Full input shape, e.g. ``(1, 3, 32, 32)``.
    """
    param = next(model.parameters(), None)
    x = torch.zeros(*input_size, device=param.device if param is not None else "cpu")
    return forward_flops(model, x)


def model_summary(model: nn.Module, input_size: Sequence[int], *, depth: int = 3) -> str:
    """A torchinfo table: each layer's output shape and parameters, totals and memory.

    Args:
        model: The model to describe.
        input_size: Full input shape, e.g. ``(1, 3, 32, 32)``.
        depth: How many levels of nested modules to show.
    """
    from torchinfo import summary

    was_training = model.training
    try:
        stats = summary(
            model,
            input_size=tuple(input_size),
            depth=depth,
            col_names=("output_size", "num_params"),
            verbose=0,
        )
    finally:
        model.train(was_training)
    return str(stats)
