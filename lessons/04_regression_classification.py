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
# # 04 · Linear regression, logistic regression, softmax
#
# Three models, one recipe: a linear layer, a loss, an optimizer, a loop.
#
# **You will learn**
# - linear regression on the thermometer data of *Deep Learning with PyTorch* (ch5-6), with
#   input scaling and a train/validation split;
# - multiple regression, checked against the closed-form answer;
# - logistic regression (binary) with `BCEWithLogitsLoss`, and its decision boundary;
# - softmax regression (3 classes) on iris with `CrossEntropyLoss`, and its three regions.
#
# Recipes: `linear-regression`, `logistic-regression`, `softmax-iris`.
# Seeds: 004 ch5-6, 001 ch5-7, 002 §3.

# %%


import matplotlib.pyplot as plt
import numpy as np
import torch
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris
from torch import nn

from torchdojo.viz import start_lesson

LESSON = start_lesson("04_regression")
SMOKE, OUT, save = LESSON.smoke, LESSON.out, LESSON.save


# %% [markdown]
# ## 1. The thermometer
#
# A friend's thermometer shows unknown units `t_u`; we also wrote down the real Celsius
# values `t_c`. We assume a linear relation t_c = w·t_u + b. Inputs around 50 make the
# gradient for w about 50 times the one for b, so we feed 0.1·t_u, as the book does.
# We keep 2 of the 11 points aside to validate.

# %%
t_c = torch.tensor([0.5, 14.0, 15.0, 28.0, 11.0, 8.0, 3.0, -4.0, 6.0, 13.0, 21.0]).unsqueeze(1)
t_u = torch.tensor([35.7, 55.9, 58.2, 81.9, 56.3, 48.9, 33.9, 21.8, 48.4, 60.4, 68.4])
t_u = t_u.unsqueeze(1)  # (N, 1): nn.Linear wants a feature dimension
t_un = 0.1 * t_u
perm = torch.randperm(11)
train_idx, val_idx = perm[:-2], perm[-2:]

model = nn.Linear(1, 1)
optimizer = torch.optim.SGD(model.parameters(), lr=1e-2)
loss_fn = nn.MSELoss()
epochs = 5000
for epoch in range(1, epochs + 1):
    loss = loss_fn(model(t_un[train_idx]), t_c[train_idx])
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    if epoch in (1, epochs):
        with torch.no_grad():
            val_loss = loss_fn(model(t_un[val_idx]), t_c[val_idx])
        print(f"epoch {epoch}: train {loss.item():.3f}, val {val_loss.item():.3f}")

X1 = torch.cat([t_un[train_idx], torch.ones(9, 1)], dim=1)
w_star, b_star = torch.linalg.lstsq(X1, t_c[train_idx]).solution.squeeze(1).tolist()
w, b = model.weight.item(), model.bias.item()
best_loss = loss_fn(X1 @ torch.tensor([[w_star], [b_star]]), t_c[train_idx]).item()
print(f"SGD: w={w:.3f} b={b:.3f}   least squares: w={w_star:.3f} b={b_star:.3f}")
print(f"train MSE {loss.item():.3f} vs least-squares optimum {best_loss:.3f}")
assert loss.item() < 1.05 * best_loss  # SGD has (almost) reached the bottom of the bowl
assert 4.5 < w < 6.5, "≈ 5.5 °C per 10 units: the unknown unit is Fahrenheit-like"

fig, ax = plt.subplots(figsize=(5, 3.5))
ax.plot(t_u, t_c, "o", label="measurements")
grid = torch.linspace(20, 90, 50).unsqueeze(1)
with torch.no_grad():
    ax.plot(grid, model(0.1 * grid), label="fitted line")
ax.set_xlabel("unknown units")
ax.set_ylabel("°C")
ax.legend()
save(fig, "thermometer.png")

# %% [markdown]
# ## 2. Several inputs
#
# The Boston housing set of older books was removed from scikit-learn (1.2). The diabetes
# set (10 standardized features) shows the same thing: `nn.Linear(10, 1)` trained with
# SGD lands (within 1 % in loss) on the least-squares solution.

# %%
Xd_np, yd_np = load_diabetes(return_X_y=True)
Xd = torch.tensor(Xd_np, dtype=torch.float32)
Xd = (Xd - Xd.mean(0)) / Xd.std(0)
yd = torch.tensor(yd_np, dtype=torch.float32).unsqueeze(1)
reg = nn.Linear(10, 1)
opt = torch.optim.SGD(reg.parameters(), lr=0.1)
for _ in range(300 if SMOKE else 1000):
    opt.zero_grad()
    mse = nn.functional.mse_loss(reg(Xd), yd)
    mse.backward()
    opt.step()
Xd1 = torch.cat([Xd, torch.ones(len(Xd), 1)], dim=1)
best = nn.functional.mse_loss(Xd1 @ torch.linalg.lstsq(Xd1, yd).solution, yd).item()
r2 = 1 - mse.item() / yd.var(unbiased=False).item()
print(f"diabetes: MSE {mse.item():.1f} vs optimum {best:.1f}, R² {r2:.3f}")
assert mse.item() < best * 1.01
assert r2 > 0.5

