"""Text models: padding never changes logits, attention rows are distributions with zero weight
on padding, the hand-written RNN equals ``nn.RNN``, packing hides padding from LSTM/GRU."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from torchdojo.models import create_model
from torchdojo.models.text import TextTransformer, load_embeddings
from torchdojo.nn import ElmanRNN, MultiHeadSelfAttention, sinusoidal_encoding

TEXT_MODELS = ["text-bow", "text-rnn", "text-lstm", "text-gru", "text-transformer"]


def batch(lengths: list[int], total: int, vocab: int = 50) -> tuple[torch.Tensor, torch.Tensor]:
    """Random ids 1..vocab-1 right-padded with 0 to ``total`` columns, and the mask."""
    mask = (torch.arange(total)[None] < torch.tensor(lengths)[:, None]).long()  # (B, T)
    ids = torch.randint(1, vocab, (len(lengths), total)) * mask
    return ids, mask


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [(name, {}) for name in TEXT_MODELS] + [("text-transformer", {"norm_first": False})],
)
def test_appending_padding_does_not_change_logits(name: str, kwargs: dict[str, bool]) -> None:
    model = create_model(name, vocab_size=50, **kwargs).eval()
    ids, mask = batch([5, 3, 1], total=5)
    more_ids = torch.cat([ids, torch.zeros(3, 4, dtype=torch.long)], dim=1)  # 4 more pads
    more_mask = torch.cat([mask, torch.zeros(3, 4, dtype=torch.long)], dim=1)
    with torch.no_grad():
        short, long = model(ids, mask), model(more_ids, more_mask)
        garbage = more_ids.clone()
        garbage[more_mask == 0] = 7  # masked positions holding real ids: still ignored
        other = model(garbage, more_mask)
    assert short.shape == (3, 2)
    torch.testing.assert_close(long, short, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(other, short, atol=1e-5, rtol=1e-5)
    assert torch.equal(model(ids), model(ids, mask))  # the mask defaults to ids != pad_id


def test_changing_a_real_token_changes_logits() -> None:
    for name in TEXT_MODELS:  # the padding test would also pass for a constant model
        model = create_model(name, vocab_size=50).eval()
        ids, mask = batch([4, 4], total=6)
        changed = ids.clone()
        changed[:, 1] = (changed[:, 1] % 49) + 1
        with torch.no_grad():
            assert not torch.allclose(model(ids, mask), model(changed, mask)), name


def test_token_attention_rows_sum_to_one_and_skip_padding() -> None:
    model = create_model("text-transformer", vocab_size=50, depth=3).eval()
    ids, mask = batch([6, 2, 4], total=6)
    with torch.no_grad():
        weights = model.token_attention(ids, mask)  # (B, T)
        maps = model.attention_maps(ids, mask)  # (depth, B, heads, T, T)
    assert weights.shape == (3, 6)
    torch.testing.assert_close(weights.sum(dim=1), torch.ones(3))
    assert torch.all(weights[mask == 0] == 0)
    assert torch.all(weights[mask == 1] > 0)
    assert maps.shape == (3, 3, 4, 6, 6)
    torch.testing.assert_close(weights, maps[-1, :, :, 0].mean(dim=1))
    assert torch.all(maps.permute(1, 4, 0, 2, 3)[mask == 0] == 0)  # every layer, head, query


def test_masked_attention_keeps_unmasked_results_bitwise() -> None:
    """An all-ones mask takes the same arithmetic as no mask: ViT is unaffected."""
    attn = MultiHeadSelfAttention(16, 4).eval()
    x = torch.randn(2, 5, 16)
    torch.testing.assert_close(attn(x, torch.ones(2, 5)), attn(x), atol=0, rtol=0)
    all_padding = attn.attention(x, torch.zeros(2, 5))  # no real key: uniform, not NaN
    torch.testing.assert_close(all_padding, torch.full((2, 4, 5, 5), 0.2))


def test_hand_rnn_equals_nn_rnn_with_copied_weights() -> None:
    hand = ElmanRNN(8, 12)
    ref = nn.RNN(8, 12, batch_first=True)
    with torch.no_grad():
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(ref, f"{name}_l0").copy_(getattr(hand.cell, name))
    x = torch.randn(3, 7, 8)
    out_hand, h_hand = hand(x)
    out_ref, h_ref = ref(x)
    torch.testing.assert_close(out_hand, out_ref, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(h_hand, h_ref[0], atol=1e-6, rtol=1e-5)
    # With lengths: the hand loop's masked final state equals packed nn.RNN's.
    lengths = torch.tensor([7, 3, 5])
    mask = torch.arange(7)[None] < lengths[:, None]
    _, h_masked = hand(x, mask)
    packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    _, h_packed = ref(packed)
    torch.testing.assert_close(h_masked, h_packed[0], atol=1e-6, rtol=1e-5)
    assert not torch.allclose(h_masked, h_hand)  # lengths mattered


@pytest.mark.parametrize("name", ["text-lstm", "text-gru"])
def test_packed_rnn_ignores_padding_but_unpacked_does_not(name: str) -> None:
    model = create_model(name, vocab_size=50, bidirectional=True).eval()
    ids, mask = batch([3], total=3)
    padded = torch.cat([ids, torch.zeros(1, 5, dtype=torch.long)], dim=1)
    padded_mask = torch.cat([mask, torch.zeros(1, 5, dtype=torch.long)], dim=1)
    with torch.no_grad():
        torch.testing.assert_close(model(padded, padded_mask), model(ids, mask))
        # Without packing the recurrence runs through the 5 pads: the state moves.
        _, state = model.rnn(model.embed(padded))
        h = state[0] if isinstance(state, tuple) else state
        unpacked = model.head(torch.cat(list(h[-2:]), dim=-1))
    assert not torch.allclose(unpacked, model(ids, mask), atol=1e-4)


def test_empty_rows_give_finite_logits() -> None:
    ids = torch.zeros(2, 4, dtype=torch.long)
    mask = torch.zeros(2, 4, dtype=torch.long)
    mask[0, 0] = 1
    for name in TEXT_MODELS:
        with torch.no_grad():
            assert torch.isfinite(create_model(name, vocab_size=50).eval()(ids, mask)).all()


def test_sinusoidal_encoding_values_and_max_length() -> None:
    pe = sinusoidal_encoding(10, 8)
    assert pe.shape == (10, 8)
    torch.testing.assert_close(pe[0], torch.tensor([0.0, 1.0] * 4))
    torch.testing.assert_close(pe[3, 0], torch.sin(torch.tensor(3.0)))
    torch.testing.assert_close(pe[3, 3], torch.cos(torch.tensor(3.0 / 10000 ** (2 / 8))))
    model = create_model("text-transformer", vocab_size=50, max_length=8)
    with pytest.raises(ValueError, match="max_length=8"):
        model(torch.ones(1, 9, dtype=torch.long))
    assert "pos.pe" not in model.state_dict()  # rebuilt, not saved


def test_load_embeddings_copies_and_freezes() -> None:
    model = create_model("text-bow", vocab_size=20, embed_dim=6)
    vectors = torch.randn(20, 6)
    load_embeddings(model, vectors, freeze=True)
    assert torch.equal(model.embed.weight, vectors)
    assert not model.embed.weight.requires_grad
    with pytest.raises(ValueError, match="vocab_size=20 and embed_dim/dim=5"):
        load_embeddings(model, torch.randn(20, 5))
    transformer = create_model("text-transformer", vocab_size=20, dim=6, heads=2)
    assert isinstance(transformer, TextTransformer)
    load_embeddings(transformer, vectors)
    assert transformer.embed.weight.requires_grad


def test_text_models_learn_a_keyword_task() -> None:
    """A few Adam steps separate sentences with token 3 from those without."""
    ids, mask = batch([6, 4, 5, 3] * 8, total=6, vocab=20)
    ids[ids == 3] = 4
    labels = torch.arange(32) % 2
    ids[labels == 1, 1] = 3
    sizes = {
        "text-bow": {"embed_dim": 16},
        "text-lstm": {"embed_dim": 16},
        "text-transformer": {"dim": 16, "dropout": 0.0},
    }
    for name, kwargs in sizes.items():
        torch.manual_seed(0)
        model = create_model(name, vocab_size=20, **kwargs)
        opt = torch.optim.Adam(model.parameters(), lr=1e-2)
        for _ in range(60):
            loss = nn.functional.cross_entropy(model(ids, mask), labels)
            opt.zero_grad()
            loss.backward()
            opt.step()
        acc = (model.eval()(ids, mask).argmax(1) == labels).float().mean().item()
        assert acc == 1.0, (name, acc)
