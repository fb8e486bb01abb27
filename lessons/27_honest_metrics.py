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
# # 27 · Honest metrics: the 99.7 % accurate classifier that finds nothing
#
# In LUNA16 about one candidate in 300 is a nodule. A classifier that answers "not a nodule"
# every time is right 99.7 % of the time and useless: it finds no nodule at all. This lesson
# builds that classifier, measures it honestly, and then fixes the training that produces it.
#
# **You will learn**
# - why accuracy hides a useless classifier on imbalanced data, and what recall, precision
#   and F1 say instead (the confusion matrix's four cells);
# - the ROC curve and its area as "how often does a random positive outrank a random
#   negative", checked against torchmetrics;
# - how balanced sampling turns a recall of ~0 into a useful one, and what it costs in
#   precision; choosing the threshold for a precision floor;
# - FROC, the detection metric of LUNA16: sensitivity against false positives per scan.
#
# Data: synthetic candidate scores (no files needed). Recipes: `nodule-classifier` (its
# `balanced=false` run reproduces the useless classifier on CT chips), `lung-ct-end-to-end`
# (FROC). Seed: *Deep Learning with PyTorch* ch12 (metrics, balancing) and ch14 (end to end).

# %%
import matplotlib.pyplot as plt
import numpy as np
import torch
from torchmetrics.functional.classification import (
    binary_accuracy,
    binary_auroc,
    binary_f1_score,
    binary_precision,
    binary_recall,
    binary_roc,
)

from torchdojo.runs.ct import Detection, froc, froc_score, operating_point
from torchdojo.viz import start_lesson

LESSON = start_lesson("27_honest_metrics")
SMOKE, OUT, save = LESSON.smoke, LESSON.out, LESSON.save
generator = torch.Generator().manual_seed(0)

# %% [markdown]
# ## 1. The useless accurate classifier
#
# 30,000 candidates, 0.3 % of them nodules. The "classifier" says 0 to everything.

# %%
N, POSITIVE_RATE = 30_000, 0.003
labels = (torch.rand(N, generator=generator) < POSITIVE_RATE).long()
always_no = torch.zeros(N)  # the probability of "nodule" it gives every candidate

acc = float(binary_accuracy(always_no, labels))
recall = float(binary_recall(always_no, labels))
precision = float(binary_precision(always_no, labels))  # 0 / 0 -> 0 by torchmetrics' rule
f1 = float(binary_f1_score(always_no, labels))
print(f"{int(labels.sum())} nodules of {N}: accuracy {acc:.4f}, recall {recall}, F1 {f1}")
assert acc > 0.99, "almost everything is a negative, so 'no' is almost always right"
assert recall == 0.0 and f1 == 0.0 and precision == 0.0, "and it finds no nodule at all"

# %% [markdown]
# The confusion matrix shows why: true positives TP = 0, false negatives FN = every nodule.
# recall = TP / (TP + FN) asks "of the nodules, how many did we find?"; precision =
# TP / (TP + FP) asks "of what we called nodules, how many were?"; F1 is their harmonic mean,
# 0 when either is 0. Accuracy = (TP + TN) / N is dominated by TN.

# %%
tp = int(((always_no > 0.5) & (labels == 1)).sum())
fn = int(((always_no <= 0.5) & (labels == 1)).sum())
tn = int(((always_no <= 0.5) & (labels == 0)).sum())
assert tp == 0 and fn == int(labels.sum()) and abs((tp + tn) / N - acc) < 1e-6

# %% [markdown]
# ## 2. A real score, its ROC curve and AUC
#
# Now a scorer whose output overlaps between the classes: nodules score higher on average.
# The ROC curve plots the true-positive rate (recall) against the false-positive rate at every
# threshold; its area (AUC) equals the probability that a random nodule scores above a random
# non-nodule (the Mann-Whitney statistic), which we count directly.

# %%
feature = torch.randn(N, generator=generator) + 2.5 * labels  # nodules shifted by 2.5 sd
scores = torch.sigmoid(feature - 3)  # a probability-like score, still mostly < 0.5
auc = float(binary_auroc(scores, labels))
pos, neg = scores[labels == 1], scores[labels == 0]
pairs = (pos[:, None] > neg[None, :]).float().mean()  # P(random positive > random negative)
print(f"AUC {auc:.4f}; counted over pairs {float(pairs):.4f}")
assert abs(auc - float(pairs)) < 1e-3
assert 0.9 < auc < 1.0, "a good ranking ..."
recall_05 = float(binary_recall(scores, labels))
assert recall_05 < 0.5, "... whose default 0.5 threshold still misses most nodules"

fpr, tpr, _ = binary_roc(scores, labels)
fig, ax = plt.subplots(figsize=(4, 4))
ax.plot(fpr, tpr, label=f"scorer, AUC {auc:.3f}")
ax.plot([0, 1], [0, 1], "k:", label="chance (and always-no)")
ax.set(xlabel="false-positive rate", ylabel="true-positive rate (recall)", title="ROC")
ax.legend()
save(fig, "roc.png")

