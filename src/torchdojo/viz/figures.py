"""Figure helpers shared by the viz modules: a pyplot-free figure factory, a grid of images,
and an atomic saver.

Every figure in ``torchdojo.viz`` is a bare :class:`matplotlib.figure.Figure` (Agg rendering,
no pyplot global state), so plotting is safe in tests, servers and worker threads.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy.typing as npt
from matplotlib.figure import Figure

from torchdojo.utils import atomic_write

DPI = 100


def new_figure(*, width: float, height: float) -> Figure:
    """A pyplot-free figure with constrained layout, ``width`` x ``height`` inches."""
    return Figure(figsize=(width, height), dpi=DPI, layout="constrained")


def grid_shape(count: int, *, ncols: int) -> tuple[int, int]:
    """Rows and columns of a grid holding ``count`` panels, at most ``ncols`` wide."""
    if count < 1:
        raise ValueError(f"need at least one panel to draw, got {count}")
    if ncols < 1:
        raise ValueError(f"ncols must be >= 1, got {ncols}")
    cols = min(ncols, count)
    return math.ceil(count / cols), cols


def show_grid(
    panels: Sequence[npt.NDArray[Any]],
    *,
    titles: Sequence[str] | None,
    ncols: int,
    cmap: str = "gray",
    panel_inches: float = 1.6,
) -> Figure:
    """Draw ``panels`` (each (H, W) or (H, W, 3|4), values in [0, 1]) in a grid, one axes each."""
    if titles is not None and len(titles) != len(panels):
        raise ValueError(f"got {len(titles)} titles for {len(panels)} images; pass one per image")
    rows, cols = grid_shape(len(panels), ncols=ncols)
    fig = new_figure(width=cols * panel_inches, height=rows * (panel_inches + 0.25))
    for i, panel in enumerate(panels):
        ax = fig.add_subplot(rows, cols, i + 1)
        ax.imshow(panel, cmap=cmap if panel.ndim == 2 else None, vmin=0.0, vmax=1.0)
        ax.set_axis_off()
        if titles is not None:
            ax.set_title(titles[i], fontsize=8)
    return fig


def save_figure(fig: Figure, path: str | Path, *, dpi: int = DPI) -> Path:
    """Write ``fig`` atomically to ``path`` (format from the suffix, PNG by default) and close it.

    Args:
        fig: The figure to save; it is released afterwards, do not draw on it again.
        path: Destination file; parent folders are created.
        dpi: Resolution of raster formats.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    path = Path(path)
    fmt = path.suffix.lstrip(".").lower() or "png"
    atomic_write(path, lambda tmp: fig.savefig(tmp, format=fmt, dpi=dpi))
    _close(fig)
    return path


def _close(fig: Figure) -> None:
    # Only figures made through pyplot are tracked by it; never import pyplot just to close.
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is not None:
        pyplot.close(fig)
    fig.clear()
