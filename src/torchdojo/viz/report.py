"""``report.html``: one self-contained page per run (inline CSS, plots inlined as base64).

The page shows the title and summary, final metrics against the recipe's expected floors,
the config, the plots and the environment. Every value is HTML-escaped; the page loads
nothing from the network (its Content-Security-Policy forbids it).
"""

from __future__ import annotations

import base64
import html
import json
import logging
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from torchdojo.utils import atomic_write_text

logger = logging.getLogger(__name__)

_MIME = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".svg": "image/svg+xml"}

_WIDE_PX = 700  # plots wider than this (grids, big confusion matrices) take a full row

_CSS = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1f2328;
  max-width: 1100px; margin: 2rem auto; padding: 0 1.2rem; background: #fff; }
h1 { font-size: 1.7rem; margin: 0 0 .3rem; }
h2 { font-size: 1.2rem; margin: 2rem 0 .6rem; border-bottom: 1px solid #d0d7de; padding-bottom: .2rem; }
.summary { font-size: 1.05rem; color: #424a53; margin: 0 0 .8rem; }
.badge { display: inline-block; padding: .1rem .55rem; border-radius: 1rem; font-size: .8rem;
  font-weight: 600; background: #fff8c5; color: #7d4e00; border: 1px solid #d4a72c; }
table { border-collapse: collapse; width: 100%; margin: .3rem 0; font-size: .92rem; }
th, td { text-align: left; padding: .35rem .6rem; border-bottom: 1px solid #e6e9ed; vertical-align: top; }
th { background: #f6f8fa; font-weight: 600; }
td.num { font-variant-numeric: tabular-nums; text-align: right; white-space: nowrap; }
td.key { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; white-space: nowrap; width: 30%; }
td.val { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; word-break: break-word; }
.pass { color: #1a7f37; font-weight: 600; } .fail { color: #cf222e; font-weight: 600; }
.na { color: #6e7781; font-style: italic; }
.plots { display: grid; grid-template-columns: repeat(auto-fill, minmax(460px, 1fr)); gap: 1rem;
  align-items: start; }
figure { margin: 0; border: 1px solid #e6e9ed; border-radius: 6px; padding: .5rem; }
figure.wide { grid-column: 1 / -1; }
figure img { max-width: 100%; height: auto; display: block; margin: 0 auto; }
figcaption { font-size: .85rem; color: #57606a; text-align: center; margin-top: .3rem; }
.muted { color: #6e7781; }
"""


def write_report(
    run_dir: Path,
    *,
    title: str,
    summary: str,
    config: dict[str, Any],
    metrics: dict[str, float],
    expected: dict[str, dict[str, Any]],
    images: list[Path],
    env: dict[str, Any],
    sections: Sequence[tuple[str, str]] = (),
) -> Path:
    """Write ``run_dir/report.html`` and return its path.

    Args:
        run_dir: The run folder.
        title: Page heading, e.g. the recipe name.
        summary: One line under the heading, e.g. "val_acc 0.991 after 3 epochs (41 s)".
        config: The run's config; its ``smoke`` key marks a smoke run, for which expected
            floors are shown as "not comparable".
        metrics: Final metrics by name.
        expected: Metric name -> ``{"floor": float, "data": str, "measured_by": str}``; a
            ``"ceiling"`` key instead of ``"floor"`` marks a lower-is-better metric.
        images: Plot files to inline (PNG, JPEG or SVG); missing files are listed, not fatal.
        env: Versions, git sha, seed, device, threads; nested dicts are flattened.
        sections: Extra ``(heading, html)`` sections shown after the plots, e.g. the
            attention colouring of :func:`torchdojo.viz.attention.attention_section`. The
            heading is escaped; the HTML is inserted as is, so build it with escaping helpers.
    """
    smoke = bool(config.get("smoke", False))
    badge = ' <span class="badge">smoke run</span>' if smoke else ""
    body = [
        f"<h1>{_esc(title)}{badge}</h1>",
        f'<p class="summary">{_esc(summary)}</p>',
        "<h2>Metrics</h2>",
        _metrics_table(metrics, expected, smoke=smoke),
        "<h2>Plots</h2>",
        _plots(images),
        *(f"<h2>{_esc(heading)}</h2>\n{block}" for heading, block in sections),
        "<h2>Config</h2>",
        _key_value_table(_flatten(config)),
        "<h2>Environment</h2>",
        _key_value_table(_flatten(env)),
    ]
    page = _page(title, "\n".join(body))
    return atomic_write_text(Path(run_dir) / "report.html", page)


def _page(title: str, body: str) -> str:
    csp = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{csp}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{_esc(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n{body}\n"
        "</body>\n</html>\n"
    )


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, list | tuple | dict):
        return json.dumps(value, default=str)
    return str(value)


def _verdict(value: float | None, spec: dict[str, Any], *, smoke: bool) -> tuple[str, str]:
    """(css class, text) of one metric against its expected floor or ceiling."""
    if smoke:
        return "na", "not comparable (smoke run)"
    if value is None or not math.isfinite(value):
        return "fail", "fail (missing)" if value is None else "fail (not finite)"
    if "floor" in spec:
        ok = value >= float(spec["floor"])
    elif "ceiling" in spec:
        ok = value <= float(spec["ceiling"])
    else:
        return "na", "no floor"
    return ("pass", "pass") if ok else ("fail", "fail")


def _metrics_table(
    metrics: dict[str, float], expected: dict[str, dict[str, Any]], *, smoke: bool
) -> str:
    names = list(expected) + sorted(k for k in metrics if k not in expected)
    if not names:
        return '<p class="muted">No metrics recorded.</p>'
    head = "<tr><th>metric</th><th>value</th><th>expected</th><th>status</th><th>data</th><th>measured by</th></tr>"
    rows = [head]
    for name in names:
        value, spec = metrics.get(name), expected.get(name)
        shown = _fmt(float(value)) if value is not None else "—"
        if spec is None:
            bound, (css, text), data, by = "—", ("na", "no floor"), "", ""
        else:
            bound = _bound(spec)
            css, text = _verdict(None if value is None else float(value), spec, smoke=smoke)
            data, by = spec.get("data", ""), spec.get("measured_by", "")
        rows.append(
            f'<tr><td class="key">{_esc(name)}</td><td class="num">{_esc(shown)}</td>'
            f'<td class="num">{_esc(bound)}</td><td class="{css}">{_esc(text)}</td>'
            f"<td>{_esc(data)}</td><td>{_esc(by)}</td></tr>"
        )
    return "<table>\n" + "\n".join(rows) + "\n</table>"


def _bound(spec: dict[str, Any]) -> str:
    if "floor" in spec:
        return f"≥ {_fmt(float(spec['floor']))}"
    if "ceiling" in spec:
        return f"≤ {_fmt(float(spec['ceiling']))}"
    return "—"


def _flatten(tree: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    items: list[tuple[str, Any]] = []
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            items.extend(_flatten(value, prefix=f"{name}."))
        else:
            items.append((name, value))
    return items


def _key_value_table(items: Iterable[tuple[str, Any]]) -> str:
    rows = [
        f'<tr><td class="key">{_esc(k)}</td><td class="val">{_esc(_fmt(v))}</td></tr>'
        for k, v in items
    ]
    if not rows:
        return '<p class="muted">Nothing recorded.</p>'
    return "<table>\n" + "\n".join(rows) + "\n</table>"


def _plots(images: list[Path]) -> str:
    figures, missing = [], []
    for path in map(Path, images):
        mime = _MIME.get(path.suffix.lower())
        if mime is None or not path.is_file():
            logger.warning("report: skipping image %s (missing or unsupported type)", path)
            missing.append(path.name)
            continue
        raw = path.read_bytes()
        data = base64.b64encode(raw).decode("ascii")
        wide = ' class="wide"' if _png_width(raw) > _WIDE_PX else ""
        figures.append(
            f'<figure{wide}><img src="data:{mime};base64,{data}" alt="{_esc(path.stem)}">'
            f"<figcaption>{_esc(path.name)}</figcaption></figure>"
        )
    parts = [f'<div class="plots">\n{chr(10).join(figures)}\n</div>'] if figures else []
    if not figures:
        parts.append('<p class="muted">No plots.</p>')
    if missing:
        parts.append(f'<p class="muted">Not found: {_esc(", ".join(missing))}</p>')
    return "\n".join(parts)


def _png_width(raw: bytes) -> int:
    """Pixel width from a PNG's IHDR chunk; 0 for anything that is not a PNG."""
    if raw[:8] != b"\x89PNG\r\n\x1a\n" or len(raw) < 24:
        return 0
    return int.from_bytes(raw[16:20], "big")
