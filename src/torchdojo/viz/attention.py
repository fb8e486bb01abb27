"""Attention you can see: each token of a sentence on a background as red as its weight.

Seed 003 ch7-8's signature figure (the book builds it with ``rgba(255, 0, 0, w)`` spans): the
weights are usually a text model's ``token_attention`` row, how much the [CLS] query attends
to each token. :func:`attention_html` renders one sentence, :func:`attention_section` several
for report.html (``write_report(..., sections=[("Attention", block)])``),
:func:`attention_page` a standalone page, and :func:`attention_figure` a PNG for lessons.
Tokens show readably: WordPiece's ``##`` continuation pieces join the previous piece and
SentencePiece's ``▁`` word-start marker becomes a space. Every token is HTML-escaped.
Taught in lessons/16_attention_transformer.py.
"""

from __future__ import annotations

import html
import math
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

_WORD_START = ("▁", "Ġ")  # SentencePiece/Metaspace and byte-level BPE mark a word's start
_CONTINUATION = "##"  # WordPiece marks a piece that continues the previous one
_SPECIAL = ("[CLS]", "[SEP]", "[PAD]", "[UNK]", "[MASK]", "<s>", "</s>", "<pad>", "<unk>")

_BOX = "display:inline-block;padding:.05rem .15rem;margin:.1rem 0;border-radius:3px"
_DIV = (
    "font:15px/1.9 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:#1f2328;"
    "margin:.4rem 0;padding:.4rem .6rem;border:1px solid #e6e9ed;border-radius:6px"
)


@dataclass(frozen=True)
class AttentionExample:
    """One sentence to colour: its tokens, their weights and the model's prediction."""

    tokens: list[str]
    weights: Sequence[float]
    label: str
    prob: float
    true_label: str | None = None


def readable_tokens(tokens: Sequence[str]) -> list[tuple[str, bool]]:
    """Each token as shown, and whether a space goes before it.

    ``##ing`` → ``ing`` glued to the previous piece; ``▁the`` → ``the`` after a space (in a
    text that uses ``▁``, pieces without it are glued); otherwise tokens are space-separated,
    except between Chinese/Japanese characters, which are written without spaces.
    """
    metaspace = any(t.startswith(_WORD_START) and len(t) > 1 for t in tokens)
    shown: list[tuple[str, bool]] = []
    for i, token in enumerate(tokens):
        text, space = token, i > 0
        if token.startswith(_CONTINUATION) and len(token) > len(_CONTINUATION):
            text, space = token[len(_CONTINUATION) :], False
        elif metaspace and token not in _SPECIAL:
            starts_word = token.startswith(_WORD_START)
            if starts_word:
                text = token[1:] or token  # a lone "▁" is shown as itself
            space = i > 0 and starts_word
        elif i > 0 and _is_cjk(tokens[i - 1][-1:]) and _is_cjk(token[:1]):
            space = False
        shown.append((text, space))
    return shown


def weight_alpha(weights: Sequence[float]) -> list[float]:
    """Opacity of each token's background: weight / largest weight, in [0, 1].

    Scaling by the largest weight (as seed 003 does) keeps long sentences, whose weights are
    all small, readable; the ``title`` of each token keeps its raw weight.
    """
    values = [float(w) for w in weights]
    if any(not math.isfinite(w) or w < 0 for w in values):
        raise ValueError(f"attention weights must be finite and >= 0, got {values}")
    top = max(values, default=0.0)
    return [w / top if top > 0 else 0.0 for w in values]


