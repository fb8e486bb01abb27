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
# # 07 · Training stability: activations, initialization, normalization, learning rate
#
# A deep net trains only if signals keep a sensible size on the way forward (activations)
# and on the way back (gradients). This lesson measures what breaks that and what fixes it.
#
# **You will learn**
# - underfitting: a model too simple for the data;
# - why stacking sigmoids squashes the signal, and how gradients vanish layer by layer
#   (per-layer gradient violin plots);
# - exploding activations with N(0, 1) weights; Xavier (tanh) and Kaiming (ReLU) init;
# - dead ReLUs after a too-large learning rate;
# - input standardization and BatchNorm;
# - learning-rate schedules and the U-shaped loss-vs-learning-rate curve of a BN net.
#
# Recipe: `deep-mlp-init`. Seeds: 002 §4 (all five notebooks), 000 ch5-6.

# %%


import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from torchdojo.viz import start_lesson

LESSON = start_lesson("07_training_stability")
SMOKE, OUT, save = LESSON.smoke, LESSON.out, LESSON.save


# %% [markdown]
# A regression task used throughout: y = x₀² + x₁ + noise. Training uses plain mini-batch
# SGD so that the effects are not hidden by an adaptive optimizer.


# %%
def make_data(n: int, seed: int = 0) -> tuple[Tensor, Tensor]:
    """Inputs (n, 2) and targets (n, 1) of y = x0^2 + x1 + 0.1 noise."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 2, generator=g)
    y = x[:, 0] ** 2 + x[:, 1] + 0.1 * torch.randn(n, generator=g)
    return x, y.unsqueeze(1)


X, Y = make_data(1000)
STEPS = 150 if SMOKE else 400


def make_net(
    act: type[nn.Module], *, depth: int = 4, width: int = 16, bn: bool = False
) -> nn.Sequential:
    """``depth`` hidden layers of Linear (+ BatchNorm) + activation, then one output."""
    layers: list[nn.Module] = []
    features = 2
    for _ in range(depth):
        layers.append(nn.Linear(features, width))
        if bn:
            layers.append(nn.BatchNorm1d(width))
        layers.append(act())
        features = width
    layers.append(nn.Linear(features, 1))
    return nn.Sequential(*layers)


def train(model: nn.Module, *, lr: float, steps: int = STEPS, scheduler: str = "") -> float:
    """Mini-batch SGD (batch 100); returns the full-data MSE in eval mode (nan if diverged)."""
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    sched = (
        torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps) if scheduler else None
    )
    g = torch.Generator().manual_seed(1)  # the same batches for every model
    for _ in range(steps):
        idx = torch.randint(0, len(X), (100,), generator=g)
        loss = F.mse_loss(model(X[idx]), Y[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if sched is not None:
            sched.step()
    model.eval()
    with torch.no_grad():
        final = F.mse_loss(model(X), Y).item()
    model.train()
    return final


# %% [markdown]
# ## 1. Underfitting
#
# A linear model can only draw a plane; y = x₀² + x₁ is curved. Its error stays near the
# variance of x₀² (= 2), while a small ReLU net fits it.

# %%
torch.manual_seed(0)
linear_mse = train(nn.Linear(2, 1), lr=0.05)
torch.manual_seed(0)
relu_mse = train(make_net(nn.ReLU, depth=2, width=32), lr=0.05)
print(f"linear model MSE {linear_mse:.3f}, 2-layer ReLU net MSE {relu_mse:.3f}")
assert linear_mse > 1.5 and relu_mse < 0.5

# %% [markdown]
# ## 2. Stacking sigmoids squashes the signal
#
# σ maps ℝ into (0, 1); σ∘σ maps into (0.5, 0.73); each extra sigmoid narrows the range
# further. A deep sigmoid stack outputs almost a constant. Its derivative is at most 0.25,
# so the chain rule multiplies gradients by ≤ 0.25 per layer.

# %%
z = torch.linspace(-10, 10, 401)
fig, ax = plt.subplots(figsize=(5, 3.5))
out, ranges = z, []
for k in range(1, 5):
    out = torch.sigmoid(out)
    ranges.append((out.max() - out.min()).item())
    ax.plot(z, out, label=f"{k} sigmoid(s)")
ax.legend()
ax.set_title("stacked sigmoids")
save(fig, "sigmoid_stack.png")
print("output range per depth:", [round(r, 4) for r in ranges])
assert all(b < a / 3 for a, b in zip(ranges, ranges[1:], strict=False))
assert ranges[3] < 0.015

# %% [markdown]
# ## 3. Vanishing gradients, layer by layer
#
# One backward pass through 5 hidden layers at initialization. With sigmoid, the first layer
# gets gradients about a thousand times smaller than the last hidden layer: it barely
# learns. Tanh and ReLU keep them within one order of magnitude.


# %%
def layer_grads(act: type[nn.Module], seed: int = 0) -> list[Tensor]:
    """|dL/dW| of every hidden linear layer after one backward pass."""
    torch.manual_seed(seed)
    model = make_net(act, depth=5)
    F.mse_loss(model(X), Y).backward()
    linears = [m for m in model if isinstance(m, nn.Linear)][:-1]  # hidden layers only
    return [m.weight.grad.abs().flatten() for m in linears]


fig, axes = plt.subplots(1, 3, figsize=(12, 3.5), sharey=True)
ratios = {}
for ax, act in zip(axes, (nn.Sigmoid, nn.Tanh, nn.ReLU), strict=True):
    grads = layer_grads(act)
    ratios[act.__name__] = (grads[0].mean() / grads[-1].mean()).item()
    ax.violinplot([g.clamp_min(1e-12).log10() for g in grads], showmedians=True)
    ax.set_title(f"{act.__name__}: log10 |grad| per layer")
    ax.set_xlabel("hidden layer")
save(fig, "gradient_violins.png")
print("first/last hidden-layer mean |grad|:", {k: f"{v:.1e}" for k, v in ratios.items()})
assert ratios["Sigmoid"] < 0.01
assert ratios["Tanh"] > 0.1 and ratios["ReLU"] > 0.1

# %% [markdown]
# ## 4. Initialization: keep the activation scale across 20 layers
#
# Each layer multiplies the variance of its input by fan_in · Var(w) (times ½ for ReLU,
# which zeroes half its inputs). N(0, 1) weights multiply it by 128 per ReLU layer: the
# activations explode. Xavier (Var(w) = 2 / (fan_in + fan_out)) is right for tanh; Kaiming
# (Var(w) = 2 / fan_in) is right for ReLU. Note that PyTorch's *default* `nn.Linear` init
# (uniform with variance 1/(3 fan_in)) shrinks a deep ReLU stack.


# %%
def activation_stds(init: str, act: str, *, depth: int = 20, width: int = 256) -> list[float]:
    """Std of the activations after each of ``depth`` bias-free layers."""
    torch.manual_seed(0)
    h = torch.randn(512, width)
    stds = []
    for _ in range(depth):
        layer = nn.Linear(width, width, bias=False)
        if init == "normal":
            nn.init.normal_(layer.weight)
        elif init == "xavier":
            nn.init.xavier_normal_(layer.weight, gain=nn.init.calculate_gain(act))
        elif init == "kaiming":
            nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
        with torch.no_grad():
            h = torch.relu(layer(h)) if act == "relu" else torch.tanh(layer(h))
        stds.append(h.std().item())
    return stds


curves = {
    "N(0,1) + ReLU": activation_stds("normal", "relu"),
    "default + ReLU": activation_stds("default", "relu"),
    "Xavier + tanh": activation_stds("xavier", "tanh"),
    "Kaiming + ReLU": activation_stds("kaiming", "relu"),
}
for name, stds in curves.items():
    print(f"{name:15s} layer 1 std {stds[0]:.3g}, layer 20 std {stds[-1]:.3g}")
assert all(0.5 < s < 2.0 for s in curves["Kaiming + ReLU"])
assert all(0.3 < s < 1.0 for s in curves["Xavier + tanh"])
assert curves["N(0,1) + ReLU"][-1] > 1e15
assert curves["default + ReLU"][-1] < 1e-5
fig, ax = plt.subplots(figsize=(6, 3.5))
for name, stds in curves.items():
    ax.semilogy(range(1, 21), stds, marker=".", label=name)
ax.set_xlabel("layer")
ax.set_ylabel("activation std")
ax.legend()
save(fig, "init_activation_std.png")

# %% [markdown]
# ## 5. Dead ReLUs
#
# A ReLU unit whose input is negative for every example outputs 0 and gets zero gradient
# forever. A too-large learning rate pushes many units there in a few steps.


# %%
def dead_fraction(model: nn.Sequential) -> float:
    """Fraction of the last hidden layer's ReLUs that are zero on every input."""
    with torch.no_grad():
        h = model[:-1](X)  # (N, width): output of the last ReLU
    return ((h > 0).sum(0) == 0).float().mean().item()


