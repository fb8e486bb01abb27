"""Focal and Dice losses (and torch's label smoothing) against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torchvision.ops import sigmoid_focal_loss

from torchdojo.nn import DiceLoss, FocalLoss, dice_loss, focal_loss

LN2, LN3, LN4 = math.log(2), math.log(3), math.log(4)


def test_focal_multiclass_hand_values() -> None:
    # p = softmax([ln 3, 0]) = [0.75, 0.25]
    logits = torch.tensor([[LN3, 0.0], [LN3, 0.0]])
    target = torch.tensor([0, 1])
    per_sample = focal_loss(logits, target, gamma=2.0, reduction="none")
    expected = torch.tensor([0.25**2 * math.log(4 / 3), 0.75**2 * LN4])  # (1 - p_t)^2 * -log p_t
    torch.testing.assert_close(per_sample, expected)
    assert focal_loss(logits, target).item() == pytest.approx(expected.mean().item())
    assert focal_loss(logits, target, reduction="sum").item() == pytest.approx(
        expected.sum().item()
    )


def test_focal_uniform_prediction() -> None:
    loss = focal_loss(torch.zeros(1, 2), torch.tensor([1]), gamma=2.0)
    assert loss.item() == pytest.approx(0.25 * LN2)


def test_focal_gamma_zero_is_cross_entropy_also_for_segmentation() -> None:
    torch.manual_seed(0)
    logits, target = torch.randn(2, 4, 3, 5), torch.randint(0, 4, (2, 3, 5))
    torch.testing.assert_close(
        focal_loss(logits, target, gamma=0.0), F.cross_entropy(logits, target)
    )


def test_focal_alpha_per_class_and_ignore_index() -> None:
    logits = torch.tensor([[LN3, 0.0], [LN3, 0.0], [5.0, -5.0]])
    target = torch.tensor([0, 1, -100])
    alpha = torch.tensor([0.2, 0.8])
    per_sample = focal_loss(logits, target, alpha=alpha, reduction="none")
    expected = torch.tensor([0.2 * 0.25**2 * math.log(4 / 3), 0.8 * 0.75**2 * LN4, 0.0])
    torch.testing.assert_close(per_sample, expected)
    mean = focal_loss(logits, target, alpha=alpha)
    assert mean.item() == pytest.approx(expected[:2].mean().item())  # ignored one not averaged


def test_focal_binary_hand_value_and_torchvision_agreement() -> None:
    # logit 0, label 1: ce = ln 2, p_t = 0.5, alpha_t = 0.25
    loss = focal_loss(torch.zeros(1), torch.ones(1), gamma=2.0, alpha=0.25)
    assert loss.item() == pytest.approx(0.25 * 0.25 * LN2)
    torch.manual_seed(0)
    logits, target = torch.randn(4, 3), torch.randint(0, 2, (4, 3)).float()
    ours = focal_loss(logits, target, gamma=2.0, alpha=0.25, reduction="sum")
    torch.testing.assert_close(ours, sigmoid_focal_loss(logits, target, reduction="sum"))


def test_focal_down_weights_easy_examples() -> None:
    easy, hard = torch.tensor([[4.0, 0.0]]), torch.tensor([[0.5, 0.0]])
    y = torch.tensor([0])
    ratio_ce = F.cross_entropy(easy, y) / F.cross_entropy(hard, y)
    ratio_focal = focal_loss(easy, y) / focal_loss(hard, y)
    assert ratio_focal < ratio_ce / 10


def test_dice_binary_hand_values() -> None:
    logits = torch.tensor([[[100.0, 100.0, -100.0, -100.0]]])  # predicts [1, 1, 0, 0]
    target = torch.tensor([[[1.0, 0.0, 1.0, 0.0]]])
    # intersection 1, |p| + |t| = 4
    assert dice_loss(logits, target, smooth=0.0).item() == pytest.approx(1 - 2 / 4)
    assert dice_loss(logits, target, smooth=1.0).item() == pytest.approx(1 - 3 / 5)
    assert dice_loss(logits, (logits > 0).float()).item() == pytest.approx(0.0, abs=1e-6)


def test_dice_multiclass_hand_values() -> None:
    logits = torch.zeros(1, 2, 2, 2)  # p = 0.5 for both classes everywhere
    target = torch.tensor([[[0, 0], [0, 1]]])
    per_class = dice_loss(logits, target, smooth=0.0, reduction="none")
    # class 0: 2 * 1.5 / (2 + 3) = 0.6; class 1: 2 * 0.5 / (2 + 1) = 1/3
    torch.testing.assert_close(per_class, torch.tensor([[1 - 0.6, 1 - 1 / 3]]))
    assert dice_loss(logits, target, smooth=0.0).item() == pytest.approx((0.4 + 2 / 3) / 2)


def test_dice_empty_class_predicted_empty_is_zero_loss() -> None:
    logits = torch.full((1, 1, 3, 3), -100.0)
    assert dice_loss(logits, torch.zeros(1, 1, 3, 3)).item() == pytest.approx(0.0, abs=1e-6)


def test_modules_match_functions_and_give_gradients() -> None:
    torch.manual_seed(0)
    logits = torch.randn(2, 3, 4, 4, requires_grad=True)
    target = torch.randint(0, 3, (2, 4, 4))
    torch.testing.assert_close(
        FocalLoss(gamma=1.5)(logits, target), focal_loss(logits, target, gamma=1.5)
    )
    loss = DiceLoss(smooth=0.5)(logits, target)
    torch.testing.assert_close(loss, dice_loss(logits, target, smooth=0.5))
    loss.backward()
    assert logits.grad is not None and logits.grad.abs().sum() > 0


def test_bad_reduction_raises() -> None:
    with pytest.raises(ValueError, match="reduction"):
        dice_loss(torch.zeros(1, 2), torch.tensor([0]), reduction="avg")  # type: ignore[arg-type]


def test_label_smoothing_via_torch_cross_entropy() -> None:
    # p = [0.75, 0.25]; smoothed target for class 0 with eps=0.1, C=2: [0.95, 0.05]
    loss = torch.nn.CrossEntropyLoss(label_smoothing=0.1)(
        torch.tensor([[LN3, 0.0]]), torch.tensor([0])
    )
    expected = -(0.95 * math.log(0.75) + 0.05 * math.log(0.25))
    assert loss.item() == pytest.approx(expected)