# %% [markdown]
# ## 3. Balancing: training that does not learn "always no"
#
# A logistic regression trained on these candidates as they come learns the prior: with 333
# negatives per positive the loss is lowest when it rarely says "nodule". Drawing positives
# as often as negatives (the book's `ratio_int` balancing, our `BalancedSampler`) makes the
# model's 0.5 threshold sit where the classes cross.

# %%
x = torch.stack([feature, torch.randn(N, generator=generator)], 1)  # a feature and noise


def train_logistic(balanced: bool, steps: int = 150 if SMOKE else 400) -> torch.nn.Linear:
    """Logistic regression by SGD on batches of 256, drawn as they come or balanced."""
    torch.manual_seed(0)
    model = torch.nn.Linear(2, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    weights = torch.where(labels == 1, 1 / labels.sum(), 1 / (N - labels.sum())).double()
    draw = torch.Generator().manual_seed(1)
    for _ in range(steps):
        idx = (
            torch.multinomial(weights, 256, replacement=True, generator=draw)
            if balanced
            else torch.randint(N, (256,), generator=draw)
        )
        loss = torch.nn.functional.binary_cross_entropy_with_logits(
            model(x[idx]).squeeze(1), labels[idx].float()
        )
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model


results = {}
for balanced in (False, True):
    model = train_logistic(balanced)
    with torch.no_grad():
        probs = torch.sigmoid(model(x).squeeze(1))
    results[balanced] = {
        "acc": float(binary_accuracy(probs, labels)),
        "recall": float(binary_recall(probs, labels)),
        "precision": float(binary_precision(probs, labels)),
        "auc": float(binary_auroc(probs, labels)),
        "probs": probs,
    }
    r = results[balanced]
    print(
        f"balanced={balanced}: acc {r['acc']:.4f} recall {r['recall']:.3f} "
        f"precision {r['precision']:.3f} AUC {r['auc']:.3f}"
    )
assert results[False]["acc"] > 0.99 and results[False]["recall"] < 0.3
assert results[True]["recall"] > 0.8, "balancing finds the nodules ..."
assert results[True]["precision"] < 0.1, "... at a price: most of its alarms are false"
assert abs(results[True]["auc"] - results[False]["auc"]) < 0.05, "the ranking barely changed"

# %% [markdown]
# The two models rank the candidates almost equally well (same AUC): balancing moved the
# threshold, not the ranking. So the other fix is to keep a model and choose its threshold
# for the precision you can afford: `operating_point` takes the highest recall whose
# precision is at least the floor.

# %%
threshold, op_recall, op_precision = operating_point(
    results[False]["probs"], labels, min_precision=0.2
)
print(
    f"unbalanced model at threshold {threshold:.4f}: recall {op_recall:.3f}, "
    f"precision {op_precision:.3f}"
)
assert op_precision >= 0.2 and op_recall > results[False]["recall"]

# %% [markdown]
# ## 4. FROC: detection, counted per scan
#
# A detector outputs points, not labels per candidate. LUNA16 counts a detection as a hit
# when it lies within a nodule's radius, each nodule once, and plots sensitivity against
# false positives per scan; the score is the mean sensitivity at 1/8, 1/4, ..., 8 FPs per
# scan. Here: 20 scans with 1-2 nodules each; the detector finds 90 % of them with a high
# score plus a few false alarms per scan with lower scores.

# %%
rng = np.random.default_rng(0)
scans = []
for _ in range(20):
    nodules = [
        (tuple(rng.uniform(-100, 100, 3)), float(rng.uniform(5, 20)))
        for _ in range(rng.integers(1, 3))
    ]
    detections = [
        Detection(c, float(rng.uniform(0.6, 1.0))) for c, _ in nodules if rng.random() < 0.9
    ]
    detections += [
        Detection(tuple(rng.uniform(-100, 100, 3)), float(rng.uniform(0, 0.7)))
        for _ in range(rng.integers(0, 6))
    ]
    scans.append((detections, nodules))
score, fps, sens = froc(scans)
print(f"FROC score {score:.3f}; sensitivity at every FP rate: {sens.max():.3f} at most")
assert 0.5 < score <= sens.max() <= 1.0
assert froc_score(np.array([8.0, 0.0]), np.array([1.0, 0.0])) == np.mean(
    np.interp([0.125, 0.25, 0.5, 1, 2, 4, 8], [0, 8], [0, 1])
), "the score interpolates the curve linearly"

fig, ax = plt.subplots(figsize=(4.5, 3.5))
ax.step(fps, sens, where="post")
ax.set(
    xscale="log",
    xlim=(0.1, 10),
    xlabel="false positives per scan",
    ylabel="sensitivity",
    title=f"FROC, score {score:.3f}",
)
for t in (0.125, 0.25, 0.5, 1, 2, 4, 8):
    ax.axvline(t, color="0.85", lw=0.8)
save(fig, "froc.png")