dead = {}
for lr in (0.01, 1.0):
    torch.manual_seed(0)
    net = make_net(nn.ReLU, depth=3, width=64)
    train(net, lr=lr)
    dead[lr] = dead_fraction(net)
print("dead ReLU fraction by learning rate:", dead)
assert dead[0.01] < 0.25 and dead[1.0] > 0.8

# %% [markdown]
# ## 6. Standardize the inputs
#
# With one feature of scale 1 and one of scale 100, the loss surface is a long narrow
# valley: the learning rate must be tiny to stay stable on the steep axis, and then the flat
# axis barely moves. Standardizing each feature to mean 0, std 1 makes it round.

# %%
g = torch.Generator().manual_seed(0)
raw = torch.randn(1000, 2, generator=g) * torch.tensor([1.0, 100.0])
target = 3 * raw[:, :1] + 0.05 * raw[:, 1:] + 0.1 * torch.randn(1000, 1, generator=g)
standardized = (raw - raw.mean(0)) / raw.std(0)


def fit_linear(inputs: Tensor, lr: float, steps: int = 100) -> float:
    """Full-batch gradient descent on a linear model; final MSE."""
    torch.manual_seed(0)
    model = nn.Linear(2, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    for _ in range(steps):
        loss = F.mse_loss(model(inputs), target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return loss.item()


raw_small = fit_linear(raw, lr=5e-5)  # about the largest stable step for the raw data
raw_big = fit_linear(raw, lr=0.1)
std_mse = fit_linear(standardized, lr=0.1)
print(
    f"raw lr=5e-5: {raw_small:.3f}; raw lr=0.1: {raw_big:.3g}; standardized lr=0.1: {std_mse:.4f}"
)
assert std_mse < 0.02 and raw_small > 10 * std_mse
assert not (raw_big < 1e6), (
    "the raw data diverges at the learning rate that suits standardized data"
)

# %% [markdown]
# ## 7. BatchNorm
#
# In training mode `BatchNorm1d` standardizes each feature over the batch, then applies a
# learned scale γ and shift β; it also keeps running averages used in eval mode. Between
# layers it does for hidden activations what standardization did for the inputs: a sigmoid
# net that is stuck without it trains with it.

# %%
bn = nn.BatchNorm1d(3)
batch = torch.randn(64, 3) * torch.tensor([1.0, 5.0, 0.1]) + torch.tensor([0.0, 10.0, -3.0])
normed = bn(batch)
by_hand = (batch - batch.mean(0)) / torch.sqrt(batch.var(0, unbiased=False) + bn.eps)
assert torch.allclose(normed, by_hand, atol=1e-5)  # γ = 1, β = 0 at init
assert torch.allclose(normed.mean(0), torch.zeros(3), atol=1e-5)
assert torch.allclose(bn.running_mean, 0.1 * batch.mean(0), atol=1e-5)  # momentum 0.1
bn.eval()
assert not torch.allclose(bn(batch), normed, atol=1e-2), "eval mode uses running statistics"

torch.manual_seed(0)
plain = train(make_net(nn.Sigmoid), lr=0.1)
torch.manual_seed(0)
with_bn = train(make_net(nn.Sigmoid, bn=True), lr=0.1)
print(f"4-layer sigmoid net, SGD lr=0.1: MSE {plain:.3f} without BN, {with_bn:.3f} with BN")
assert with_bn < 0.5 * plain

# %% [markdown]
# ## 8. Learning-rate schedules and the U-curve
#
# Schedulers change the learning rate as training goes: `StepLR` divides it every few
# epochs, `ExponentialLR` every epoch, `CosineAnnealingLR` follows half a cosine to a floor,
# `OneCycleLR` warms up then anneals. For a BN net, the final loss against the learning
# rate draws a U: too small learns too slowly, too large diverges.


# %%
def schedule(make: object, n: int = 50) -> list[float]:
    """Learning rates a scheduler produces over ``n`` steps (base lr 0.1)."""
    optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1)
    sched = make(optimizer)  # type: ignore[operator]
    lrs = []
    for _ in range(n):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        sched.step()
    return lrs


lr_curves = {
    "StepLR(20, 0.1)": schedule(lambda o: torch.optim.lr_scheduler.StepLR(o, 20, gamma=0.1)),
    "ExponentialLR(0.95)": schedule(lambda o: torch.optim.lr_scheduler.ExponentialLR(o, 0.95)),
    "CosineAnnealingLR(50)": schedule(lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, 50)),
    "OneCycleLR(max 0.1)": schedule(
        lambda o: torch.optim.lr_scheduler.OneCycleLR(o, max_lr=0.1, total_steps=50)
    ),
}
assert abs(lr_curves["StepLR(20, 0.1)"][25] - 0.01) < 1e-9
assert abs(lr_curves["ExponentialLR(0.95)"][10] - 0.1 * 0.95**10) < 1e-9
assert abs(lr_curves["CosineAnnealingLR(50)"][25] - 0.05) < 1e-9
one_cycle = lr_curves["OneCycleLR(max 0.1)"]
assert one_cycle[0] < 0.01 and abs(max(one_cycle) - 0.1) < 1e-6 and one_cycle[-1] < 1e-4

