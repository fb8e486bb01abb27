"""Confusion matrix counts, most-confused pairs and top losses on hand-made cases."""

from __future__ import annotations

import torch

from torchdojo.viz import (
    confusion_counts,
    confusion_matrix_figure,
    most_confused_pairs,
    top_losses,
)

NAMES = ["cat", "dog", "fox"]
# true: cat x4, dog x3, fox x3
Y_TRUE = [0, 0, 0, 0, 1, 1, 1, 2, 2, 2]
Y_PRED = [0, 0, 1, 1, 1, 0, 1, 1, 1, 0]


def test_confusion_counts_by_hand() -> None:
    counts = confusion_counts(Y_TRUE, Y_PRED, num_classes=3)
    expected = torch.tensor([[2, 2, 0], [1, 2, 0], [1, 2, 0]])
    assert torch.equal(counts, expected)


def test_confusion_matrix_figure_shows_the_counts() -> None:
    fig = confusion_matrix_figure(torch.tensor(Y_TRUE), torch.tensor(Y_PRED), NAMES)
    ax = fig.axes[0]
    image = ax.get_images()[0].get_array()
    assert image.tolist() == [[2, 2, 0], [1, 2, 0], [1, 2, 0]]
    assert [t.get_text() for t in ax.get_yticklabels()] == NAMES
    assert sorted(t.get_text() for t in ax.texts) == sorted("220120120")


def test_most_confused_pairs() -> None:
    pairs = most_confused_pairs(Y_TRUE, Y_PRED, NAMES, 3)
    assert pairs == [("cat", "dog", 2), ("fox", "dog", 2), ("dog", "cat", 1)]
    assert most_confused_pairs(Y_TRUE, Y_PRED, NAMES, k=10)[-1] == ("fox", "cat", 1)
    assert len(most_confused_pairs(Y_TRUE, Y_PRED, NAMES, k=10)) == 4  # zero counts dropped
    assert most_confused_pairs([0, 1], [0, 1], NAMES[:2], 5) == []


def test_top_losses_orders_the_worst_first() -> None:
    logits = torch.tensor([[5.0, 0.0], [0.0, 5.0], [0.0, 0.0], [-3.0, 3.0]])
    targets = torch.tensor([0, 0, 0, 0])
    indices, losses = top_losses(logits, targets, 2)
    assert indices.tolist() == [3, 1]
    assert torch.all(losses[:-1] >= losses[1:])
    assert (
        abs(losses[0].item() - torch.nn.functional.cross_entropy(logits[3:], targets[3:]).item())
        < 1e-6
    )
    assert top_losses(logits, targets, 10)[0].numel() == 4