def attention_html(
    tokens: list[str],
    weights: Sequence[float],
    *,
    label: str,
    prob: float,
    true_label: str | None = None,
) -> str:
    """One sentence as an HTML ``<div>``: the prediction, then tokens coloured by weight.

    Args:
        tokens: The tokens as the model sees them (``TextCodec.tokens(text)``).
        weights: One weight per token, e.g. a row of ``model.token_attention(...)`` without
            its padding.
        label: The predicted class name.
        prob: The predicted class's probability.
        true_label: The true class name, when known; a ✓ or ✗ then marks the prediction.
    """
    if len(tokens) != len(weights):
        raise ValueError(
            f"{len(tokens)} tokens but {len(weights)} weights; pass one weight per token "
            "(drop the padding positions of the attention row)"
        )
    head = f"<b>{_esc(label)}</b> ({prob:.3f})"
    if true_label is not None:
        mark = "✓" if true_label == label else "✗"
        head += f" · true: <b>{_esc(true_label)}</b> {mark}"
    spans = []
    for (text, space), raw, alpha in zip(
        readable_tokens(tokens), weights, weight_alpha(weights), strict=True
    ):
        style = f"{_BOX};background:rgba(255,0,0,{alpha:.3f})"
        span = f'<span style="{style}" title="{float(raw):.4f}">{_esc(text)}</span>'
        spans.append((" " if space else "") + span)
    return (
        f'<div class="attention" style="{_DIV}">'
        f'<div style="font-size:.85rem;color:#57606a">prediction: {head}</div>'
        f"<div>{''.join(spans)}</div></div>"
    )


def attention_section(examples: Sequence[AttentionExample], *, note: str = "") -> str:
    """Several sentences as one HTML block (for report.html's ``sections``)."""
    parts = [f'<p style="color:#57606a;margin:.2rem 0">{_esc(note)}</p>'] if note else []
    parts += [
        attention_html(e.tokens, e.weights, label=e.label, prob=e.prob, true_label=e.true_label)
        for e in examples
    ]
    return "\n".join(parts)


def attention_page(examples: Sequence[AttentionExample], *, title: str = "Attention") -> str:
    """A standalone HTML page of :func:`attention_section` (loads nothing from the network)."""
    csp = "default-src 'none'; style-src 'unsafe-inline'"
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{csp}">\n'
        f'<title>{_esc(title)}</title>\n</head>\n<body style="max-width:900px;margin:2rem auto">'
        f"\n<h1>{_esc(title)}</h1>\n{attention_section(examples)}\n</body>\n</html>\n"
    )


def attention_figure(examples: Sequence[AttentionExample], *, per_row: int = 12) -> Figure:
    """The same colouring as a matplotlib figure: each sentence's tokens in rows of boxes."""
    rows = [(e, start) for e in examples for start in range(0, max(len(e.tokens), 1), per_row)]
    fig = Figure(figsize=(1.0 * per_row, 0.45 * len(rows) + 0.4 * len(examples) + 0.3))
    ax = fig.add_subplot()
    ax.set_xlim(0, per_row)
    ax.set_ylim(len(rows) + len(examples), 0)
    ax.axis("off")
    y = 0.0
    for e in examples:
        verdict = "" if e.true_label is None else f"  (true: {e.true_label})"
        ax.text(0, y + 0.7, f"{e.label} {e.prob:.2f}{verdict}", fontsize=9, color="#57606a")
        y += 1
        alphas = weight_alpha(e.weights)
        shown = readable_tokens(e.tokens)
        for start in range(0, max(len(e.tokens), 1), per_row):
            for col, i in enumerate(range(start, min(start + per_row, len(e.tokens)))):
                ax.add_patch(_box(col, y, alphas[i]))
                ax.text(col + 0.5, y + 0.5, shown[i][0], ha="center", va="center", fontsize=8)
            y += 1
    return fig


def _box(x: float, y: float, alpha: float) -> Rectangle:
    return Rectangle((x + 0.03, y + 0.08), 0.94, 0.84, facecolor=(1.0, 0.0, 0.0, alpha), lw=0)


def _is_cjk(char: str) -> bool:
    if not char:
        return False
    name = unicodedata.name(char, "")
    return name.startswith(("CJK", "HIRAGANA", "KATAKANA")) or "IDEOGRAPH" in name


def _esc(value: object) -> str:
    return html.escape(str(value), quote=True)