lrs = [1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0]
u_curve = []
for lr in lrs:
    torch.manual_seed(0)
    final = train(make_net(nn.ReLU, bn=True), lr=lr)
    u_curve.append(final if final == final and final < 1e3 else float("inf"))
print("BN net, final MSE per lr:", dict(zip(lrs, [round(v, 3) for v in u_curve], strict=True)))
best = min(range(len(lrs)), key=u_curve.__getitem__)
assert 0 < best < len(lrs) - 1, "the best learning rate is inside the range"
assert u_curve[0] > 2 * u_curve[best] and u_curve[-1] > 2 * u_curve[best]

torch.manual_seed(0)
cosine = train(make_net(nn.ReLU, bn=True), lr=0.3, scheduler="cosine")
print(f"lr=0.3 constant: {u_curve[5]:.3f}; lr=0.3 with cosine decay: {cosine:.3f}")
assert cosine < u_curve[5]

fig, axes = plt.subplots(1, 2, figsize=(11, 3.5))
for name, values in lr_curves.items():
    axes[0].plot(values, label=name)
axes[0].set_xlabel("step")
axes[0].set_ylabel("learning rate")
axes[0].legend()
shown = [min(v, 10.0) for v in u_curve]  # diverged runs drawn at the top
axes[1].semilogx(lrs, shown, "o-")
axes[1].set_xlabel("learning rate")
axes[1].set_ylabel("final MSE (capped at 10)")
axes[1].set_title("BN net: the U-shaped learning-rate curve")
save(fig, "lr_schedules_and_u_curve.png")
print("lesson 07 done")
