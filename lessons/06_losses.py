# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 06 · Loss functions
#
# The loss turns "how wrong" into one number to minimize. Each PyTorch loss below is
# rebuilt from its formula and checked against the library.
#
# **You will learn**
# - MSE for regression, and its `reduction` argument;
# - binary cross-entropy: `BCELoss` on probabilities vs `BCEWithLogitsLoss` on logits;
# - cross-entropy for many classes: why `CrossEntropyLoss` takes *logits* (it applies
#   log-softmax itself), and what goes wrong when you feed it probabilities;
# - soft targets and label smoothing;
# - how BCE punishes confident mistakes far more than MSE;
# - losses for imbalance and overlap: focal loss (easy examples count less) and Dice loss
#   (overlap of masks), from `torchdojo.nn`.
#
# Seeds: 002 §3 "loss functions", 001 ch6-7 (PyTorch's multi-class loss "policy"), 000 ch3;
# Lin et al. 2017 (focal loss), Milletari et al. 2016 (Dice loss).

# %%
import math

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import sigmoid_focal_loss

from torchdojo.nn import DiceLoss, FocalLoss, dice_loss, focal_loss
from torchdojo.viz import start_lesson

LESSON = start_lesson("06_losses")
SMOKE, OUT, save = LESSON.smoke, LESSON.out, LESSON.save


# %% [markdown]
# ## 1. Mean squared error
#
# MSE = mean((ŷ − y)²). `reduction="sum"` gives the SSE of lesson 03; `"none"` keeps one
# value per element.

# %%
y_hat = torch.tensor([2.5, 0.0, 2.0, 8.0])
y = torch.tensor([3.0, -0.5, 2.0, 7.0])
by_hand = ((y_hat - y) ** 2).mean()
assert torch.isclose(nn.MSELoss()(y_hat, y), by_hand) and by_hand.item() == 0.375
assert nn.MSELoss(reduction="sum")(y_hat, y).item() == 1.5
assert nn.MSELoss(reduction="none")(y_hat, y).shape == (4,)

# %% [markdown]
# ## 2. Binary cross-entropy
#
# For a probability p of class 1 and a label y ∈ {0, 1}:
# BCE = −[y·log p + (1 − y)·log(1 − p)]. `BCELoss` wants p = σ(z); `BCEWithLogitsLoss`
# takes the logit z and computes the same value with the log-sum-exp trick, which stays
# exact for large |z|. `BCELoss` clamps log(p) at −100 instead.

# %%
z = torch.tensor([-2.0, 0.0, 3.0, 1.0])  # logits
t = torch.tensor([0.0, 1.0, 1.0, 0.0])  # labels
p = torch.sigmoid(z)
bce_hand = -(t * p.log() + (1 - t) * (1 - p).log()).mean()
assert torch.isclose(nn.BCELoss()(p, t), bce_hand)
assert torch.isclose(nn.BCEWithLogitsLoss()(z, t), bce_hand)

big = torch.tensor([200.0])  # a very confident, wrong prediction for label 0
wrong = torch.tensor([0.0])
assert torch.isclose(F.binary_cross_entropy_with_logits(big, wrong), big)  # softplus(200) = 200
assert F.binary_cross_entropy(torch.sigmoid(big), wrong).item() == 100.0  # clamped
print("BCE of a confident mistake: logits ->", 200.0, "| probabilities -> 100 (clamped)")

# %% [markdown]
# ## 3. Cross-entropy for many classes
#
# With logits z (B, K) and integer labels y (B,):
# CE = mean(−log softmax(z)[y]) = `nll_loss(log_softmax(z), y)` = `cross_entropy(z, y)`.
# PyTorch models therefore end with a plain linear layer; the loss owns the softmax.

# %%
logits = torch.randn(6, 4)  # (B, K)
labels = torch.tensor([0, 3, 1, 1, 2, 0])  # (B,)
ce_hand = -torch.log(torch.softmax(logits, dim=1)[torch.arange(6), labels]).mean()
ce_nll = F.nll_loss(F.log_softmax(logits, dim=1), labels)
ce_lib = nn.CrossEntropyLoss()(logits, labels)
assert torch.isclose(ce_hand, ce_lib) and torch.isclose(ce_nll, ce_lib)

# Uniform logits: every class gets 1/K, so CE = log K. A fresh classifier starts near this.
assert math.isclose(
    F.cross_entropy(torch.zeros(1, 10), torch.tensor([3])).item(), math.log(10), rel_tol=1e-6
)

# %% [markdown]
# **Why logits?** (1) Stability: softmax of a logit of 1000 overflows, log-softmax does not.
# (2) Correctness: if the model already ends in softmax, `CrossEntropyLoss` applies a second
# softmax. The loss is then wrong, can never go near 0, and its gradients shrink.