# %% [markdown]
# ## 3. Logistic regression: two classes
#
# The model outputs one number, the *logit* z = w·x + b; σ(z) is P(class 1). We train on
# logits with `BCEWithLogitsLoss` (lesson 06 shows why). Two features of the breast-cancer
# set (mean radius, mean texture) let us draw the boundary: the line where z = 0, i.e.
# P = 0.5.

# %%
data = load_breast_cancer()
Xb = torch.tensor(data.data[:, :2], dtype=torch.float32)  # (569, 2)
yb = torch.tensor(data.target, dtype=torch.float32).unsqueeze(1)  # 1 = benign
mu, sd = Xb.mean(0), Xb.std(0)
Xb = (Xb - mu) / sd
perm = torch.randperm(len(Xb))
tr, te = perm[:400], perm[400:]

logreg = nn.Linear(2, 1)
opt = torch.optim.SGD(logreg.parameters(), lr=0.5)
bce = nn.BCEWithLogitsLoss()
for _ in range(200 if SMOKE else 1000):
    opt.zero_grad()
    loss = bce(logreg(Xb[tr]), yb[tr])
    loss.backward()
    opt.step()
with torch.no_grad():
    test_acc = ((logreg(Xb[te]) > 0).float() == yb[te]).float().mean().item()  # z>0 <=> p>0.5
print(f"logistic regression: train loss {loss.item():.3f}, test accuracy {test_acc:.3f}")
assert test_acc > 0.85

(w1, w2), b0 = logreg.weight[0].tolist(), logreg.bias.item()
x1 = torch.linspace(-2.5, 4, 5)
x2 = -(w1 * x1 + b0) / w2  # z = 0 on this line
with torch.no_grad():
    p_on_line = torch.sigmoid(logreg(torch.stack([x1, x2], 1)))
assert torch.allclose(p_on_line, torch.full_like(p_on_line, 0.5), atol=1e-5)

xx, yy = torch.meshgrid(torch.linspace(-2.5, 4, 200), torch.linspace(-2.5, 4.5, 200), indexing="xy")
with torch.no_grad():
    prob = torch.sigmoid(logreg(torch.stack([xx.flatten(), yy.flatten()], 1))).reshape(xx.shape)
fig, ax = plt.subplots(figsize=(5, 4))
ax.contourf(xx, yy, prob, levels=20, cmap="RdBu", alpha=0.5)
ax.plot(x1, x2, "k-", label="boundary σ(z)=0.5")
ax.scatter(Xb[te, 0], Xb[te, 1], c=yb[te, 0], cmap="RdBu", edgecolors="k", s=15)
ax.set_xlim(-2.5, 4)
ax.set_ylim(-2.5, 4.5)
ax.set_xlabel("mean radius (standardized)")
ax.set_ylabel("mean texture (standardized)")
ax.legend()
save(fig, "logistic_boundary.png")

# %% [markdown]
# ## 4. Softmax regression: three classes
#
# Now the model outputs one logit per class; softmax turns them into probabilities that sum
# to 1, and the prediction is the arg-max (which softmax does not change, so we can skip it
# at inference). `CrossEntropyLoss` takes the raw logits and integer class labels. With
# petal length and width, the three iris species fall into three regions separated by
# straight lines.

# %%
iris = load_iris()
Xi = torch.tensor(iris.data[:, 2:], dtype=torch.float32)  # petal length, width
yi = torch.tensor(iris.target)
Xi = (Xi - Xi.mean(0)) / Xi.std(0)
perm = torch.randperm(150)
tr, te = perm[:100], perm[100:]
softmax_reg = nn.Linear(2, 3)
opt = torch.optim.Adam(softmax_reg.parameters(), lr=0.1)
ce = nn.CrossEntropyLoss()
for _ in range(200 if SMOKE else 1000):
    opt.zero_grad()
    loss = ce(softmax_reg(Xi[tr]), yi[tr])
    loss.backward()
    opt.step()
with torch.no_grad():
    logits = softmax_reg(Xi[te])  # (50, 3)
probs = logits.softmax(dim=1)
assert torch.allclose(probs.sum(1), torch.ones(50))
assert torch.equal(probs.argmax(1), logits.argmax(1))
iris_acc = (logits.argmax(1) == yi[te]).float().mean().item()
print(f"softmax on iris: loss {loss.item():.3f}, test accuracy {iris_acc:.3f}")
assert iris_acc > 0.9

xx, yy = np.meshgrid(np.linspace(-2, 2.2, 200), np.linspace(-2, 2.2, 200))
with torch.no_grad():
    grid_pts = torch.tensor(np.c_[xx.ravel(), yy.ravel()], dtype=torch.float32)
    regions = softmax_reg(grid_pts).argmax(1).reshape(xx.shape)
assert set(regions.unique().tolist()) == {0, 1, 2}
fig, ax = plt.subplots(figsize=(5, 4))
ax.contourf(xx, yy, regions, levels=[-0.5, 0.5, 1.5, 2.5], cmap="Set2", alpha=0.6)
for k, name in enumerate(iris.target_names):
    ax.scatter(*Xi[yi == k].T, s=12, edgecolors="k", label=name)
ax.set_xlabel("petal length (standardized)")
ax.set_ylabel("petal width (standardized)")
ax.legend()
save(fig, "softmax_iris_regions.png")
print("lesson 04 done")
