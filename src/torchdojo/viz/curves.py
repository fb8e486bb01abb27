"""Training curves from ``metrics.jsonl`` rows: loss, each validation metric, learning rate.

Train rows: ``{"split": "train", "epoch", "step", "loss", "lr", "samples_per_s"}``;
val rows: ``{"split": "val", "epoch", "step", "loss", <metric>: float, ...}``.
"""

from __future__ import annotations

import logging
import math
import re
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from torchdojo.viz.figures import new_figure, save_figure

logger = logging.getLogger(__name__)

_NOT_METRICS = frozenset({"split", "epoch", "step", "loss", "lr", "samples_per_s", "time"})


def plot_curves(records: list[dict[str, Any]], out_dir: Path) -> list[Path]:
    """Write ``loss.png``, one ``<metric>.png`` per validation metric and ``lr.png``.

    Plots whose data is absent are skipped; a single validation point still gives a plot.

    Args:
        records: Rows of ``metrics.jsonl``.
        out_dir: Folder for the PNG files (created if needed).

    Returns:
        The paths written, in the order loss, metrics (sorted by name), lr.
    """
    train = [r for r in records if r.get("split") == "train"]
    val = [r for r in records if r.get("split") == "val"]
    out_dir = Path(out_dir)
    paths: list[Path] = []
    train_loss, val_loss = _series(train, "loss"), _series(val, "loss")
    if train_loss[0] or val_loss[0]:
        fig = _loss_figure(train_loss, val_loss)
        paths.append(save_figure(fig, out_dir / "loss.png"))
    for name in _metric_names(val):
        fig = _line_figure(_series(val, name), title=f"val {name}", ylabel=name, marker="o")
        paths.append(save_figure(fig, out_dir / f"{_file_stem(name)}.png"))
    lr = _series(train, "lr")
    if lr[0]:
        fig = _line_figure(lr, title="learning rate", ylabel="lr", marker=None)
        paths.append(save_figure(fig, out_dir / "lr.png"))
    return paths


def _series(rows: list[dict[str, Any]], key: str) -> tuple[list[float], list[float]]:
    """(steps, values) of ``key`` over ``rows``, skipping rows without it or non-finite values."""
    steps: list[float] = []
    values: list[float] = []
    for i, row in enumerate(rows):
        value: Any = row.get(key)
        if not _is_number(value):
            continue
        if not math.isfinite(value):
            logger.warning("skipping non-finite %s=%s at step %s", key, value, row.get("step"))
            continue
        steps.append(float(row.get("step", i)))
        values.append(float(value))
    return steps, values


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _metric_names(val: list[dict[str, Any]]) -> list[str]:
    names = {k for row in val for k, v in row.items() if k not in _NOT_METRICS and _is_number(v)}
    return sorted(names)


def _file_stem(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or "metric"


def _loss_figure(
    train: tuple[list[float], list[float]], val: tuple[list[float], list[float]]
) -> Figure:
    fig = new_figure(width=6.4, height=4.0)
    ax = fig.add_subplot()
    if train[0]:
        ax.plot(*train, label="train", lw=1.2, marker="." if len(train[0]) < 2 else None)
    if val[0]:
        ax.plot(*val, "o--", label="val", ms=6, lw=0.8)
    values = train[1] + val[1]
    if min(values) > 0 and max(values) / min(values) > 100:
        ax.set_yscale("log")  # losses spanning decades are unreadable on a linear axis
    ax.set(title="loss", xlabel="step", ylabel="loss")
    ax.grid(alpha=0.3)
    ax.legend()
    return fig


def _line_figure(
    series: tuple[list[float], list[float]], *, title: str, ylabel: str, marker: str | None
) -> Figure:
    steps, values = series
    fig = new_figure(width=6.4, height=4.0)
    ax = fig.add_subplot()
    ax.plot(steps, values, marker=marker or ("." if len(steps) < 2 else None), lw=1.2)
    ax.set(title=f"{title} (last {values[-1]:.4g})", xlabel="step", ylabel=ylabel)
    ax.grid(alpha=0.3)
    return fig