# %%
huge = torch.tensor([[1000.0, 0.0, -1000.0]])
naive = -torch.log(torch.exp(huge) / torch.exp(huge).sum())[0, 1]
assert not torch.isfinite(naive), "exp(1000) overflows"
assert torch.isclose(F.cross_entropy(huge, torch.tensor([1])), torch.tensor(1000.0))

confident = torch.tensor([[8.0, 0.0, 0.0]], requires_grad=True)
right = torch.tensor([0])
good = F.cross_entropy(confident, right)
double = F.cross_entropy(torch.softmax(confident, dim=1), right)  # the classic mistake
print(f"correct, confident: CE on logits {good.item():.4f}, on probabilities {double.item():.4f}")
assert good.item() < 0.001 and double.item() > 0.55  # never below log(1 + 2/e) ≈ 0.55

wrong_logits = torch.tensor([[0.0, 3.0, 0.0]], requires_grad=True)
F.cross_entropy(wrong_logits, right).backward()
g_logits = wrong_logits.grad.norm().item()
wrong_logits.grad = None
F.cross_entropy(torch.softmax(wrong_logits, dim=1), right).backward()
g_double = wrong_logits.grad.norm().item()
print(f"gradient norm on a wrong prediction: logits {g_logits:.3f}, double softmax {g_double:.3f}")
assert g_double < g_logits / 3

# At inference, softmax does not change the arg-max: predict with logits.argmax(1).
assert torch.equal(logits.argmax(1), logits.softmax(1).argmax(1))

# %% [markdown]
# ## 4. Soft targets and label smoothing
#
# `cross_entropy` also accepts a probability per class as the target. One-hot targets give
# the same value as integer labels. Label smoothing mixes the one-hot target with the
# uniform distribution: (1 − ε)·one_hot + ε/K.

# %%
one_hot = F.one_hot(labels, num_classes=4).float()
assert torch.isclose(F.cross_entropy(logits, one_hot), ce_lib)
eps = 0.1
smoothed = (1 - eps) * one_hot + eps / 4
assert torch.isclose(
    F.cross_entropy(logits, labels, label_smoothing=eps), F.cross_entropy(logits, smoothed)
)
weights = torch.tensor([1.0, 2.0, 1.0, 1.0])  # class weights for imbalanced data
per_sample = F.cross_entropy(logits, labels, reduction="none")
weighted = (per_sample * weights[labels]).sum() / weights[labels].sum()
assert torch.isclose(F.cross_entropy(logits, labels, weight=weights), weighted)

# %% [markdown]
# ## 5. BCE versus MSE for a probability
#
# For a true label 1, MSE of p stays below 1 even when p → 0; BCE grows without bound.
# That steep wall is why classifiers train with cross-entropy.

# %%
probs = torch.linspace(0.001, 0.999, 200)
mse_curve = (1 - probs) ** 2
bce_curve = -torch.log(probs)
assert bce_curve[0] > 6.5 and mse_curve[0] < 1.0
assert torch.all(bce_curve >= mse_curve)  # -log p >= (1-p)^2 on (0, 1)
fig, ax = plt.subplots(figsize=(5, 3.5))
ax.plot(probs, bce_curve, label="BCE  −log p")
ax.plot(probs, mse_curve, label="MSE  (1 − p)²")
ax.set_xlabel("predicted probability of the true class")
ax.set_ylabel("loss")
ax.legend()
save(fig, "bce_vs_mse.png")

# %% [markdown]
# ## 6. Losses for imbalance and overlap: focal and Dice
#
# When easy background examples outnumber the hard ones a hundred to one, cross-entropy is
# a sum of many small losses that drowns the few large ones. The **focal loss** multiplies
# cross-entropy by (1 − p_t)^γ, where p_t is the probability given to the true class: an easy
# example (p_t near 1) is scaled almost to 0, a hard one barely changes. γ = 0 is plain
# cross-entropy. The binary form (float targets, sigmoid) is torchvision's
# `sigmoid_focal_loss`.

# %%
assert torch.isclose(focal_loss(logits, labels, gamma=0.0), ce_lib)
assert torch.isclose(FocalLoss(gamma=0.0)(logits, labels), ce_lib)

