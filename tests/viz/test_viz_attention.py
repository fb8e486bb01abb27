"""The attention colouring: escaped, one box per token, redder for larger weights, readable
subword pieces, and a section that report.html embeds."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from torchdojo.viz import (
    AttentionExample,
    attention_figure,
    attention_html,
    attention_page,
    attention_section,
    save_figure,
    write_report,
)
from torchdojo.viz.attention import readable_tokens

_ALPHA = re.compile(r"rgba\(255,0,0,([0-9.]+)\)")


def _alphas(page: str) -> list[float]:
    return [float(a) for a in _ALPHA.findall(page)]


def test_tokens_are_escaped() -> None:
    page = attention_html(["<script>", "a&b", '"q"'], [0.2, 0.3, 0.5], label="<b>neg</b>", prob=0.9)
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "a&amp;b" in page and "&quot;q&quot;" in page
    assert "<b>neg</b>" not in page and "&lt;b&gt;neg&lt;/b&gt;" in page


def test_colour_is_monotone_in_weight() -> None:
    weights = [0.05, 0.4, 0.1, 0.25, 0.2]
    alphas = _alphas(attention_html(list("abcde"), weights, label="pos", prob=0.7))
    assert len(alphas) == len(weights)
    order = sorted(range(5), key=lambda i: weights[i])
    assert [alphas[i] for i in order] == sorted(alphas)
    assert max(alphas) == 1.0 and min(alphas) > 0
    zero = _alphas(attention_html(["x", "y"], [0.0, 0.0], label="pos", prob=0.5))
    assert zero == [0.0, 0.0]


def test_raw_weights_in_titles_and_label_verdict() -> None:
    page = attention_html(["good", "film"], [0.75, 0.25], label="pos", prob=0.91, true_label="neg")
    assert 'title="0.7500"' in page and 'title="0.2500"' in page
    assert "0.910" in page and "true: <b>neg</b> ✗" in page
    ok = attention_html(["good"], [1.0], label="pos", prob=0.91, true_label="pos")
    assert "✓" in ok


def test_bad_weights_are_refused() -> None:
    with pytest.raises(ValueError, match="2 tokens but 3 weights"):
        attention_html(["a", "b"], [0.1, 0.2, 0.7], label="x", prob=0.5)
    with pytest.raises(ValueError, match="finite and >= 0"):
        attention_html(["a"], [float("nan")], label="x", prob=0.5)


def test_subword_pieces_read_as_words() -> None:
    def text(tokens: list[str]) -> str:
        return "".join((" " if space else "") + t for t, space in readable_tokens(tokens))

    assert text(["[CLS]", "un", "##believ", "##able", "film"]) == "[CLS] unbelievable film"
    assert text(["▁un", "believ", "able", "▁film", "▁"]) == "unbelievable film ▁"
    assert text(["[CLS]", "▁good"]) == "[CLS] good"
    assert text(["[CLS]", "とても", "良い", "映画"]) == "[CLS] とても良い映画"
    assert text(["##"]) == "##"  # a literal "##" token is kept


def test_section_page_and_report(tmp_path: Path) -> None:
    examples = [
        AttentionExample(["great", "food"], [0.8, 0.2], "pos", 0.95, "pos"),
        AttentionExample(["awful", "<service>"], [0.6, 0.4], "neg", 0.85),
    ]
    block = attention_section(examples, note="last layer, [CLS] row")
    assert block.count('class="attention"') == 2
    page = attention_page(examples, title="a & b")
    assert page.startswith("<!DOCTYPE html>") and "<title>a &amp; b</title>" in page
    report = write_report(
        tmp_path,
        title="t",
        summary="s",
        config={},
        metrics={},
        expected={},
        images=[],
        env={},
        sections=[("Attention <colours>", block)],
    ).read_text()
    assert "<h2>Attention &lt;colours&gt;</h2>" in report
    assert report.index("Attention &lt;") < report.index("<h2>Config</h2>")
    assert "&lt;service&gt;" in report and "<service>" not in report


def test_png_figure(tmp_path: Path) -> None:
    examples = [AttentionExample([f"w{i}" for i in range(15)], [1.0] * 15, "pos", 0.6)]
    fig = attention_figure(examples, per_row=6)
    assert len(fig.axes[0].patches) == 15  # one box per token, in rows of 6
    path = save_figure(fig, tmp_path / "attention.png")
    assert path.stat().st_size > 1000
