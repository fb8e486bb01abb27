"""The LR range test's plot: smoothed loss against the learning rate (log scale).

Takes plain lists so that viz does not depend on the engine; pass the fields of
``torchdojo.engine.lr_finder.LRFinderResult``. Taught in lessons on training techniques.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from matplotlib.figure import Figure

from torchdojo.viz.figures import new_figure


def lr_finder_figure(
    lrs: Sequence[float],
    losses: Sequence[float],
    *,
    suggestion: float | None = None,
    raw_losses: Sequence[float] | None = None,
    title: str = "LR range test",
) -> Figure:
    """Loss vs LR with the suggested LR marked.

    Args:
        lrs: The LR of each step.
        losses: The smoothed loss of each step.
        suggestion: The suggested LR (drawn as a dashed line with its value).
        raw_losses: Per-batch losses, drawn faintly behind the smoothed curve.
        title: Figure title.
    """
    if len(lrs) != len(losses) or not lrs:
        raise ValueError(f"need as many losses as lrs (>0), got {len(lrs)} and {len(losses)}")
    fig = new_figure(width=6.0, height=4.0)
    ax = fig.add_subplot()
    if raw_losses is not None:
        ax.plot(lrs, raw_losses, color="tab:blue", alpha=0.25, linewidth=0.8, label="batch loss")
    ax.plot(lrs, losses, color="tab:blue", label="smoothed loss")
    if suggestion is not None and math.isfinite(suggestion):
        ax.axvline(suggestion, color="tab:red", linestyle="--", label=f"steepest: {suggestion:.2g}")
    finite = [v for v in losses if math.isfinite(v)]
    if finite:  # keep the divergence tail from flattening the interesting part
        low, first = min(finite), finite[0]
        ax.set_ylim(low - 0.05 * abs(first - low), first + 0.5 * abs(first - low) + 1e-8)
    ax.set_xscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.legend()
    return fig


__all__ = ["lr_finder_figure"]