# Two examples, true class 0: easy (p_t = 0.9, logits [ln 9, 0]) and hard (p_t = 0.1).
pair = torch.tensor([[math.log(9), 0.0], [-math.log(9), 0.0]])
ce_pair = F.cross_entropy(pair, torch.tensor([0, 0]), reduction="none")
fl_pair = focal_loss(pair, torch.tensor([0, 0]), gamma=2.0, reduction="none")
assert torch.allclose(ce_pair, torch.tensor([-math.log(0.9), -math.log(0.1)]))
assert torch.allclose(fl_pair, torch.tensor([0.1**2, 0.9**2]) * ce_pair)  # (1 - p_t)^2 CE
ce_ratio, fl_ratio = (ce_pair[1] / ce_pair[0]).item(), (fl_pair[1] / fl_pair[0]).item()
print(f"hard / easy loss: cross-entropy {ce_ratio:.1f}, focal (gamma=2) {fl_ratio:.0f}")
assert math.isclose(fl_ratio, ce_ratio * 0.81 / 0.01, rel_tol=1e-4)  # 81x more contrast

# 1,000 easy negatives (p = 0.1 for a label 0) against 10 hard positives (p = 0.1, label 1).
z_imb = torch.full((1010,), -math.log(9))  # sigmoid = 0.1 everywhere
t_imb = torch.cat([torch.zeros(1000), torch.ones(10)])
for name, per_example in [
    ("BCE", F.binary_cross_entropy_with_logits(z_imb, t_imb, reduction="none")),
    ("focal", focal_loss(z_imb, t_imb, gamma=2.0, reduction="none")),
]:
    easy, hard = per_example[:1000].sum().item(), per_example[1000:].sum().item()
    print(f"{name:5s}: easy negatives add {easy:7.2f}, hard positives {hard:6.2f}")
    assert (easy > 4 * hard) if name == "BCE" else (hard > 15 * easy)
assert torch.isclose(
    focal_loss(z_imb, t_imb, gamma=2.0, alpha=0.25, reduction="sum"),
    sigmoid_focal_loss(z_imb, t_imb, alpha=0.25, gamma=2.0, reduction="sum"),
)

# %% [markdown]
# **Dice loss** compares a predicted mask with the true one by overlap:
# Dice = 2·|A ∩ B| / (|A| + |B|), with soft probabilities in place of 0/1 (the same number
# as the F1 score, and 2·IoU / (1 + IoU)). The loss is 1 − Dice; `smooth` is added to top
# and bottom so that an empty mask predicted empty scores 1, not 0/0. Below, the true mask is
# the 2×2 top-left square, the prediction a 2×2 square one column to the right: they share
# 2 of their pixels.

# %%
truth = torch.zeros(1, 1, 4, 4)  # (B, C, H, W) binary mask
truth[..., 0:2, 0:2] = 1
guess = torch.zeros(1, 1, 4, 4)
guess[..., 0:2, 1:3] = 1
confident = torch.where(guess > 0, 20.0, -20.0)  # logits: sigmoid is 1 or 0 (to 1e-9)
overlap, iou = 2, 2 / 6  # |A ∩ B| = 2, |A ∪ B| = 6
dice_hand = 2 * overlap / (4 + 4)  # 0.5
precision = recall = overlap / 4
assert math.isclose(dice_hand, 2 * iou / (1 + iou))
assert math.isclose(dice_hand, 2 * precision * recall / (precision + recall))  # F1
assert torch.isclose(dice_loss(confident, truth, smooth=0.0), torch.tensor(1 - dice_hand))
assert torch.isclose(dice_loss(confident, truth), torch.tensor(1 - (2 * 2 + 1) / (8 + 1)))
assert torch.isclose(DiceLoss(smooth=0.0)(confident, truth), torch.tensor(0.5))
empty = torch.zeros(1, 1, 4, 4)
assert dice_loss(torch.full_like(empty, -20.0), empty).item() < 1e-6  # smooth: 1/1, not 0/0
# Soft predictions: p = 0.75 on the guessed square, 0.25 elsewhere (logits ±ln 3).
soft = torch.where(guess > 0, math.log(3), -math.log(3))
p_soft = 0.75 * guess + 0.25 * (1 - guess)
dice_soft = 2 * (p_soft * truth).sum() / (p_soft.sum() + truth.sum())
assert torch.isclose(dice_soft, torch.tensor(2 * (2 * 0.75 + 2 * 0.25) / (6 + 4)))  # 0.4
assert torch.isclose(dice_loss(soft, truth, smooth=0.0), 1 - dice_soft)

# A 4×4 object in a 64×64 image, predicted "all background": BCE looks fine, Dice does not.
obj = torch.zeros(1, 1, 64, 64)
obj[..., 30:34, 30:34] = 1
missed = torch.full_like(obj, -5.0)
bce_missed = F.binary_cross_entropy_with_logits(missed, obj).item()
dice_missed = dice_loss(missed, obj).item()
print(f"object missed entirely: BCE {bce_missed:.3f}, Dice loss {dice_missed:.3f}")
assert bce_missed < 0.05 and dice_missed > 0.95
print("lesson 06 done")
